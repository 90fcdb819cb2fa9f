"""`gesturenet serve`: an exported model behind KServe's model server (REST + gRPC)."""

from __future__ import annotations

import argparse

from gesturenet_lib.errors import UserInputError

ACCEPTS_EXTRA_ARGS = True  # unknown flags are KServe's server flags (--http_port, --grpc_port, ...)

# KServe's ModelServer arguments taken from its own flags; the rest of its flags are read by
# KServe itself (logging, predictor settings).
SERVER_ARGS = ("http_port", "grpc_port", "workers", "max_threads", "max_asyncio_workers",
               "enable_grpc", "enable_docs_url", "enable_latency_logging", "access_log_format",
               "event_loop", "timeout_keep_alive", "ssl_certfile", "ssl_keyfile")


def add_parser(subparsers) -> argparse.ArgumentParser:
    from gesturenet_lib.serving import server

    parser = subparsers.add_parser(
        "serve", help="serve an exported model with KServe (v1 and v2, REST and gRPC)",
        description="Serve a model (.onnx, or .etlt with the key; also .tlt/.keras/.engine) "
                    "with ONNX Runtime behind KServe's model server. Two models: NAME takes "
                    "tensors as the Triton entry does (input_1 -> predictions, hand_found), "
                    "NAME-image takes JPEG/PNG bytes and answers with the class. KServe's own "
                    "flags pass through: --http_port (8080), --grpc_port (8081), --enable_grpc, "
                    "--max_threads, --grpc_max_receive_message_length, ... Readiness: "
                    "/v2/models/NAME/ready; liveness: /v2/health/live; Prometheus: /metrics.")
    parser.add_argument("-m", "--model", required=True,
                        help="the model file, or an export folder (KServe's /mnt/models)")
    parser.add_argument("-k", "--key", help="the model's key (default: $GESTURENET_KEY)")
    parser.add_argument("--model_name", default=server.DEFAULT_NAME,
                        help=f"the name in the endpoint paths (default: {server.DEFAULT_NAME}; "
                             "the image model is NAME-image)")
    parser.add_argument("--max_batch", type=int, default=server.DEFAULT_MAX_BATCH,
                        help="most images or tensors in one request (default: %(default)s)")
    parser.add_argument("--max_request_bytes", type=int,
                        default=server.DEFAULT_MAX_REQUEST_BYTES,
                        help="larger HTTP bodies get a 413 (default: %(default)s)")
    parser.add_argument("--max_concurrent_requests", type=int,
                        help="inference requests served at once; more get a 503 with "
                             "Retry-After (default: two per core, fewer for large "
                             f"--max_request_bytes: {server.REQUEST_MEMORY_FACTOR} x the body "
                             f"limit each within {server.INFLIGHT_MEMORY_BUDGET >> 30} GiB)")
    parser.add_argument("--enable_model_repository_writes", action="store_true",
                        help="allow KServe's /v2/repository load and unload endpoints "
                             "(off: they get a 403, so no request can unload the model)")
    return parser


def run(args: argparse.Namespace) -> int:
    from kserve import model_server

    from gesturenet_lib.keys import optional_key
    from gesturenet_lib.serving.server import ServeRequest, serve

    known, unknown = model_server.parser.parse_known_args(args.extra_args)
    if unknown:
        raise UserInputError(f"unrecognized arguments: {' '.join(unknown)} (neither "
                             "gesturenet serve's nor KServe's server flags)")
    server_args = {name: getattr(known, name) for name in SERVER_ARGS}
    serve(ServeRequest(args.model, optional_key(args.key), args.model_name, args.max_batch,
                       args.max_request_bytes, server_args, args.max_concurrent_requests,
                       args.enable_model_repository_writes))
    return 0
