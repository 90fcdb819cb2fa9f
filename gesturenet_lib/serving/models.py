"""The two KServe models of `gesturenet serve`, sharing one loaded backend:

- ``<name>``: tensors, exactly as the Triton entry: ``input_1`` (N x C x H x W float32, the
  caller applies the model's preprocessing) -> ``predictions`` (and ``hand_found`` for the
  hand_landmarks family), over v2 REST/gRPC, or v1 ``{"instances": [tensor, ...]}``;
- ``<name>-image``: encoded images -> class name, index, confidence, probabilities (and
  hand_found), with the preprocessing done here as `gesturenet inference` does it.

Both are not ready (503) until ``attach`` hands them the backend; inference runs in the event
loop's thread pool so the loop keeps answering health checks and other requests."""

from __future__ import annotations

import asyncio
import struct
import uuid
from dataclasses import dataclass

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from gesturenet_lib.export.deploy_configs import INPUT_NAME, OUTPUT_NAME
from gesturenet_lib.export.onnx_export import HAND_FOUND
from gesturenet_lib.inference.backends import Backend
from gesturenet_lib.serving.payloads import (
    BadRequest,
    check_batch,
    image_bytes,
    nested_floats,
    preprocess_images,
    v1_instances,
)

IMAGE_INPUT = "image"  # the image model's v2 input: BYTES, one encoded image per element


@dataclass(frozen=True)
class Served:
    """What both models need of the loaded model."""
    backend: Backend
    names: list[str]                # class names in index order
    dims: tuple[int, ...]           # input without the batch dimension (declared layout)
    reports_hands: bool             # the hand_landmarks family: a hand_found output


def served(backend: Backend) -> Served:
    dims = backend.preprocessing.input_dims()
    probe = np.zeros((1, *dims), np.float32)
    reports_hands = backend.predict_with_hands(probe)[1] is not None  # also warms it up
    return Served(backend, sorted(backend.classes, key=backend.classes.get), dims,
                  reports_hands)


class _Base(Model):
    def __init__(self, name: str, max_batch: int):
        super().__init__(name)
        self.max_batch = max_batch
        self.served: Served | None = None

    def attach(self, model: Served) -> None:
        self.served = model
        self.ready = True

    def load(self) -> bool:
        # KServe calls this on a request to a model that is not ready; loading runs in its
        # own thread (server.py), so this only reports.
        return self.ready

    def _model(self) -> Served:
        if self.served is None:
            raise ModelNotReady(self.name)
        return self.served

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def predict(self, payload, headers=None):
        model = self._model()
        try:
            return await self._predict(model, payload)
        except BadRequest as err:
            raise InvalidInput(str(err)) from None


def _v2_input(request: InferRequest, name: str, datatype: str) -> np.ndarray:
    found = [i for i in request.inputs if i.name == name]
    if len(found) != 1:
        names = [i.name for i in request.inputs]
        raise BadRequest(f"inputs: expected one input named {name!r}, got {names}")
    tensor = found[0]
    if tensor.datatype != datatype:
        raise BadRequest(f"{name}: datatype {tensor.datatype}, expected {datatype}")
    try:
        return tensor.as_numpy()
    except struct.error:  # a BYTES element's length prefix runs past the data (gRPC raw)
        raise BadRequest(f"{name}: a BYTES element's length prefix runs past the data") \
            from None
    except (ValueError, TypeError) as err:
        raise BadRequest(f"{name}: data does not fit shape {tensor.shape}: "
                         f"{str(err).splitlines()[0][:100]}") from None


def _response(request: InferRequest, outputs: dict[str, tuple[np.ndarray, str]]
              ) -> InferResponse:
    tensors = []
    for name, (array, datatype) in outputs.items():
        tensor = InferOutput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=False)
        tensors.append(tensor)
    # The v2 protocol echoes the request's id; KServe's response model needs one.
    return InferResponse(request.id or uuid.uuid4().hex, request.model_name, tensors,
                         from_grpc=request.from_grpc,
                         use_binary_outputs=request.use_binary_outputs,
                         requested_outputs=request.request_outputs)


class TensorModel(_Base):
    """``input_1`` -> ``predictions`` (+ ``hand_found``), the Triton entry's contract."""

    def get_input_types(self):
        dims = self.served.dims if self.served else ()
        return [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, *dims]}]

    def get_output_types(self):
        classes = len(self.served.names) if self.served else -1
        outputs = [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, classes]}]
        if self.served and self.served.reports_hands:
            outputs.append({"name": HAND_FOUND, "datatype": "FP32", "shape": [-1, 1]})
        return outputs

    async def _predict(self, model: Served, payload):
        if isinstance(payload, InferRequest):
            batch = check_batch(_v2_input(payload, INPUT_NAME, "FP32"), model.dims,
                                self.max_batch, INPUT_NAME)
        else:
            batch = check_batch(nested_floats(v1_instances(payload), "instances"),
                                model.dims, self.max_batch, "instances")
        probs, hands = await self._run(model.backend.predict_with_hands, batch)
        probs = np.asarray(probs, np.float32)
        if not isinstance(payload, InferRequest):
            return {"predictions": probs.tolist()}
        outputs = {OUTPUT_NAME: (probs, "FP32")}
        if hands is not None:
            outputs[HAND_FOUND] = (np.asarray(hands, np.float32)[:, None], "FP32")
        return _response(payload, outputs)


class ImageModel(_Base):
    """Encoded images -> class; a raw JPEG/PNG body on v1 (any non-JSON Content-Type), base64
    in v1 JSON, or a v2 ``image`` BYTES tensor."""

    def get_input_types(self):
        return [{"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self):
        classes = len(self.served.names) if self.served else -1
        outputs = [{"name": "class_name", "datatype": "BYTES", "shape": [-1]},
                   {"name": "class_index", "datatype": "INT32", "shape": [-1]},
                   {"name": "confidence", "datatype": "FP32", "shape": [-1]},
                   {"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]}]
        if self.served and self.served.reports_hands:
            outputs.append({"name": HAND_FOUND, "datatype": "BOOL", "shape": [-1]})
        return outputs

    def _classify(self, model: Served, blobs: list[bytes], where: str):
        batch = preprocess_images(blobs, model.backend.preprocessing, where)
        probs, hands = model.backend.predict_with_hands(batch)
        return np.asarray(probs, np.float32), hands

    async def _predict(self, model: Served, payload):
        if isinstance(payload, InferRequest):
            values = _v2_input(payload, IMAGE_INPUT, "BYTES").reshape(-1)
            where = IMAGE_INPUT
        elif isinstance(payload, bytes | bytearray):
            values, where = [bytes(payload)], "body"
        else:
            values, where = v1_instances(payload), "instances"
        if not 1 <= len(values) <= self.max_batch:
            raise BadRequest(f"{where}: {len(values)} images, expected 1 to {self.max_batch} "
                             "(--max_batch)")
        blobs = [image_bytes(v, f"{where}[{i}]") for i, v in enumerate(values)]
        probs, hands = await self._run(self._classify, model, blobs, where)
        index = probs.argmax(axis=1)
        if isinstance(payload, InferRequest):
            outputs = {
                "class_name": (np.array([model.names[i] for i in index], dtype=object),
                               "BYTES"),
                "class_index": (index.astype(np.int32), "INT32"),
                "confidence": (probs.max(axis=1), "FP32"),
                "probabilities": (probs, "FP32")}
            if hands is not None:
                outputs[HAND_FOUND] = (np.asarray(hands, bool), "BOOL")
            return _response(payload, outputs)
        records = []
        for k, i in enumerate(index):
            record = {"class_name": model.names[i], "class_index": int(i),
                      "confidence": float(probs[k, i]),
                      "probabilities": dict(zip(model.names, map(float, probs[k]),
                                                strict=True))}
            if hands is not None:
                record[HAND_FOUND] = bool(hands[k])
            records.append(record)
        return {"predictions": records}
