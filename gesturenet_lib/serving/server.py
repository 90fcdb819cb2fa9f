"""Run the two models under KServe's ModelServer.

The server listens at once and loads the model in a thread: a pod is live while a large model
is read, and ready (``/v2/models/<name>/ready``) only once it can answer. A model that cannot
be loaded (missing file, wrong key) ends the server with the one-line error and exit 2.
Bodies above ``--max_request_bytes`` get a 413 before they are read; KServe's gRPC server has
its own limit (``--grpc_max_receive_message_length``)."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from gesturenet_lib import io
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.export.deploy_configs import MODEL_NAME

log = logging.getLogger(__name__)

DEFAULT_NAME = MODEL_NAME          # the Triton entry's name, so clients switch without edits
DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_REQUEST_BYTES = 16 << 20
DRAIN_FACTOR = 8                   # a refused body is read to its end up to this many limits
SERVABLE = (".onnx", ".etlt", ".tlt", ".keras", ".engine")


@dataclass(frozen=True)
class ServeRequest:
    model: str                      # a model file, or an export folder (its manifest names it)
    key: str | None
    name: str = DEFAULT_NAME
    max_batch: int = DEFAULT_MAX_BATCH
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    server_args: dict = field(default_factory=dict)   # KServe's ModelServer keyword arguments


def model_file(path: str) -> str:
    """``path`` itself, or in a folder (KServe's /mnt/models) the model its export manifest
    names, else its only model file."""
    if not io.is_dir(path):
        return path
    from gesturenet_lib.export.exporter import MANIFEST_SUFFIX

    names = io.list_dir(path)  # the folder itself, not its Triton entry or kserve/
    manifests = [n for n in names if n.endswith(MANIFEST_SUFFIX)]
    if len(manifests) == 1:
        listed = json.loads(io.read_text(io.join(path, manifests[0])))["files"]
        model = next((f for f, v in listed.items() if v["kind"] == "model"), None)
        if model:
            return io.join(path, os.path.basename(model))
    models = [n for n in names if n.endswith(SERVABLE)]
    if len(models) != 1:
        raise UserInputError(f"-m {path}: a folder needs one export manifest (*{MANIFEST_SUFFIX})"
                             f" or one model file; found {len(models)} model files")
    return io.join(path, models[0])


class RequestGate:
    """ASGI middleware in front of KServe's app:

    - a 413 with a one-line reason for bodies above ``max_bytes``, declared (Content-Length) or
      streamed (counted as they arrive, before the app sees them);
    - a v2 infer request with no Content-Type and no binary part is JSON: tritonclient sends
      its all-JSON requests so and Triton accepts them, while KServe would read them as bytes.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if (scope["path"].endswith("/infer") and b"content-type" not in headers
                and b"inference-header-content-length" not in headers):
            scope = {**scope, "headers": [*scope["headers"],
                                          (b"content-type", b"application/json")]}
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._drain(receive, 0)
            return await self._refuse(send, int(declared))
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message]), send)
            chunks.append(message)
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
            if size > self.max_bytes:
                if more:
                    size = await self._drain(receive, size)
                return await self._refuse(send, size)
        return await self.app(scope, _replay(chunks, receive), send)

    async def _drain(self, receive, size: int) -> int:
        """Read and drop the rest of a refused body, so the client (which sends all of it
        before reading) gets the 413 instead of a reset connection; past DRAIN_FACTOR times
        the limit the connection is dropped instead."""
        more = True
        while more and size <= DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        return size

    async def _refuse(self, send, size: int):
        body = json.dumps({"error": f"request body of {size} bytes is above the limit of "
                                    f"{self.max_bytes} (--max_request_bytes)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list, then=None):
    queue = list(messages)

    async def receive():
        if queue:
            return queue.pop(0)
        return await then() if then else {"type": "http.disconnect"}

    return receive


def _load(req: ServeRequest, models: list, on_error: Callable[[Exception], None]) -> None:
    """Load, warm up and attach the model; ``on_error`` gets what stopped it."""
    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.serving.models import served

    try:
        path = model_file(req.model)
        model = served(load_backend(path, req.key, None))
    except Exception as err:  # any failure ends the server: it can never become ready
        on_error(err if isinstance(err, UserInputError)
                 else UserInputError(f"-m {req.model}: cannot be served: {err}"))
        return
    for m in models:
        m.attach(model)
    log.info("serve: %s loaded (%d classes: %s); ready", path, len(model.names),
             ", ".join(model.names))


def exit_on_error(err: Exception) -> None:
    """The default ``on_error``: the one-line error, then exit 2 at once. Nothing was served
    (requests got 503), so there is nothing to drain; Kubernetes restarts the pod and shows
    the line in its log."""
    print(f"gesturenet serve: error: {err}", file=sys.stderr, flush=True)
    os._exit(2)


PORT_FLAGS = ("http_port", "grpc_port")
COUNT_FLAGS = ("max_threads", "max_asyncio_workers")


def check_server_args(args: dict) -> None:
    """Ports and counts checked before the server starts: a bad one is a one-line
    UserInputError, not a C++ abort inside gRPC. A port another process listens on is refused
    too (gRPC would otherwise share it through SO_REUSEPORT and take half the connections)."""
    import socket

    for name in COUNT_FLAGS:
        value = args.get(name)
        if value is not None and value < 1:
            raise UserInputError(f"--{name} {value}: must be >= 1")
    for name in PORT_FLAGS:
        port = args.get(name)
        if port is None or (name == "grpc_port" and not args.get("enable_grpc", True)):
            continue
        if not 1 <= port <= 65535:
            raise UserInputError(f"--{name} {port}: must be a port number in 1-65535")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("", port))
            except OSError as err:
                raise UserInputError(f"--{name} {port}: cannot listen there "
                                     f"({err.strerror or err}); is another server on it?") from None


def serve(req: ServeRequest, on_error: Callable[[Exception], None] = exit_on_error) -> None:
    """Serve until SIGTERM/SIGINT (KServe's graceful shutdown: requests in flight finish)."""
    if req.max_batch < 1 or req.max_request_bytes < 1:
        raise UserInputError("--max_batch and --max_request_bytes must be >= 1")
    check_server_args(req.server_args)
    if req.server_args.get("workers", 1) != 1:
        raise UserInputError(f"--workers {req.server_args['workers']}: one worker process per "
                             "server; scale with replicas (the InferenceService's "
                             "minReplicas/maxReplicas)")
    import kserve
    from kserve import model_server

    from gesturenet_lib.serving.models import ImageModel, TensorModel

    models = [TensorModel(req.name, req.max_batch),
              ImageModel(f"{req.name}-image", req.max_batch)]
    server = kserve.ModelServer(**req.server_args)
    for m in models:
        server.register_model(m)   # registered while not ready: readiness says 503 until loaded
    model_server.app.add_middleware(RequestGate, max_bytes=req.max_request_bytes)
    threading.Thread(target=_load, args=(req, models, on_error), daemon=True,
                     name="gesturenet-load").start()
    server.start([])
