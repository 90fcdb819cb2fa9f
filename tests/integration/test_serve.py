"""`gesturenet serve` on 127.0.0.1, with a model exported from the bundled sample, talked to
by clients no one here wrote: tritonclient's HTTP and gRPC clients for the tensor protocol,
plain HTTP (urllib) for the image endpoint. Answers must equal `gesturenet inference` on the
same crops; bad requests get a 4xx with a one-line reason and the server stays up.

The server always runs in its own process: this process never imports KServe, whose gRPC
protos share names with tritonclient's in protobuf's one descriptor pool."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from gesturenet_lib import __version__, cli
from gesturenet_lib.models.preprocessing import Preprocessing, load_rgb, to_input
from tests.conftest import SPECS
from tests.landmark_sample import convert_sample_for_landmarks

KEY = "serve-test-key"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `gesturenet serve` process and its two ports."""

    def __init__(self, model: str, *flags: str, key: str | None = KEY):
        self.http, self.grpc = _free_port(), _free_port()
        env = {**os.environ, "GESTURENET_KEY": key or ""}
        # Its log goes to a file: a pipe nobody reads would stop a chatty server.
        self.log = tempfile.NamedTemporaryFile("w+", prefix="serve-", suffix=".log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gesturenet_lib", "serve", "-m", model, "--http_port",
             str(self.http), "--grpc_port", str(self.grpc), *flags],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def output(self) -> str:
        with open(self.log.name) as log:
            return log.read()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http}{path}"

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code
        except (urllib.error.URLError, ConnectionError):
            return 0

    def wait_for(self, path: str, status: int = 200, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status(path) == status:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: "
                                     f"{self.output()[-2000:]}")
            time.sleep(0.2)
        raise AssertionError(f"{path} never answered {status}")

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
        request = urllib.request.Request(self.url(path), data=body,
                                         headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The bundled sample converted with the landmark specs, a short training, and an .etlt
    export with a gs:// storage address; plus the kpi crops and `gesturenet inference` on them."""
    root = convert_sample_for_landmarks(tmp_path_factory.mktemp("serve"))
    specs = root / "specs"
    spec = json.loads((SPECS / "landmark_train_spec.json").read_text())
    spec["trainer"]["finetuning"]["train_epochs"] = 10
    spec_file = specs / "landmark_train_spec.json"
    spec_file.write_text(json.dumps(spec))
    assert cli.main(["train", "-e", str(spec_file), "-k", KEY]) == 0
    model = root / "workspace/experiments_landmarks/model/model.tlt"
    export_dir = root / "export"
    assert cli.main(["export", "-m", str(model), "-k", KEY, "-o", str(export_dir / "model.etlt"),
                     "--storage_uri", "gs://models/gesturenet/v1"]) == 0
    assert cli.main(["export", "-m", str(model), "-k", KEY,
                     "-o", str(root / "export_onnx" / "model.onnx")]) == 0

    doc = json.loads((root / "workspace/data_landmarks.json").read_text())
    crops = root / "crops"
    for entry in doc["kpi_set"]["images"][:24]:
        source = root / "workspace" / entry["bbox_path"]
        (crops / source.name).parent.mkdir(parents=True, exist_ok=True)
        (crops / source.name).write_bytes(source.read_bytes())
    # crops cut another way than ours: tall and wide, as a tracker or a labelling tool cuts
    import cv2

    first = cv2.imread(str(crops / source.name))
    h, w = first.shape[:2]
    cv2.imwrite(str(crops / "000_tall.png"), first[:, w // 4:3 * w // 4])
    cv2.imwrite(str(crops / "000_wide.png"), first[h // 3:2 * h // 3])
    assert cli.main(["inference", "-e", str(spec_file), "-m", str(export_dir / "model.etlt"),
                     "-k", KEY, "--image_dir", str(crops), "--results_dir",
                     str(root / "results")]) == 0
    records = [json.loads(line) for line in
               (root / "results/results.jsonl").read_text().splitlines()]
    return {"root": root, "export": export_dir, "crops": crops,
            "expected": {r["path"]: r for r in records}}


@pytest.fixture(scope="module")
def server(exported):
    # The export folder, as KServe's storage initializer lays it out in /mnt/models: the
    # server finds the model through the export manifest.
    running = Server(str(exported["export"]))
    running.wait_for("/v2/models/gesturenet/ready")
    yield running
    assert running.stop() == 0  # SIGTERM: KServe's graceful shutdown, exit 0


def _prep(exported) -> Preprocessing:
    from gesturenet_lib.models.model_file import read_onnx

    meta = read_onnx(str(exported["export"] / "model.etlt"), KEY)[1]
    return Preprocessing.from_dict(meta["preprocessing"])


def _batch(exported, names):
    prep = _prep(exported)
    return np.stack([to_input(load_rgb(str(exported["crops"] / n)), prep) for n in names])


def test_tensor_protocol_with_tritonclient_http_and_grpc_equals_inference(exported, server):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    assert _prep(exported).fit == "letterbox"  # the family's default, stored in the model
    names = sorted(exported["expected"])
    batch = _batch(exported, names)
    expected = np.array([exported["expected"][n]["probabilities"] for n in names])
    hands = [exported["expected"][n]["hand_found"] for n in names]
    for module, url in ((httpclient, f"127.0.0.1:{server.http}"),
                        (grpcclient, f"127.0.0.1:{server.grpc}")):
        client = module.InferenceServerClient(url)
        assert client.is_server_live() and client.is_model_ready("gesturenet")
        metadata = client.get_model_metadata("gesturenet")
        assert [i["name"] for i in _inputs(metadata)] == ["input_1"]
        for start in range(0, len(batch), 8):  # 8 crops: 4.8 MB, within gRPC's 8 MiB default
            part = batch[start:start + 8]
            tensor = module.InferInput("input_1", list(part.shape), "FP32")
            tensor.set_data_from_numpy(part)
            result = client.infer("gesturenet", [tensor], outputs=[
                module.InferRequestedOutput("predictions"),
                module.InferRequestedOutput("hand_found")])
            np.testing.assert_allclose(result.as_numpy("predictions"),
                                       expected[start:start + 8], atol=1e-5)
            assert list(result.as_numpy("hand_found")[:, 0] >= 0.5) == hands[start:start + 8]


def _inputs(metadata) -> list[dict]:
    """Model metadata's inputs, from either client (a dict, or a protobuf message)."""
    if isinstance(metadata, dict):
        return metadata["inputs"]
    return [{"name": i.name} for i in metadata.inputs]


def test_image_endpoint_over_plain_http_equals_inference(exported, server):
    import tritonclient.grpc as grpcclient

    for name, record in sorted(exported["expected"].items())[:8]:
        data = (exported["crops"] / name).read_bytes()
        status, binary = server.post("/v1/models/gesturenet-image:predict", data, "image/png")
        assert status == 200
        b64 = base64.b64encode(data).decode()
        status, v1 = server.post("/v1/models/gesturenet-image:predict",
                                 json.dumps({"instances": [{"image_bytes": {"b64": b64}}]})
                                 .encode(), "application/json")
        assert status == 200 and v1 == binary
        got = v1["predictions"][0]
        assert got["class_name"] == record["class_name"]
        assert got["class_index"] == record["class_index"]
        assert got["hand_found"] == record["hand_found"]
        assert got["confidence"] == pytest.approx(record["confidence"], abs=1e-5)
        status, v2 = server.post("/v2/models/gesturenet-image/infer", json.dumps(
            {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64]}]})
            .encode(), "application/json")
        outputs = {o["name"]: o["data"] for o in v2["outputs"]}
        assert status == 200 and outputs["class_name"] == [record["class_name"]]
    # gRPC carries raw bytes (a BYTES tensor), two images in one request
    names = sorted(exported["expected"])[:2]
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc}")
    tensor = grpcclient.InferInput("image", [2], "BYTES")
    tensor.set_data_from_numpy(np.array([(exported["crops"] / n).read_bytes() for n in names],
                                        dtype=object))
    result = client.infer("gesturenet-image", [tensor])
    assert [c.decode() for c in result.as_numpy("class_name")] == \
        [exported["expected"][n]["class_name"] for n in names]


def test_bad_requests_get_a_4xx_with_one_line_and_the_server_stays_up(exported, server):
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http}")
    wrong = {"shape": (np.zeros((1, 3, 10, 10), np.float32), "FP32"),
             "dtype": (np.zeros((1, 3, 224, 224), np.int32), "INT32")}
    for case, (array, datatype) in wrong.items():
        tensor = httpclient.InferInput("input_1", list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        with pytest.raises(InferenceServerException) as err:
            client.infer("gesturenet", [tensor])
        assert err.value.status() == "400", case
        assert "input_1" in err.value.message() and "\n" not in err.value.message()
    path = "/v1/models/gesturenet-image:predict"
    cases = {"garbage bytes": (b"\x00garbage" * 100, "image/jpeg"),
             "an image of 0 bytes": (b"", "image/png"),
             "a truncated PNG": ((exported["crops"] / sorted(exported["expected"])[0])
                                 .read_bytes()[:200], "image/png"),
             "not base64": (b'{"instances": [{"b64": "%%%"}]}', "application/json"),
             "no instances": (b'{"inputs": []}', "application/json")}
    for case, (body, content_type) in cases.items():
        status, answer = server.post(path, body, content_type)
        assert 400 <= status < 500, case
        assert answer["error"] and "\n" not in answer["error"], case
    assert server.post(path, b"\xff" * (50 << 20), "image/jpeg")[0] == 413
    assert server.status("/v2/health/live") == 200
    data = (exported["crops"] / sorted(exported["expected"])[0]).read_bytes()
    assert server.post(path, data, "image/png")[0] == 200
    with urllib.request.urlopen(server.url("/metrics"), timeout=5) as response:
        metrics = response.read().decode()
    assert 'request_predict_seconds_count{model_name="gesturenet-image"}' in metrics


def test_readiness_is_false_until_the_model_is_loaded(exported, tmp_path):
    # A FIFO stands in for slow storage: reading the model blocks until the test writes it.
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    slow = Server(str(fifo), key=None)
    try:
        slow.wait_for("/v2/health/live")
        assert slow.status("/v2/models/gesturenet/ready") == 503
        assert slow.status("/v2/models/gesturenet-image/ready") == 503
        status, answer = slow.post("/v1/models/gesturenet-image:predict", b"\xff\xd8\xff",
                                   "image/jpeg")
        assert status == 503
        with open(fifo, "wb") as handle:
            handle.write((exported["root"] / "export_onnx" / "model.onnx").read_bytes())
        slow.wait_for("/v2/models/gesturenet/ready")
        assert slow.status("/v2/models/gesturenet-image/ready") == 200
    finally:
        assert slow.stop() == 0


def test_a_model_that_cannot_load_ends_the_server_with_one_line_and_exit_2(exported):
    wrong_key = Server(str(exported["export"] / "model.etlt"), key="not-the-key")
    assert wrong_key.proc.wait(timeout=120) == 2
    last = wrong_key.output().strip().splitlines()[-1]
    assert last.startswith("gesturenet serve: error:") and "model.etlt" in last
    assert subprocess.run([sys.executable, "-m", "gesturenet_lib", "serve", "-m",
                           str(exported["export"]), "--bogus_flag", "1"],
                          capture_output=True).returncode == 2


def test_export_writes_kserve_manifests(exported):
    folder = exported["export"] / "kserve"
    serve = yaml.safe_load((folder / "gesturenet-serve.yaml").read_text())
    assert serve["apiVersion"] == "serving.kserve.io/v1beta1"
    assert serve["kind"] == "InferenceService"
    container = serve["spec"]["predictor"]["containers"][0]
    assert container["image"].endswith(f"/gesturenet:{__version__}")
    assert container["args"][:3] == ["serve", "-m", "/mnt/models/model.etlt"]
    env = {e["name"]: e for e in container["env"]}
    assert env["STORAGE_URI"]["value"] == "gs://models/gesturenet/v1"
    assert env["GESTURENET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "gesturenet-key"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/models/gesturenet/ready"
    assert container["resources"]["limits"]["cpu"]
    assert serve["spec"]["predictor"]["batcher"]["maxBatchSize"] > 1
    # The .etlt has no Triton entry (Triton cannot decrypt it): no Triton service.
    assert not (folder / "triton.yaml").exists()
    # A plain local .onnx export: Triton entry, but no storage address, so no manifests.
    assert not (exported["root"] / "export_onnx" / "kserve").exists()


def test_export_to_an_address_writes_the_triton_service(exported, tmp_path):
    model = exported["root"] / "workspace/experiments_landmarks/model/model.tlt"
    assert cli.main(["export", "-m", str(model), "-k", KEY, "-o", str(tmp_path / "m.onnx"),
                     "--storage_uri", "s3://bucket/gesturenet"]) == 0
    triton = yaml.safe_load((tmp_path / "kserve/triton.yaml").read_text())
    model_spec = triton["spec"]["predictor"]["model"]
    assert triton["apiVersion"] == "serving.kserve.io/v1beta1"
    assert model_spec["modelFormat"]["name"] == "triton"
    assert model_spec["storageUri"] == "s3://bucket/gesturenet/triton"
    assert model_spec["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert (tmp_path / "triton/gesturenet/config.pbtxt").exists()
    serve = yaml.safe_load((tmp_path / "kserve/gesturenet-serve.yaml").read_text())
    env = {e["name"] for e in serve["spec"]["predictor"]["containers"][0]["env"]}
    assert env == {"STORAGE_URI"}  # an .onnx needs no key
    manifest = json.loads((tmp_path / "m.export.json").read_text())
    assert {v["kind"] for v in manifest["files"].values()} >= {"kserve", "triton", "model"}


def test_serving_an_export_folder_takes_the_model_its_manifest_names(exported, tmp_path):
    from gesturenet_lib.errors import UserInputError
    from gesturenet_lib.serving.server import model_file

    assert model_file(str(exported["export"])) == str(exported["export"] / "model.etlt")
    (tmp_path / "a.onnx").write_bytes(b"x")
    (tmp_path / "b.onnx").write_bytes(b"x")
    with pytest.raises(UserInputError, match="found 2 model files"):
        model_file(str(tmp_path))
    assert Path(model_file(str(tmp_path / "a.onnx"))).name == "a.onnx"


def _serve(*args: str) -> subprocess.CompletedProcess:
    """`gesturenet serve` in a process of its own (KServe and tritonclient cannot share one:
    both register the inference.* protos)."""
    return subprocess.run([sys.executable, "-m", "gesturenet_lib", "serve", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("flags, message", [
    (["--http_port", "-5"], "--http_port -5: must be a port number in 1-65535"),
    (["--http_port", "99999"], "--http_port 99999: must be a port number in 1-65535"),
    (["--grpc_port", "0"], "--grpc_port 0: must be a port number in 1-65535"),
    (["--max_threads", "0"], "--max_threads 0: must be >= 1"),
])
def test_bad_ports_and_counts_are_one_line_and_exit_2(tmp_path, flags, message):
    done = _serve("-m", str(tmp_path / "model.onnx"), *flags)
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("flag, reuse_port", [("--http_port", False), ("--grpc_port", True)])
def test_a_port_another_server_holds_is_refused(tmp_path, flag, reuse_port):
    """Also when the holder shares its port (gRPC's SO_REUSEPORT): a second server would
    otherwise take half of the first one's connections."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        if reuse_port:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("", 0))
        holder.listen()
        port = holder.getsockname()[1]
        ports = {"--http_port": _free_port(), "--grpc_port": _free_port()} | {flag: port}
        args = [a for name, value in ports.items() for a in (name, str(value))]
        done = _serve("-m", str(tmp_path / "model.onnx"), *args)
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip()
    assert f"{flag} {port}: cannot listen there" in err and len(err.splitlines()) == 1


def _raw_infer(server, model: str, header: dict | bytes, binary: bytes,
               header_length: int | str | None = None) -> tuple[int, dict]:
    """A v2 REST request with binary tensors, its sizes as given (lies included)."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(text) if header_length is None else header_length
    request = urllib.request.Request(
        server.url(f"/v2/models/{model}/infer"), data=text + binary,
        headers={"Content-Type": "application/octet-stream",
                 "Inference-Header-Content-Length": str(length)})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _tensor(shape, size, datatype="FP32", name="input_1") -> dict:
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype,
                        "parameters": {"binary_data_size": size}}]}


def test_binary_tensors_whose_sizes_lie_are_a_400_with_the_reason(exported, server):
    one = np.zeros((1, 3, 224, 224), np.float32).tobytes()
    image = (exported["crops"] / sorted(exported["expected"])[0]).read_bytes()
    prefixed = len(image).to_bytes(4, "little") + image
    cases = {
        "binary_data_size smaller than the data": (_tensor([1, 3, 224, 224], 100), one, None),
        "a negative binary_data_size": (_tensor([1, 3, 224, 224], -5), one, None),
        "binary_data_size 'abc'": (_tensor([1, 3, 224, 224], "abc"), one, None),
        "a header length beyond the body": (_tensor([1, 3, 224, 224], len(one)), one, 10 ** 9),
        "a header length that is not a number": (_tensor([1, 3, 224, 224], len(one)), one, "x"),
        "two images in the shape, one in the data": (_tensor([2, 3, 224, 224], len(one)), one,
                                                     None),
        "100,000 images in the shape": (_tensor([100000, 3, 224, 224], len(one)), one, None),
    }
    for case, (header, binary, length) in cases.items():
        status, answer = _raw_infer(server, "gesturenet", header, binary, length)
        assert status == 400, (case, status, answer)
        assert answer["error"] and "\n" not in answer["error"], case
    byte_cases = {
        "a BYTES length prefix of 2^31": (_tensor([1], 8, "BYTES", "image"),
                                          (2 ** 31).to_bytes(4, "little") + b"abcd"),
        "fewer BYTES elements than the shape": (_tensor([2], len(prefixed), "BYTES", "image"),
                                                prefixed),
    }
    for case, (header, binary) in byte_cases.items():
        status, answer = _raw_infer(server, "gesturenet-image", header, binary)
        assert status == 400, (case, status, answer)
        assert "BYTES" in answer["error"] and "\n" not in answer["error"], case
    # the same request with honest sizes is served
    status, _ = _raw_infer(server, "gesturenet-image", _tensor([1], len(prefixed), "BYTES",
                                                               "image"), prefixed)
    assert status == 200


def test_a_grpc_bytes_element_whose_length_lies_is_invalid_argument(server):
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    request = service_pb2.ModelInferRequest(model_name="gesturenet-image")
    tensor = request.inputs.add()
    tensor.name, tensor.datatype = "image", "BYTES"
    tensor.shape.append(1)
    request.raw_input_contents.append((2 ** 31).to_bytes(4, "little") + b"\xff\xd8\xff")
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "length prefix" in err.value.details()


def test_images_that_lie_or_are_not_accepted_are_a_400_naming_why(server):
    import cv2

    textured = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", textured)[1].tobytes()
    cut = jpeg[:len(jpeg) // 2] + jpeg[3 * len(jpeg) // 4:]
    hdr = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 12000 +X 12000\n" + bytes(4000)
    path = "/v1/models/gesturenet-image:predict"
    status, answer = server.post(path, cut, "image/jpeg")
    assert status == 400 and "corrupt image (Corrupt JPEG data" in answer["error"]
    status, answer = server.post(path, hdr, "image/jpeg")
    assert status == 400 and "not an accepted format: Radiance HDR" in answer["error"]


def test_a_422_says_where_in_one_line_and_does_not_echo_the_body(server):
    body = json.dumps({"inputs": "x" * (1 << 20)}).encode()
    request = urllib.request.Request(server.url("/v2/models/gesturenet/infer"), data=body,
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=60)
    answer = err.value.read()
    assert err.value.code == 422 and len(answer) < 1000
    assert "inputs" in json.loads(answer)["error"]


def test_expect_100_continue_above_the_limit_is_a_413_before_the_body(server):
    with socket.create_connection(("127.0.0.1", server.http), timeout=30) as conn:
        conn.sendall(b"POST /v1/models/gesturenet-image:predict HTTP/1.1\r\n"
                     b"Host: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                     b"Content-Length: 104857600\r\nExpect: 100-continue\r\n\r\n")
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_the_model_repository_is_read_only_by_default(server):
    status, answer = server.post("/v2/repository/models/gesturenet/unload", b"",
                                 "application/json")
    assert status == 403 and "--enable_model_repository_writes" in answer["error"]
    assert server.status("/v2/health/ready") == 200
    assert server.status("/v2/models/gesturenet/ready") == 200


def test_bounded_concurrency_unload_readiness_and_one_line_logs(exported, tmp_path):
    """One request at a time: a burst gets 200s and 503s with Retry-After, nothing else. With
    repository writes on, an unload makes the server not ready (Kubernetes restarts it).
    Refused requests are one line each in the log, no traceback."""
    from concurrent.futures import ThreadPoolExecutor

    busy = Server(str(exported["export"]), "--max_concurrent_requests", "1",
                  "--enable_model_repository_writes")
    try:
        busy.wait_for("/v2/models/gesturenet/ready")
        images = [(exported["crops"] / n).read_bytes() for n in sorted(exported["expected"])]
        body = json.dumps({"instances": [{"b64": base64.b64encode(images[i % len(images)])
                                          .decode()} for i in range(64)]}).encode()

        def post(_):
            request = urllib.request.Request(
                busy.url("/v1/models/gesturenet-image:predict"), data=body,
                headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    return response.status, None
            except urllib.error.HTTPError as err:
                return err.code, err.headers.get("Retry-After")

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(post, range(6)))
        statuses = sorted(status for status, _ in answers)
        assert set(statuses) == {200, 503}, statuses
        assert all(after == "1" for status, after in answers if status == 503)
        for _ in range(3):
            assert busy.post("/v1/models/gesturenet-image:predict", b"\x00bad",
                             "image/jpeg")[0] == 400
        assert busy.post("/v2/repository/models/gesturenet/unload", b"",
                         "application/json")[0] == 200
        assert busy.status("/v2/health/ready") == 503
        assert busy.status("/v2/health/live") == 200
    finally:
        busy.stop()
    log = busy.output()
    assert "Traceback" not in log, log[-3000:]
    assert log.count("refused") >= 4


def test_a_model_that_differs_from_its_export_manifest_is_not_served(exported, tmp_path):
    import shutil

    copy = tmp_path / "export"
    shutil.copytree(exported["root"] / "export_onnx", copy)
    model = copy / "model.onnx"
    model.write_bytes(model.read_bytes() + b"\x00")  # a copy that changed after export
    done = _serve("-m", str(copy), "--http_port", str(_free_port()),
                  "--grpc_port", str(_free_port()))
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert "model.onnx: SHA-256" in last and "model.export.json" in last


def test_zero_concurrent_requests_is_refused_not_taken_as_the_default(tmp_path):
    done = _serve("-m", str(tmp_path / "model.onnx"), "--max_concurrent_requests", "0")
    assert done.returncode == 2, done.stderr
    assert "--max_concurrent_requests" in done.stderr and "must be >= 1" in done.stderr
