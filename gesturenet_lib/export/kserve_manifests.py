"""KServe InferenceServices written by export into ``kserve/``, beside the Triton entry:

- ``triton.yaml``: KServe's Triton runtime on the Triton model repository (``<storage>/triton``),
  with a GPU (the entry is an ONNX model or a TensorRT engine; Triton serves both);
- ``gesturenet-serve.yaml``: the project's image running ``gesturenet serve`` on the export
  folder (CPU), the key from a Secret when the model is an .etlt, and KServe's batcher.

``storageUri`` is where the export folder lives for the cluster: the gs:// destination, or
``--storage_uri`` for a folder copied elsewhere (s3://, pvc://, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from gesturenet_lib.container_image import project_image
from gesturenet_lib.keys import KEY_ENV, KEY_SECRET

API_VERSION = "serving.kserve.io/v1beta1"
HTTP_PORT = 8080                     # KServe's default, what its probes and the router expect
MOUNT = "/mnt/models"                # where KServe's storage initializer puts storageUri


@dataclass(frozen=True)
class ServiceInfo:
    storage_uri: str                 # the export folder as the cluster reaches it
    model_file: str                  # the model's file name in that folder
    model_name: str                  # the served name (the Triton entry's name)
    encrypted: bool                  # an .etlt: the server needs the key
    triton_entry: str | None         # the entry's path under the folder, when one was written


def _metadata(name: str) -> dict:
    return {"name": name, "labels": {"app.kubernetes.io/part-of": "gesturenet-kfp"},
            "annotations": {"serving.kserve.io/enable-prometheus-scraping": "true"}}


def triton_service(info: ServiceInfo) -> dict:
    repository = info.storage_uri.rstrip("/") + "/" + info.triton_entry.rsplit("/", 1)[0]
    return {
        "apiVersion": API_VERSION, "kind": "InferenceService",
        "metadata": _metadata(f"{info.model_name}-triton"),
        "spec": {"predictor": {"model": {
            "modelFormat": {"name": "triton"},
            "protocolVersion": "v2",
            "storageUri": repository,
            "resources": {"requests": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"},
                          "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}},
        }}},
    }


def serve_service(info: ServiceInfo) -> dict:
    env = [{"name": "STORAGE_URI", "value": info.storage_uri}]
    if info.encrypted:
        env.append({"name": KEY_ENV, "valueFrom": {"secretKeyRef": {"name": KEY_SECRET,
                                                                    "key": "key"}}})
    container = {
        "name": "kserve-container",
        "image": project_image(),
        "args": ["serve", "-m", f"{MOUNT}/{info.model_file}", "--model_name", info.model_name,
                 # Knative routes one port per container: HTTP here (gRPC needs its own
                 # InferenceService with an h2c port).
                 "--http_port", str(HTTP_PORT), "--enable_grpc", "false"],
        "env": env,
        "ports": [{"containerPort": HTTP_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": f"/v2/models/{info.model_name}/ready",
                                       "port": HTTP_PORT}},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": HTTP_PORT}},
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"},
                      "limits": {"cpu": "2", "memory": "4Gi"}},
    }
    return {
        "apiVersion": API_VERSION, "kind": "InferenceService",
        "metadata": _metadata(info.model_name),
        "spec": {"predictor": {
            "minReplicas": 1,
            # KServe's batcher (its agent sidecar) merges concurrent v1 requests' instances.
            "batcher": {"maxBatchSize": 32, "maxLatency": 10},
            "containers": [container],
        }},
    }


def manifests(info: ServiceInfo) -> dict[str, str]:
    """File name -> YAML text of each InferenceService this export can run as."""
    import yaml

    services = {"gesturenet-serve.yaml": serve_service(info)}
    if info.triton_entry:
        services["triton.yaml"] = triton_service(info)
    return {name: yaml.safe_dump(doc, sort_keys=False) for name, doc in services.items()}
