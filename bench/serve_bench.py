"""Benchmark: what `gesturenet serve` costs. A bounded load test on loopback: --clients
concurrent clients for --seconds each against the tensor endpoint (tritonclient's HTTP and
gRPC clients, binary v2 tensors, one crop per request) and the image endpoint (a PNG body,
v1), beside the same model in-process (the backend `gesturenet inference` uses, the same
threads and the same one-crop batches, decode and preprocessing included for images). In one
run; prints requests per second and p50/p99 latency of each, the server/in-process
throughput ratio, and the error count (which must be 0).

Then a burst beyond the server's concurrency limit: --burst clients at once, each sending
large valid requests (a v1 JSON body of nested floats just under the 16 MB body limit, and 64
encoded images) to a fresh server with its default limits. Every answer must be a 200 or a
503 with Retry-After, and the server's peak memory (VmHWM) must stay under the bound the docs
state: its idle size plus limit x REQUEST_MEMORY_FACTOR x body limit.

    .venv/bin/python bench/serve_bench.py [--model model.onnx] [--clients 8] [--seconds 30]
        [--burst 12] [--burst_only]

Without --model, a hand_landmarks model is trained briefly on the bundled sample and exported
(the demo's family; timing does not depend on the weights). The server and the clients share
this machine's cores, as they would on one small node. Writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from results_file import write_results

REPO = Path(__file__).resolve().parents[1]

SAMPLE = REPO / "data" / "hagrid-sample"


def build_model(root: Path, epochs: int | None = 3, landmarks: dict | None = None
                ) -> tuple[Path, list[Path]]:
    """(exported .onnx, the kpi people's PNG crops) from the bundled sample through the CLI,
    with the project's landmark specs (``epochs``: None keeps the spec's; ``landmarks``:
    model.hand_landmarks settings changed)."""
    from gesturenet_lib import cli

    specs = REPO / "specs"
    spec = json.loads((specs / "landmark_train_spec.json").read_text())
    if epochs:
        spec["trainer"]["finetuning"]["train_epochs"] = epochs
    spec["model"].setdefault("hand_landmarks", {}).update(landmarks or {})
    (root / "specs").mkdir(parents=True)  # spec paths are relative to it: ../workspace
    for name in ("landmark_dataset_config.json", "dataset_experiment_config.json"):
        (root / "specs" / name).write_text((specs / name).read_text())
    (root / "specs/landmark_train_spec.json").write_text(json.dumps(spec))
    steps = [["dataset_import", "--format", "hagrid", "--images", str(SAMPLE / "dataset"),
              "--annotations", str(SAMPLE / "annotations"), "--output",
              str(root / "workspace/original/hagrid")],
             ["dataset_convert", "--dataset_spec", str(root / "specs/landmark_dataset_config.json"),
              "--experiment_spec", str(root / "specs/dataset_experiment_config.json"),
              "--k_folds", "0", "--output_filename", str(root / "workspace/data_landmarks.json"),
              "--experiment_name", "landmarks"],
             ["train", "-e", str(root / "specs/landmark_train_spec.json"), "-k", "bench"],
             ["export", "-m", str(root / "workspace/experiments_landmarks/model/model.tlt"),
              "-k", "bench", "-o", str(root / "export/model.onnx")]]
    for step in steps:
        assert cli.main(step) == 0, step
    doc = json.loads((root / "workspace/data_landmarks.json").read_text())
    crops = [root / "workspace" / e["bbox_path"] for e in doc["kpi_set"]["images"]]
    return root / "export/model.onnx", crops


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, *flags: str) -> tuple[subprocess.Popen, int, int]:
    port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gesturenet_lib", "serve", "-m", str(model),
                             "--http_port", str(port), "--grpc_port", str(grpc_port),
                             "--enable_latency_logging", "false", *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/v2/models/gesturenet/ready")
            if conn.getresponse().status == 200:
                return proc, port, grpc_port
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server never became ready")


def run_threads(target, clients: int) -> float:
    """``target(k)`` in ``clients`` threads at once; the wall seconds until all ended."""
    threads = [threading.Thread(target=target, args=(k,)) for k in range(clients)]
    begin = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - begin


def load(clients: int, seconds: float, make_call) -> dict:
    """Run ``clients`` threads, each calling its own ``make_call()()`` in a loop."""
    stop = time.monotonic() + seconds
    samples: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def worker(k: int) -> None:
        call = make_call(k)
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                call()
            except Exception:  # counted: the run must show none
                errors[k] += 1
                continue
            samples[k].append(time.perf_counter() - start)

    wall = run_threads(worker, clients)
    every = sorted(s for per in samples for s in per)
    return {"requests": len(every), "errors": sum(errors),
            "requests_per_s": len(every) / wall,
            "p50_ms": 1000 * statistics.median(every) if every else None,
            "p99_ms": 1000 * every[int(0.99 * (len(every) - 1))] if every else None}


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def burst(model: Path, encoded: list[bytes], clients: int, rounds: int = 3) -> dict:
    """``clients`` threads at once, ``rounds`` large valid requests each, against a fresh
    server with its default limits; counts the answers by status and reads its peak memory."""
    import base64

    import numpy as np

    from gesturenet_lib.serving.server import (
        DEFAULT_MAX_REQUEST_BYTES,
        REQUEST_MEMORY_FACTOR,
        default_max_inflight,
    )

    rng = np.random.default_rng(0)
    tensor = rng.random((3, 224, 224), dtype=np.float32).round(6).tolist()
    one = len(json.dumps(tensor))
    floats = json.dumps({"instances": [tensor] * int(DEFAULT_MAX_REQUEST_BYTES * 0.95 // one)})
    images = json.dumps({"instances": [{"b64": base64.b64encode(encoded[i % len(encoded)])
                                        .decode()} for i in range(64)]})
    bodies = [("/v1/models/gesturenet:predict", floats.encode()),
              ("/v1/models/gesturenet-image:predict", images.encode())]
    proc, port, _ = start_server(model)
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    try:
        idle = peak_rss_mb(proc.pid)

        def client(k: int) -> None:
            for r in range(rounds):
                path, body = bodies[(k + r) % 2]
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
                try:
                    conn.request("POST", path, body, {"Content-Type": "application/json"})
                    response = conn.getresponse()
                    response.read()
                    key = str(response.status)
                    if response.status == 503 and response.getheader("Retry-After") is None:
                        key = "503 without Retry-After"
                except OSError as err:
                    key = type(err).__name__
                finally:
                    conn.close()
                with lock:
                    statuses[key] = statuses.get(key, 0) + 1

        wall = run_threads(client, clients)
        peak = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    limit = default_max_inflight(DEFAULT_MAX_REQUEST_BYTES)
    bound = idle + limit * REQUEST_MEMORY_FACTOR * DEFAULT_MAX_REQUEST_BYTES / 2 ** 20
    return {"clients": clients, "requests": clients * rounds, "statuses": statuses,
            "wall_s": wall, "limit": limit, "float_body_mb": len(bodies[0][1]) / 2 ** 20,
            "image_body_mb": len(bodies[1][1]) / 2 ** 20, "idle_rss_mb": idle,
            "peak_rss_mb": peak, "bound_mb": bound,
            "ok": set(statuses) <= {"200", "503"} and "200" in statuses and peak <= bound}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="an exported .onnx (default: train one briefly)")
    parser.add_argument("--crops", help="a folder of PNG/JPEG crops (default: the sample's)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--burst", type=int, default=12,
                        help="clients in the burst beyond the concurrency limit")
    parser.add_argument("--burst_only", action="store_true",
                        help="only the burst (no throughput phases)")
    args = parser.parse_args()

    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.models.preprocessing import decode_rgb, to_input

    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        if args.model:
            model = Path(args.model)
            crops = sorted(p for p in Path(args.crops).rglob("*")
                           if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        else:
            model, crops = build_model(Path(tmp))
        encoded = [p.read_bytes() for p in crops[:64]]
        backend = load_backend(str(model), None, None)
        tensors = [to_input(decode_rgb(b), backend.preprocessing)[None] for b in encoded]

        def in_process_tensor(k):
            it = iter(range(10 ** 9))
            return lambda: backend.predict_with_hands(tensors[(next(it) + k) % len(tensors)])

        def in_process_image(k):
            it = iter(range(10 ** 9))

            def call():
                blob = encoded[(next(it) + k) % len(encoded)]
                backend.predict_with_hands(to_input(decode_rgb(blob), backend.preprocessing)[None])
            return call

        if args.burst_only:
            result = burst(model, encoded, args.burst)
            print(json.dumps(result, indent=1))
            write_results("serve_burst", result)
            return 0 if result["ok"] else 1
        proc, port, grpc_port = start_server(model)
        try:
            def tensor_client(module, address):
                def make(k):
                    client = module.InferenceServerClient(address)
                    it = iter(range(10 ** 9))

                    def call():
                        x = tensors[(next(it) + k) % len(tensors)]
                        tensor = module.InferInput("input_1", list(x.shape), "FP32")
                        tensor.set_data_from_numpy(x)
                        client.infer("gesturenet", [tensor])
                    return call
                return make

            served_tensor = tensor_client(httpclient, f"127.0.0.1:{port}")
            served_tensor_grpc = tensor_client(grpcclient, f"127.0.0.1:{grpc_port}")

            def served_image(k):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                it = iter(range(10 ** 9))

                def call():
                    body = encoded[(next(it) + k) % len(encoded)]
                    conn.request("POST", "/v1/models/gesturenet-image:predict", body,
                                 {"Content-Type": "image/png"})
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        raise RuntimeError(response.status)
                return call

            figures = {}
            for name, make in (("in_process_tensor", in_process_tensor),
                               ("served_tensor", served_tensor),
                               ("served_tensor_grpc", served_tensor_grpc),
                               ("in_process_image", in_process_image),
                               ("served_image", served_image)):
                figures[name] = load(args.clients, args.seconds, make)
                print(f"{name:<18} {figures[name]['requests_per_s']:8.1f} req/s   "
                      f"p50 {figures[name]['p50_ms']:7.1f} ms   "
                      f"p99 {figures[name]['p99_ms']:7.1f} ms   "
                      f"errors {figures[name]['errors']}")
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        figures["burst"] = burst(model, encoded, args.burst)
        print("burst:", json.dumps(figures["burst"]))
    for kind, served, local in (("tensor (REST)", "served_tensor", "in_process_tensor"),
                                ("tensor (gRPC)", "served_tensor_grpc", "in_process_tensor"),
                                ("image", "served_image", "in_process_image")):
        ratio = figures[served]["requests_per_s"] / figures[local]["requests_per_s"]
        figures[f"{served}_ratio_to_in_process"] = ratio
        print(f"{kind}: served / in-process throughput = {ratio:.2f}")
    errors = sum(f.get("errors", 0) for f in figures.values() if isinstance(f, dict))
    errors += 0 if figures["burst"]["ok"] else 1
    figures.update(clients=args.clients, seconds=args.seconds, cores=os.cpu_count(),
                   model=str(model.name), errors=errors)
    print(f"errors during the run: {errors}")
    write_results("serve", figures)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
