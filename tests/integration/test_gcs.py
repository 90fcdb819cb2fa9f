"""gs:// through the I/O seam, against a real GCS-compatible emulator on 127.0.0.1."""

from __future__ import annotations

import copy
import json
import shutil
import socket
import subprocess
import time

import pytest

from gesturenet_lib import cli, gcs, io
from tests.conftest import REPO

EMULATOR = shutil.which("gcp-storage-emulator") or str(REPO / ".venv/bin/gcp-storage-emulator")


@pytest.fixture(scope="module")
def emulator():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([EMULATOR, "start", "--host", "127.0.0.1", "--port", str(port),
                             "--in-memory"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def bucket(emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator)
    # The emulator serves one request at a time (Python's http.server, a listen backlog of
    # 5): with 16 transfers in flight, connections wait their turn for longer than the
    # default 30 s deadline that suits GCS itself. The deadline is a setting: raise it here.
    monkeypatch.setenv("GESTURENET_GCS_DEADLINE", "180")
    gcs.client.cache_clear()
    name = f"b{time.time_ns()}"
    gcs.client().create_bucket(name)
    yield f"gs://{name}"
    gcs.client.cache_clear()


def test_write_read_list_and_exists(bucket):
    io.write_text(f"{bucket}/data/a.json", "{}")
    io.write_bytes(f"{bucket}/data/sub/b.png", b"\x89PNG")
    io.write_bytes(f"{bucket}/other.txt", b"x")
    assert io.read_text(f"{bucket}/data/a.json") == "{}"
    assert io.exists(f"{bucket}/data/a.json") and io.exists(f"{bucket}/data")
    assert io.is_dir(f"{bucket}/data") and not io.is_dir(f"{bucket}/data/a.json")
    assert not io.exists(f"{bucket}/nothing")
    assert list(io.list_files(f"{bucket}/data")) == [f"{bucket}/data/a.json",
                                                     f"{bucket}/data/sub/b.png"]
    assert io.list_dir(bucket) == ["data", "other.txt"]
    assert io.list_dir(f"{bucket}/data") == ["a.json", "sub"]
    assert io.list_folder(f"{bucket}/data") == (["sub"], ["a.json"])
    with pytest.raises(FileNotFoundError, match="no such object"):
        io.read_bytes(f"{bucket}/missing.bin")


def test_specs_validate_from_gs(bucket, train_spec_dict, capsys):
    io.write_text(f"{bucket}/specs/train_spec.json", json.dumps(train_spec_dict))
    assert cli.main(["validate", "-e", f"{bucket}/specs/train_spec.json"]) == 0
    bad = copy.deepcopy(train_spec_dict)
    bad["model"]["num_layers"] = 19
    io.write_text(f"{bucket}/specs/bad.json", json.dumps(bad))
    assert cli.main(["validate", "-e", f"{bucket}/specs/bad.json"]) == 2
    assert f"{bucket}/specs/bad.json: model.num_layers = 19" in capsys.readouterr().err
    assert cli.main(["validate", "-e", f"{bucket}/specs/none.json"]) == 2
    assert f"{bucket}/specs/none.json: file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_subtasks_end_to_end_with_every_path_on_gs(bucket, tmp_path, capsys):
    """dataset_import -> dataset_convert -> a tiny train -> evaluate -> export, every input
    and output on gs://, results read back from the bucket."""
    import numpy as np
    import onnxruntime as ort

    from gesturenet_lib.models.model_file import load_model_file
    from gesturenet_lib.tasks.local_copies import LocalCopies
    from tests.conftest import SAMPLE, SPECS

    with LocalCopies() as stage:  # upload the bundled sample
        jobs = [(p, f"{bucket}/hagrid/{p.relative_to(SAMPLE)}")
                for p in SAMPLE.rglob("*") if p.is_file()
                and p.parts[len(SAMPLE.parts)] in ("dataset", "annotations")]
        stage.in_parallel(lambda job: io.upload(str(job[0]), job[1]), jobs)
    ws = f"{bucket}/ws"
    ds = json.loads((SPECS / "dataset_config.json").read_text())
    ds["mount_dir_path"] = ws
    io.write_text(f"{bucket}/specs/dataset_config.json", json.dumps(ds))
    io.write_text(f"{bucket}/specs/dataset_experiment_config.json",
                  (SPECS / "dataset_experiment_config.json").read_text())
    spec = json.loads((SPECS / "train_spec.json").read_text())
    spec["model"].update(num_layers=6, image_height=32, image_width=32)
    spec["trainer"]["finetuning"]["train_epochs"] = 1
    spec.update(output_experiments_fld=f"{ws}/experiments")
    spec["dataset"].update(data_path=f"{ws}/data.json", image_root_path=ws)
    spec["evaluator"] = {"evaluation_exp_name": "results"}
    io.write_text(f"{bucket}/specs/train_spec.json", json.dumps(spec))
    s = f"{bucket}/specs"

    assert cli.main(["dataset_import", "--format", "hagrid", "--images",
                     f"{bucket}/hagrid/dataset", "--annotations", f"{bucket}/hagrid/annotations",
                     "--output", f"{ws}/original/hagrid"]) == 0
    assert cli.main(["dataset_convert", "--dataset_spec", f"{s}/dataset_config.json",
                     "--experiment_spec", f"{s}/dataset_experiment_config.json",
                     "--output_filename", f"{ws}/data.json", "--experiment_name", "v1",
                     "--direct_running_mode=in_memory"]) == 0
    assert cli.main(["train", "-e", f"{s}/train_spec.json", "-k", "gs-key"]) == 0
    model = f"{ws}/experiments/model/model.tlt"
    assert cli.main(["evaluate", "-e", f"{s}/train_spec.json", "-m", model, "-k", "gs-key"]) == 0
    assert cli.main(["export", "-m", model, "-k", "gs-key", "-o", f"{ws}/export/model.onnx"]) == 0
    assert cli.main(["inference", "-e", f"{s}/train_spec.json", "-m", model, "-k", "gs-key",
                     "--data_json", f"{ws}/data.json", "--image_root_path", ws,
                     "--results_dir", f"{ws}/inference"]) == 0
    capsys.readouterr()

    doc = json.loads(io.read_text(f"{ws}/data.json"))
    assert doc["stats"]["crops"] == 545 and doc["stats"]["rejected"] == 0
    crop = doc["train_set"]["images"][0]["bbox_path"]
    assert io.read_bytes(f"{ws}/{crop}").startswith(b"\x89PNG")
    assert io.exists(f"{ws}/{doc['tfds_dir']}/dataset_info.json")
    local_model = tmp_path / "model.tlt"
    local_model.write_bytes(io.read_bytes(model))
    assert load_model_file(str(local_model), "gs-key").classes["random"] == 5
    assert io.exists(f"{ws}/experiments/model/checkpoints/last.ckpt")
    metrics = json.loads(io.read_text(f"{ws}/experiments/results/metrics.json"))
    assert metrics["images_evaluated"] == len(doc["kpi_set"]["images"])
    assert io.read_text(f"{ws}/export/nvinfer_config.txt").startswith("[property]")
    results = io.read_text(f"{ws}/inference/results.txt").splitlines()
    assert len(results) == len(doc["kpi_set"]["images"])
    session = ort.InferenceSession(io.read_bytes(f"{ws}/export/model.onnx"))
    assert session.run(None, {"input_1": np.zeros((1, 3, 32, 32), "float32")})[0].shape == (1, 6)

    # whole frames, read from and written to the bucket
    assert cli.main(["evaluate", "-e", f"{s}/train_spec.json", "-m", model, "-k", "gs-key",
                     "--full_frame"]) == 0
    frames = json.loads(io.read_text(f"{ws}/experiments/results/metrics.json"))["full_frame"]
    assert frames["annotated_hands"] == len(doc["kpi_set"]["images"])
    assert frames["hand_recall"] >= 0.9
    assert cli.main(["inference", "-e", f"{s}/train_spec.json", "-m", model, "-k", "gs-key",
                     "--data_json", f"{ws}/data.json", "--image_root_path", ws,
                     "--results_dir", f"{ws}/frames", "--full_frame",
                     "--previews", f"{ws}/previews"]) == 0
    images = {e["full_image_path"] for e in doc["kpi_set"]["images"]}
    records = [json.loads(line) for line in
               io.read_text(f"{ws}/frames/results.jsonl").splitlines()]
    assert {r["path"] for r in records} == images
    previews = [p for p in io.list_files(f"{ws}/previews") if p.endswith(".jpg")]
    assert len(previews) == len(images)


def test_listing_shards_on_gs_cover_every_annotation_once(bucket):
    """A distributed runner's listing shards, planned from gs:// prefixes: every file once."""
    from gesturenet_lib.data import convert_pipeline as cp
    from gesturenet_lib.data.annotations import DatasetLayout

    names = ["top.json"] + [f"u{u}/s{s}/{f}.json" for u in range(3) for s in range(2)
                            for f in range(2)]
    for name in names:
        io.write_text(f"{bucket}/mount/original/data/annotation/{name}", "{}")
    layout = DatasetLayout(f"{bucket}/mount", "original", "data", "annotation", ("fist",), {})
    for wanted in (1, 5, 20):
        shards = cp.plan_listing([layout], wanted)
        listed = sorted(p for shard in shards for _, p in cp.shard_files(shard))
        assert listed == sorted(f"{layout.annotation_dir}/{n}" for n in names), wanted


def test_beam_workers_read_and_write_gs_directly(bucket, tmp_path):
    """What a managed runner does: no staging, every read and write of the pipeline on gs://
    (run here by the local runner; TFDS shards need TensorFlow's own GCS access, not tested)."""
    from gesturenet_lib.data.dataset_convert import ConvertRequest, dataset_convert
    from tests.tao_tree import TaoTree

    tree = TaoTree(tmp_path / "local")
    for u in range(4):
        tree.hand(f"u{u}", "s1", "000.png", "fist" if u % 2 else "stop")
    tree.annotate("original/data/u0/s1/missing.png", "fist")
    for path in io.list_files(tmp_path / "local" / "original"):
        rel = str(path)[len(str(tmp_path / "local")) + 1:]
        io.upload(path, f"{bucket}/mount/{rel}")
    ds, exp = tree.specs()
    spec = json.loads(open(ds).read())
    spec["mount_dir_path"] = f"{bucket}/mount"
    io.write_text(f"{bucket}/specs/ds.json", json.dumps(spec))
    io.write_text(f"{bucket}/specs/exp.json", open(exp).read())
    result = dataset_convert(ConvertRequest.from_files(
        f"{bucket}/specs/ds.json", f"{bucket}/specs/exp.json", f"{bucket}/out/data.json", "v1",
        beam_args=["--direct_running_mode=in_memory"], write_tfds=False))
    doc = json.loads(io.read_text(f"{bucket}/out/data.json"))
    assert result.stats["crops"] == 4 == doc["stats"]["crops"]
    missing = "missing image original/data/u0/s1/missing.png"
    assert doc["stats"]["rejected_by_reason"] == {missing: 1}
    first = doc["train_set"]["images"][0]["bbox_path"]
    assert io.read_bytes(f"{bucket}/mount/{first}").startswith(b"\x89PNG")
    assert "missing.png" in io.read_text(f"{bucket}/out/data_rejects.jsonl")


# ---------------------------------------------------------------- credentials, endpoints, mounts

def _cli(argv: list[str], env: dict, cwd=None) -> subprocess.CompletedProcess:
    import os
    import sys

    return subprocess.run([sys.executable, "-m", "gesturenet_lib", *argv], capture_output=True,
                          text=True, timeout=120, cwd=cwd,
                          env={"PATH": os.environ["PATH"], **env})


def test_no_credentials_is_exit_2_saying_how_to_give_them(tmp_path):
    run = _cli(["validate", "-e", "gs://some-bucket/train_spec.json"],
               {"HOME": str(tmp_path)})
    assert run.returncode == 2, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "no Google Cloud credentials found" in last
    assert "gcloud auth application-default login" in last and "Traceback" not in run.stderr


def test_an_output_bucket_that_does_not_exist_fails_before_the_work(bucket, tmp_path,
                                                                        capsys):
    from tests.tao_tree import TaoTree

    tree = TaoTree(tmp_path)
    for u in range(3):
        tree.hand(f"u{u}", "s1", "a.png", "fist")
    ds, exp = tree.specs()
    assert cli.main(["dataset_convert", "--dataset_spec", ds, "--experiment_spec", exp,
                     "--output_filename", "gs://no-such-bucket-here/data.json",
                     "--experiment_name", "v1", "--no_tfds"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--output_filename gs://no-such-bucket-here/data.json: the bucket does not exist" \
        in last
    assert not (tmp_path / "extracted").exists()  # nothing was cropped first


def test_an_unreachable_endpoint_is_exit_2_naming_it_within_the_deadline(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {"HOME": str(tmp_path), "STORAGE_EMULATOR_HOST": closed,
           "GESTURENET_GCS_DEADLINE": "3"}
    for argv in (["validate", "-e", "gs://b/train_spec.json"],
                 ["train", "-e", "gs://b/train_spec.json", "-k", "k"]):
        started = time.monotonic()
        run = _cli(argv, env)
        assert run.returncode == 2, run.stderr
        last = run.stderr.strip().splitlines()[-1]
        assert f"no answer from {closed} within 3 s" in last, last
        assert time.monotonic() - started < 60  # the deadline, plus start-up (TF for train)


def test_the_deadline_must_be_a_number(tmp_path):
    run = _cli(["validate", "-e", "gs://b/x.json"],
               {"HOME": str(tmp_path), "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
                "GESTURENET_GCS_DEADLINE": "soon"})
    assert run.returncode == 2 and "GESTURENET_GCS_DEADLINE=soon: must be a number" in \
        run.stderr


def test_a_relative_mount_with_a_gs_output_is_relative_to_the_spec_file(bucket, tmp_path,
                                                                            monkeypatch):
    from tests.tao_tree import TaoTree

    tree = TaoTree(tmp_path / "data")
    for u in range(3):
        tree.hand(f"u{u}", "s1", "a.png", "fist")
    ds, exp = tree.specs()
    spec = json.loads(open(ds).read())
    spec["mount_dir_path"] = "../data"  # relative to the spec's own folder
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "ds.json").write_text(json.dumps(spec))
    shutil.copy(exp, tmp_path / "specs" / "exp.json")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.main(["dataset_convert", "--dataset_spec", "../specs/ds.json",
                     "--experiment_spec", "../specs/exp.json", "--output_filename",
                     f"{bucket}/out/data.json", "--experiment_name", "v1", "--no_tfds"]) == 0
    doc = json.loads(io.read_text(f"{bucket}/out/data.json"))
    assert doc["stats"]["crops"] == 3
    assert list((tmp_path / "data" / "extracted").rglob("*.png"))
