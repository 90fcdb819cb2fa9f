"""`gesturenet pipeline submit` against a small KFP-API server on 127.0.0.1 that records what
the kfp client sends (the client is the real one; only the cluster is stood in for)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gesturenet_lib import cli
from tests.conftest import REPO


class RecordingKfpApi(BaseHTTPRequestHandler):
    """Answers the calls of kfp.Client.create_run_from_pipeline_package, and records them."""
    requests: list = []

    def _reply(self, payload: dict, status: int = 200):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.requests.append(("GET", self.path, None))
        if self.path.startswith(("/apis/v2beta1/healthz", "/apis/v2beta1/experiments")):
            return self._reply({"multi_user": False} if "healthz" in self.path else {})
        return self._reply({}, 404)

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.requests.append(("POST", self.path, body))
        if self.path == "/apis/v2beta1/experiments":
            return self._reply({"experiment_id": "exp-1", "display_name": body["display_name"]})
        if self.path == "/apis/v2beta1/runs":
            return self._reply({"run_id": "run-42", "display_name": body["display_name"]})
        return self._reply({}, 404)

    def log_message(self, *args):
        pass


@pytest.fixture
def kfp_api():
    RecordingKfpApi.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingKfpApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", RecordingKfpApi.requests
    server.shutdown()


def test_submit_uploads_the_pipeline_and_starts_a_run(kfp_api, tmp_path, capsys, monkeypatch):
    host, requests = kfp_api
    monkeypatch.setenv("GESTURENET_KEY", "must-not-travel")
    (tmp_path / "params.yaml").write_text(
        "source_uri: gs://bucket/hagrid\nk_folds: 3\ncross_validate: true\n"
        "fold_indices: [0, 1, 2]\n")
    assert cli.main(["pipeline", "submit", "--host", host, "--experiment", "gestures",
                     "--params", str(tmp_path / "params.yaml"),
                     "--package", str(REPO / "pipeline.yaml")]) == 0
    assert f"submitted: {host}/#/runs/details/run-42" in capsys.readouterr().out
    calls = [(method, path.split("?")[0]) for method, path, _ in requests]
    assert ("GET", "/apis/v2beta1/healthz") in calls
    assert ("POST", "/apis/v2beta1/experiments") in calls
    run = next(body for method, path, body in requests if path == "/apis/v2beta1/runs")
    assert run["experiment_id"] == "exp-1"
    assert run["runtime_config"]["parameters"] == {
        "source_uri": "gs://bucket/hagrid", "k_folds": 3, "cross_validate": True,
        "fold_indices": [0, 1, 2]}
    assert run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "gesturenet"
    assert "must-not-travel" not in json.dumps(requests)


def test_bad_params_send_nothing(kfp_api, tmp_path, capsys):
    host, requests = kfp_api
    (tmp_path / "params.yaml").write_text("source_uri: gs://b/x\nk_folds: [3]\n")
    assert cli.main(["pipeline", "submit", "--host", host, "--experiment", "e", "--params",
                     str(tmp_path / "params.yaml"), "--package",
                     str(REPO / "pipeline.yaml")]) == 2
    assert "k_folds = [3]: must be integer" in capsys.readouterr().err
    assert requests == []


@pytest.mark.parametrize("params, path", [
    ("train_spec: {model: {key: s3cr3t}}\n", "train_spec.model.key"),
    ("train_spec: {trainer: {stages: [{api_key: x}]}}\n", "train_spec.trainer.stages[0].api_key"),
    ("gesturenet_key: x\n", None),
])
def test_a_key_nested_in_a_spec_parameter_is_refused_and_nothing_is_sent(
        kfp_api, tmp_path, capsys, params, path):
    """Pipeline parameters are stored and shown by Kubeflow."""
    host, requests = kfp_api
    (tmp_path / "params.yaml").write_text("source_uri: gs://b/x\n" + params)
    assert cli.main(["pipeline", "submit", "--host", host, "--experiment", "e", "--params",
                     str(tmp_path / "params.yaml"), "--package",
                     str(REPO / "pipeline.yaml")]) == 2
    err = capsys.readouterr().err
    assert "the model key is never a pipeline parameter" in err and "s3cr3t" not in err
    if path:
        assert f"{path}: looks like a key" in err
    assert requests == []
