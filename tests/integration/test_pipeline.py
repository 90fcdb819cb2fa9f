"""The KFP pipeline: pipeline.yaml is what the code compiles to, wires what it should, asks for
GPUs and secrets the right way, and the whole pipeline runs locally end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, SPECS

pytestmark = pytest.mark.slow
COMPONENTS = {"dataset-import", "dataset-convert", "train", "evaluate", "inference", "export",
              "fold-summary"}


def _clean_env():
    env = dict(os.environ)
    for name in ("GESTURENET_IMAGE", "GESTURENET_REGISTRY", "GESTURENET_GPU_TYPE",
                 "GESTURENET_GPU_LIMIT", "GESTURENET_KEY_SECRET"):
        env.pop(name, None)
    return env


def test_committed_pipeline_yaml_equals_a_fresh_compile(tmp_path):
    fresh = tmp_path / "pipeline.yaml"
    subprocess.run([sys.executable, "-m", "pipelines.compile", str(fresh)], cwd=REPO,
                   env=_clean_env(), check=True, capture_output=True)
    assert fresh.read_text() == (REPO / "pipeline.yaml").read_text(), \
        "pipeline.yaml is stale: run `make compile`"


@pytest.fixture(scope="module")
def compiled():
    """The pipeline spec (the file's second document is the Kubernetes platform spec)."""
    return next(yaml.safe_load_all((REPO / "pipeline.yaml").read_text()))


def _tasks(spec):
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def test_every_component_and_the_dag_edges(compiled):
    names = {name.removeprefix("comp-").rsplit("-2", 1)[0] for name in compiled["components"]}
    assert COMPONENTS <= names
    tasks = _tasks(compiled)
    edges = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    assert edges["dataset-import"] == {"importer"}
    assert edges["dataset-convert"] == {"dataset-import"}
    assert edges["train"] == {"dataset-convert"}
    assert edges["evaluate"] == {"dataset-convert", "train"}
    assert edges["inference"] == {"dataset-import", "dataset-convert", "train"}
    assert edges["export"] == {"dataset-convert", "train"}
    assert "fold-summary" in tasks and any(name.startswith("for-loop-") for name in tasks)
    assert "evaluate-full-frame" in tasks
    gates = {task["triggerPolicy"]["condition"]: edges[name] for name, task in tasks.items()
             if "triggerPolicy" in task}
    frames = [deps for condition, deps in gates.items() if "full_frame_eval" in condition]
    assert frames == [{"dataset-import", "dataset-convert", "train"}]
    assert any("cross_validate" in condition for condition in gates)


def test_gpu_and_resource_requests(compiled):
    executors = compiled["deploymentSpec"]["executors"]
    for name, executor in executors.items():
        if "container" not in executor or name.startswith("exec-importer"):
            continue
        resources = executor["container"].get("resources", {})
        assert resources.get("cpuRequest") and resources.get("memoryRequest"), name
        gpu = resources.get("accelerator", {})
        wants_gpu = name.startswith(("exec-train", "exec-export"))
        assert (gpu.get("resourceType") == "nvidia.com/gpu") == wants_gpu, name
        assert executor["container"]["image"].endswith("/gesturenet:0.1.0")


def test_the_key_is_a_secret_never_a_parameter(compiled):
    text = (REPO / "pipeline.yaml").read_text()
    assert "demo-key" not in text and "GESTURENET_KEY=" not in text
    parameters = compiled["root"]["inputDefinitions"]["parameters"]
    assert not [p for p in parameters if "key" in p.lower()]
    platform = yaml.safe_load_all(text)
    docs = list(platform)
    kube = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in ("exec-train", "exec-evaluate", "exec-inference", "exec-export"):
        env = kube[name]["secretAsEnv"][0]
        assert env["secretName"] == "gesturenet-key"
        assert env["keyToEnv"] == [{"envVar": "GESTURENET_KEY", "secretKey": "key"}]


def test_the_whole_pipeline_runs_locally(tmp_path):
    spec = json.loads((SPECS / "pipeline_train_spec.json").read_text())
    spec["model"].update(num_layers=6, image_height=32, image_width=32)
    spec["trainer"]["finetuning"]["train_epochs"] = 1
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = dict(_clean_env(), GESTURENET_KEY="pipeline-test-key")
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.run_local", "--root", str(tmp_path / "kfp"),
         "--train_spec", str(tmp_path / "spec.json"), "--k_folds", "2", "--cross_validate",
         "--export_data_type", "int8"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "evaluation of the kpi set" in run.stdout and "k-fold summary" in run.stdout
    root = next((tmp_path / "kfp").glob("gesturenet-*"))

    doc = json.loads((root / "dataset-convert/dataset/data.json").read_text())
    assert doc["stats"]["crops"] == 545 and (root / "dataset-convert/dataset/data_fold1.json")\
        .exists()
    assert not (root / "dataset-convert/dataset/original").exists()  # no link left behind

    from gesturenet_lib.models.model_file import load_model_file
    model = load_model_file(str(root / "train/model/model.tlt"), "pipeline-test-key").model
    assert model.predict(np.zeros((1, 3, 32, 32), "float32"), verbose=0).shape == (1, 6)
    assert list((root / "train/tensorboard").rglob("events.out.tfevents.*"))

    evaluation = json.loads((root / "evaluate/executor_output.json").read_text())
    metrics = evaluation["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert {"accuracy", "macro_f1", "images_evaluated"} <= set(metrics)
    assert (root / "evaluate/report").read_text().startswith("<!DOCTYPE html>")
    summary = json.loads((root / "fold-summary/executor_output.json").read_text())
    assert summary["artifacts"]["summary"]["artifacts"][0]["metadata"]["folds"] == 2

    import onnxruntime as ort
    for name in ("model.onnx", "model_int8.onnx"):
        session = ort.InferenceSession(str(root / "export/exported" / name))
        out = session.run(None, {"input_1": np.zeros((2, 3, 32, 32), "float32")})[0]
        assert out.shape == (2, 6)
    lines = (root / "inference/results/results.txt").read_text().splitlines()
    assert len(lines) == len(doc["kpi_set"]["images"])
    assert Path(root / "export/exported/cal.bin").read_text().startswith("TRT-")


def test_cli_compile_writes_the_committed_pipeline(tmp_path, monkeypatch):
    from gesturenet_lib import cli

    for name in ("GESTURENET_IMAGE", "GESTURENET_REGISTRY", "GESTURENET_GPU_TYPE",
                 "GESTURENET_GPU_LIMIT", "GESTURENET_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["pipeline", "compile", "-o", str(tmp_path / "p.yaml")]) == 0
    assert (tmp_path / "p.yaml").read_text() == (REPO / "pipeline.yaml").read_text()


@pytest.mark.parametrize("params,message", [
    ("source_uri: gs://b/x\nk_fold: 3\n", "k_fold: unknown parameter; did you mean 'k_folds'?"),
    ("source_uri: gs://b/x\nk_folds: three\n", "k_folds = 'three': must be integer"),
    ("source_uri: gs://b/x\ncross_validate: 1\n", "cross_validate = 1: must be boolean"),
    ("source_uri: gs://b/x\nencryption_key: s3cret\n", "never a pipeline parameter"),
    ("k_folds: 2\n", "missing required parameter(s): source_uri"),
    ("[1, 2\n", "invalid YAML"),
])
def test_submit_checks_params_before_contacting_the_cluster(params, message, tmp_path, capsys):
    from gesturenet_lib import cli

    (tmp_path / "params.yaml").write_text(params)
    rc = cli.main(["pipeline", "submit", "--host", "http://127.0.0.1:9", "--experiment", "e",
                   "--params", str(tmp_path / "params.yaml"),
                   "--package", str(REPO / "pipeline.yaml")])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_submit_to_an_unreachable_host_is_one_line(tmp_path, capsys):
    from gesturenet_lib import cli

    (tmp_path / "params.yaml").write_text("source_uri: gs://b/x\n")
    rc = cli.main(["pipeline", "submit", "--host", "http://127.0.0.1:9", "--experiment", "e",
                   "--params", str(tmp_path / "params.yaml"),
                   "--package", str(REPO / "pipeline.yaml")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gesturenet pipeline: error: --host http://127.0.0.1:9: cannot submit")


def test_the_pipeline_runs_the_hand_landmarks_family_through_a_spec_change_only(tmp_path):
    spec = json.loads((SPECS / "landmark_train_spec.json").read_text())
    spec["trainer"]["finetuning"]["train_epochs"] = 5
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = dict(_clean_env(), GESTURENET_KEY="pipeline-test-key")
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.run_local", "--root", str(tmp_path / "kfp"),
         "--train_spec", str(tmp_path / "spec.json"),
         "--dataset_spec", str(SPECS / "landmark_dataset_config.json"),
         "--export_data_type", "fp32", "--full_frame_eval"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "no hand found in" in run.stdout
    assert "evaluation on the kpi set's whole images" in run.stdout
    root = next((tmp_path / "kfp").glob("gesturenet-*"))
    import onnx

    exported = next(root.glob("export*/exported/model.onnx"))
    graph = onnx.load(str(exported)).graph
    assert [o.name for o in graph.output] == ["predictions", "hand_found"]
    assert (exported.parent / "palm_detector.onnx").exists()
    frames = json.loads((root / "evaluate-full-frame/executor_output.json").read_text())
    hands = frames["parameterValues"]["Output"]["full_frame"]
    assert hands["hand_recall"] >= 0.9 and hands["annotated_hands"] == 89
    assert (root / "evaluate-full-frame/report").read_text().count('id="missed"') == 1
    train_out = json.loads((root / "train/executor_output.json").read_text())
    model = train_out["artifacts"]["model"]["artifacts"][0]
    assert model["metadata"]["input_dims"] == [3, 224, 224]
