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
# Requests in flight take memory in proportion to their body: measured with
# bench/serve_bench.py, a v1 JSON body of nested floats (the worst case) took about 17 times
# its size while parsed and run (ONNX Runtime runs it in parts: ORT_RUN_IMAGES); with a
# margin, REQUEST_MEMORY_FACTOR. The default concurrency keeps requests in flight together
# under INFLIGHT_MEMORY_BUDGET, and at most two per core.
REQUEST_MEMORY_FACTOR = 24
INFLIGHT_MEMORY_BUDGET = 4 << 30
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
    max_concurrent_requests: int | None = None        # None: default_max_inflight
    repository_writes: bool = False                   # KServe's load/unload endpoints


def default_max_inflight(max_request_bytes: int) -> int:
    """Inference requests served at once: two per core, fewer when their bodies could take
    more than INFLIGHT_MEMORY_BUDGET together."""
    by_memory = INFLIGHT_MEMORY_BUDGET // (REQUEST_MEMORY_FACTOR * max_request_bytes)
    return max(1, min(2 * (os.cpu_count() or 1), by_memory))


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
    """ASGI middleware in front of KServe's app, where every refusal is one line in the log
    and one JSON ``{"error": ...}`` answer:

    - ``/v2/health/ready`` says 503 whenever a model is not loaded (also after an unload);
    - model repository writes (``/v2/repository/...`` load and unload) are refused (403)
      unless ``repository_writes``;
    - a 413 for bodies above ``max_bytes``, declared (Content-Length; with ``Expect:
      100-continue`` before the client sends anything) or streamed (counted as they arrive);
    - a 503 with Retry-After beyond ``max_inflight`` inference requests at once, which bounds
      the memory requests can take;
    - a 400 for a v2 binary request whose sizes do not agree with its data;
    - a v2 infer request with no Content-Type and no binary part is JSON: tritonclient sends
      its all-JSON requests so and Triton accepts them, while KServe would read them as bytes.
    """

    def __init__(self, app, max_bytes: int, max_inflight: int, ready: Callable[[], bool],
                 repository_writes: bool = False):
        self.app, self.max_bytes, self.max_inflight = app, max_bytes, max_inflight
        self.ready, self.repository_writes = ready, repository_writes
        self.inflight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        headers = dict(scope["headers"])
        if path.rstrip("/") == "/v2/health/ready":
            ready = self.ready()
            return await _answer(send, 200 if ready else 503, {"ready": ready})
        if path.startswith("/v2/repository/") and method != "GET" \
                and not self.repository_writes:
            return await self._refuse(scope, send, 403, "model repository writes are off "
                                      "(gesturenet serve --enable_model_repository_writes)")
        if (path.endswith("/infer") and b"content-type" not in headers
                and b"inference-header-content-length" not in headers):
            scope = {**scope, "headers": [*scope["headers"],
                                          (b"content-type", b"application/json")]}
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            if headers.get(b"expect", b"").lower() != b"100-continue":
                await self._drain(receive, 0)  # nothing is sent before we read: no 100
            return await self._too_large(scope, send, int(declared))
        inference = path.endswith(("/infer", ":predict", ":explain"))
        if inference and self.inflight >= self.max_inflight:
            await self._drain(receive, 0)
            return await self._refuse(scope, send, 503, f"{self.inflight} requests in "
                                      f"flight, the limit (--max_concurrent_requests); retry",
                                      [(b"retry-after", b"1")])
        if inference:
            self.inflight += 1
        try:
            return await self._forward(scope, receive, send, headers, inference)
        finally:
            if inference:
                self.inflight -= 1

    async def _forward(self, scope, receive, send, headers: dict, inference: bool):
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
                return await self._too_large(scope, send, size)
        binary = headers.get(b"inference-header-content-length")
        if inference and binary is not None:
            from gesturenet_lib.serving.payloads import (
                BadRequest,
                check_v2_binary,
                v2_binary_bytes_as_base64,
            )

            body = b"".join(c.get("body", b"") for c in chunks)
            try:
                header = check_v2_binary(body, binary.decode("latin-1"))
            except BadRequest as err:
                return await self._refuse(scope, send, 400, str(err))
            rewritten = v2_binary_bytes_as_base64(body, header, int(binary))
            if rewritten:
                scope, chunks = _with_body(scope, *rewritten), [
                    {"type": "http.request", "body": rewritten[0], "more_body": False}]
        return await self.app(scope, _replay(chunks, receive), send)

    async def _drain(self, receive, size: int) -> int:
        """Read and drop the rest of a refused body, so the client (which sends all of it
        before reading) gets the answer instead of a reset connection; past DRAIN_FACTOR
        times the limit the connection is dropped instead."""
        more = True
        while more and size <= DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        return size

    async def _too_large(self, scope, send, size: int):
        return await self._refuse(scope, send, 413, f"request body of {size} bytes is above "
                                  f"the limit of {self.max_bytes} (--max_request_bytes)")

    async def _refuse(self, scope, send, status: int, reason: str, headers=()):
        log.warning("refused %s %s: %d %s", scope["method"], scope["path"][:200], status,
                    reason)
        await _answer(send, status, {"error": reason}, headers)


async def _answer(send, status: int, doc: dict, headers=()) -> None:
    body = json.dumps(doc).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class OneLineRefusals(logging.Filter):
    """KServe logs every refused request (a 4xx, or 503 while loading) with its traceback,
    2 KB each; for those, the log keeps one line: the status class and the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, InvalidInput | ModelNotFound | ModelNotReady):
            record.msg, record.args = "refused: %s: %s", (type(error).__name__,
                                                          str(error)[:300])
            record.exc_info = record.exc_text = None
        return True


async def validation_error(request, exc):
    """FastAPI's 422 echoes the whole body back (7.5 MB in, 6 MB out): one line instead."""
    from fastapi.responses import JSONResponse

    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))[:100]
    reason = f"request does not match the schema: {where}: {str(first.get('msg', ''))[:150]}"
    log.warning("refused %s %s: 422 %s", request.method, request.url.path[:200], reason)
    return JSONResponse(status_code=422, content={"error": reason})


def _with_body(scope: dict, body: bytes, header_length: int) -> dict:
    """``scope`` with the headers of a rewritten v2 body (all JSON when ``header_length`` is
    0)."""
    drop = (b"content-length", b"inference-header-content-length", b"content-type")
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in drop]
    headers.append((b"content-length", str(len(body)).encode()))
    if header_length:
        headers += [(b"inference-header-content-length", str(header_length).encode()),
                    (b"content-type", b"application/octet-stream")]
    else:
        headers.append((b"content-type", b"application/json"))
    return {**scope, "headers": headers}


def _replay(messages: list, then=None):
    queue = list(messages)

    async def receive():
        if queue:
            return queue.pop(0)
        return await then() if then else {"type": "http.disconnect"}

    return receive


def _load(req: ServeRequest, models: list, on_error: Callable[[Exception], None]) -> None:
    """Load, warm up and attach the model; ``on_error`` gets what stopped it."""
    from gesturenet_lib.export.exporter import check_against_manifest
    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.serving.models import served

    try:
        path = model_file(req.model)
        check_against_manifest(path)
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
    the line in its log. The log handlers are held first (a second at most each, so that a
    stuck handler cannot keep the process alive), so that no other thread (the server
    starting up) writes a line after it."""
    loggers = [logging.getLogger(), *(logger for logger in logging.Logger.manager.loggerDict
                                      .values() if isinstance(logger, logging.Logger))]
    for handler in {handler for logger in loggers for handler in logger.handlers}:
        if handler.lock is not None:
            handler.lock.acquire(timeout=1.0)
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
    concurrent = req.max_concurrent_requests
    if req.max_batch < 1 or req.max_request_bytes < 1 or (concurrent is not None
                                                            and concurrent < 1):
        raise UserInputError("--max_batch, --max_request_bytes and --max_concurrent_requests "
                             "must be >= 1")
    check_server_args(req.server_args)
    if req.server_args.get("workers", 1) != 1:
        raise UserInputError(f"--workers {req.server_args['workers']}: one worker process per "
                             "server; scale with replicas (the InferenceService's "
                             "minReplicas/maxReplicas)")
    import kserve
    from fastapi.exceptions import RequestValidationError
    from kserve import model_server
    from kserve.logging import logger as kserve_log

    from gesturenet_lib.serving.models import ImageModel, TensorModel

    models = [TensorModel(req.name, req.max_batch),
              ImageModel(f"{req.name}-image", req.max_batch)]
    server = kserve.ModelServer(**req.server_args)
    for m in models:
        server.register_model(m)   # registered while not ready: readiness says 503 until loaded
    inflight = concurrent if concurrent is not None else \
        default_max_inflight(req.max_request_bytes)
    model_server.app.add_middleware(
        RequestGate, max_bytes=req.max_request_bytes, max_inflight=inflight,
        ready=lambda: all(m.ready for m in models), repository_writes=req.repository_writes)
    model_server.app.add_exception_handler(RequestValidationError, validation_error)
    kserve_log.addFilter(OneLineRefusals())
    log.info("serve: at most %d inference requests at once, bodies up to %d bytes",
             inflight, req.max_request_bytes)
    threading.Thread(target=_load, args=(req, models, on_error), daemon=True,
                     name="gesturenet-load").start()
    server.start([])
