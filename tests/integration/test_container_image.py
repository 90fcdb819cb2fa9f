"""What we ship is what we test: the project's CPU image is built here (podman, or a Docker
daemon; rebuilt only when its inputs changed) and run: the CLI as the image's non-root user
with no network, `validate` on the shipped specs, the baked networks against their hashes, a
short pipeline through KFP's DockerRunner with every task in the image, a failing task seen
to fail, and `gesturenet serve` answering one image request on 127.0.0.1.

Where no engine can run, every test here fails with one line saying why (never a skip)."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gesturenet_lib.container_image import project_image
from tests.conftest import REPO

IMAGE = project_image()
KEY = "container-test-key"
BUILD_LOCK = Path("/tmp/gesturenet-image-build.lock")


@pytest.fixture(scope="module")
def engine():
    """The engine with the image built (one build at a time across test workers)."""
    from pipelines.container_engine import EngineError, find_engine
    from pipelines.image_build import build_cpu

    try:
        found = find_engine()
        with open(BUILD_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            print(build_cpu(found, IMAGE))
    except EngineError as err:
        pytest.fail(f"the container image cannot be built or run here: {err}", pytrace=False)
    return found


def _run(engine, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([engine.name, "run", "--rm", *args], env=engine.env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_cli_runs_as_the_images_user_with_no_network(engine):
    done = _run(engine, "--network", "none", IMAGE, "--help")
    assert done.returncode == 0, done.stderr
    assert "dataset_convert" in done.stdout
    who = _run(engine, "--network", "none", "--entrypoint", "id", IMAGE)
    assert who.stdout.startswith("uid=1000(gesturenet)"), who.stdout
    # no network inside: only the loopback interface
    links = _run(engine, "--network", "none", "--entrypoint", "python3", IMAGE, "-c",
                 "import socket; print(sorted(n for _, n in socket.if_nameindex()))")
    assert links.stdout.strip() == "['lo']", links.stdout + links.stderr


def test_validate_takes_the_shipped_specs(engine):
    done = _run(engine, "--network", "none", "-v", f"{REPO / 'specs'}:/specs:ro", IMAGE,
                "validate", "--dataset_spec", "/specs/dataset_config.json",
                "--experiment_spec", "/specs/dataset_experiment_config.json",
                "-e", "/specs/train_spec.json")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_baked_network_matches_its_hash(engine):
    from gesturenet_lib.families.hand_landmarks import assets

    pinned = {name: sha for name, sha in [*assets.MEMBERS.values(),
                                          *assets.GESTURE_MEMBERS.values()]}
    script = ("import hashlib, json, os, pathlib; d = pathlib.Path(os.environ["
              "'GESTURENET_MODELS_DIR']); m = json.loads((d / 'manifest.json').read_text()); "
              "print(json.dumps({f.name: [hashlib.sha256(f.read_bytes()).hexdigest(), "
              "m.get(f.name)] for f in d.iterdir() if f.name != 'manifest.json'}))")
    done = _run(engine, "--network", "none", "--entrypoint", "python3", IMAGE, "-c", script)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    for name, sha in pinned.items():
        assert found[name][0] == sha, name
    for name in (assets.LANDMARK_ONNX, assets.PALM_ONNX, assets.EMBEDDER_ONNX,
                 assets.CANNED_ONNX):
        actual, recorded = found[name]
        assert actual == recorded, name
    assert assets.GESTURE_NOTICE in found and assets.GESTURE_WHEEL_LICENCE[1] in found


def test_a_failing_task_is_reported_failed(engine, tmp_path):
    """A component that raises and a container that exits 3 are FAILURE, a good one SUCCESS
    (KFP's stock Docker handler reports neither as FAILURE against podman)."""
    code = f"""
import sys
from kfp import dsl, local
from pipelines.container_engine import docker_runner

@dsl.component(base_image={IMAGE!r})
def fine(x: int) -> int:
    return x + 1

@dsl.component(base_image={IMAGE!r})
def raises(x: int) -> int:
    raise ValueError("on purpose")

@dsl.container_component
def exits_three():
    return dsl.ContainerSpec(image={IMAGE!r}, command=["sh", "-c", "exit 3"])

with docker_runner({IMAGE!r}, "k", []) as runner:
    local.init(runner=runner, pipeline_root={str(tmp_path)!r}, raise_on_error=False)
    print("fine", fine(x=1).output)
    for task in (raises, exits_three):
        try:
            task(x=1) if task is raises else task()
        except Exception as err:
            print("unexpected", type(err).__name__, err)
"""
    script = tmp_path / "failing_tasks.py"  # KFP reads a component's source from its file
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    log = done.stdout + done.stderr
    assert "fine 2" in log, log[-3000:]
    assert "unexpected" not in log, log[-3000:]
    assert "'raises'\x1b[0m finished with status \x1b[91mFAILURE" in log, log[-3000:]
    assert "'exits-three'\x1b[0m finished with status \x1b[91mFAILURE" in log, log[-3000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_pipeline_runs_in_the_image_and_serve_answers_for_its_model(engine, tmp_path):
    """The landmark pipeline on the bundled sample with every task in the image (few epochs);
    then `gesturenet serve` in the image, as its user, answers an image request on
    127.0.0.1 with the model the pipeline exported. One test, so that the pipeline runs once
    whichever test worker takes it."""
    spec = json.loads((REPO / "specs" / "landmark_train_spec.json").read_text())
    spec["trainer"]["finetuning"]["train_epochs"] = 3
    spec_path = tmp_path / "train_spec.json"
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.run_local", "--containers", "--root",
         str(tmp_path / "pipeline"), "--train_spec", str(spec_path), "--dataset_spec",
         str(REPO / "specs" / "landmark_dataset_config.json"), "--export_data_type", "fp32"],
        cwd=REPO, capture_output=True, text=True, timeout=1200,
        env={**os.environ, "GESTURENET_KEY": KEY, "GESTURENET_IMAGE": IMAGE})
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "evaluation of the kpi set:" in done.stdout
    assert "FAILURE" not in done.stdout + done.stderr
    model = next((tmp_path / "pipeline").glob("gesturenet-*/export*/exported/model.onnx"))
    _serve_answers(engine, model)


def _serve_answers(engine, model: Path) -> None:
    crop = next((REPO / "data" / "hagrid-sample" / "dataset").rglob("*.jpg"))
    port = _free_port()
    name = f"gesturenet-serve-test-{port}"
    started = subprocess.run(
        [engine.name, "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:8080",
         "-v", f"{model.parent}:/model:ro", IMAGE, "serve", "--model", "/model/model.onnx",
         "--http_port", "8080"], env=engine.env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        body = json.dumps({"instances": [{"image_bytes": {
            "b64": base64.b64encode(crop.read_bytes()).decode()}}]}).encode()
        deadline, answer = time.monotonic() + 120, None
        while answer is None and time.monotonic() < deadline:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/models/gesturenet-image:predict", data=body,
                    headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
            except OSError:
                time.sleep(1)
        assert answer is not None, subprocess.run([engine.name, "logs", name], env=engine.env,
                                                  capture_output=True, text=True).stderr[-2000:]
        assert answer["predictions"][0]["class_name"]
        user = subprocess.run([engine.name, "exec", name, "id", "-u"], env=engine.env,
                              capture_output=True, text=True)
        assert user.stdout.strip() == "1000"
    finally:
        subprocess.run([engine.name, "rm", "-f", name], env=engine.env, capture_output=True)


def _tree(root: Path) -> tuple[str, str]:
    from tests.tao_tree import tree_with_rejects

    return tree_with_rejects(root).specs(kpi_users=["u4", "u5"])


def test_dataset_convert_on_a_dask_cluster_made_of_the_image(engine, tmp_path):
    """A scheduler and two workers, each a container of the image on a network of their own;
    dataset_convert from a third container gives the in-process run's bytes."""
    from gesturenet_lib import cli

    local_ds, local_exp = _tree(tmp_path / "local")
    assert cli.main(["dataset_convert", "--dataset_spec", local_ds, "--experiment_spec",
                     local_exp, "--output_filename", str(tmp_path / "local/out/data.json"),
                     "--experiment_name", "v1"]) == 0
    ds, exp = _tree(tmp_path / "dask")
    network, names = f"gesturenet-dask-test-{os.getpid()}", []
    data = ["-v", f"{tmp_path / 'dask'}:{tmp_path / 'dask'}", "--user",
            f"{os.getuid()}:{os.getgid()}"]

    def container(name: str, *args: str) -> None:
        done = subprocess.run([engine.name, "run", "-d", "--rm", "--network", network,
                               "--name", name, *args], env=engine.env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        names.append(name)

    created = subprocess.run([engine.name, "network", "create", network], env=engine.env,
                             capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    try:
        container(f"{network}-scheduler", "--entrypoint", "dask", IMAGE, "scheduler",
                  "--port", "8786", "--no-dashboard")
        address = subprocess.run(
            [engine.name, "inspect", "-f",
             "{{(index .NetworkSettings.Networks \"" + network + "\").IPAddress}}",
             f"{network}-scheduler"], env=engine.env, capture_output=True, text=True
        ).stdout.strip()
        for k in range(2):
            container(f"{network}-worker{k}", *data, "--entrypoint", "dask", IMAGE, "worker",
                      f"tcp://{address}:8786", "--nthreads", "1", "--no-dashboard")
        done = subprocess.run(
            [engine.name, "run", "--rm", "--network", network, *data, IMAGE, "dataset_convert",
             "--dataset_spec", ds, "--experiment_spec", exp, "--output_filename",
             str(tmp_path / "dask/out/data.json"), "--experiment_name", "v1", "--runner",
             "DaskRunner", "--dask_client_address", f"tcp://{address}:8786"],
            env=engine.env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    finally:
        subprocess.run([engine.name, "rm", "-f", *names], env=engine.env, capture_output=True)
        subprocess.run([engine.name, "network", "rm", network], env=engine.env,
                       capture_output=True)
    for name in ("data.json", "data_rejects.jsonl", "data_stats.json"):
        assert (tmp_path / "dask/out" / name).read_bytes() == \
            (tmp_path / "local/out" / name).read_bytes(), name
