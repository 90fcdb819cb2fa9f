"""The key protects the checkpoints too and a resume proves it;
one train run per output folder; export's set of files is whole or marked incomplete, and a
dead writer's temporaries are cleaned up."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from gesturenet_lib import cli, crypto, local_files
from tests.training_fixtures import train_colour_model, train_spec, write_dataset, write_spec

pytestmark = pytest.mark.slow
KEY = "right-key"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    spec, model = train_colour_model(root, KEY, per_class=4, epochs=1)
    return root, spec, model


def test_checkpoints_are_encrypted_with_the_key(trained):
    root, _, _ = trained
    checkpoints = root / "out/model/checkpoints"
    files = sorted(p.name for p in checkpoints.iterdir())
    assert "last.ckpt" in files and "last.keras" not in files
    for path in checkpoints.iterdir():
        data = path.read_bytes()
        assert not data.startswith(b"PK\x03\x04"), f"{path.name} is a plain Keras zip"
    assert (checkpoints / "last.ckpt").read_bytes().startswith(crypto.MAGIC)


def test_resuming_with_another_key_is_refused_and_keeps_the_checkpoint(trained, capsys):
    root, spec, _ = trained
    before = (root / "out/model/checkpoints/last.ckpt").read_bytes()
    assert cli.main(["train", "-e", spec, "-k", "another-key"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "does not open with this key" in err and "resume with the key the run started" in err
    assert (root / "out/model/checkpoints/last.ckpt").read_bytes() == before


def test_a_second_train_into_the_same_folder_says_who_holds_it(tmp_path, capsys):
    write_dataset(tmp_path, per_class=4)
    spec = write_spec(tmp_path, train_spec(tmp_path, epochs=(0, 1)))
    out = tmp_path / "out" / "model"
    with local_files.folder_lock(str(out), "first run"):  # a run in progress holds the folder
        assert cli.main(["train", "-e", spec, "-k", KEY]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{out}: in use by pid " in err and "use another folder" in err
    assert cli.main(["train", "-e", spec, "-k", KEY]) == 0  # released with the first run


def test_the_lock_dies_with_its_process(tmp_path):
    folder = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from gesturenet_lib import local_files\n"
        f"with local_files.folder_lock({str(folder)!r}, 'x'):\n"
        "    print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    with local_files.folder_lock(str(folder), "second run"):
        pass


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_export_writes_its_manifest_last_and_cleans_a_dead_writers_temporaries(
        trained, tmp_path):
    _, _, model = trained
    out = tmp_path / "export"
    out.mkdir()
    stale = out / f".model.onnx.{_dead_pid()}-1234.tmp"
    stale.write_bytes(b"half an onnx")
    live = out / f".other.onnx.{os.getpid()}-1.tmp"
    live.write_bytes(b"being written")
    in_entry = out / "triton/gesturenet/1" / f".model.onnx.{_dead_pid()}-9.tmp"
    in_detector = out / "triton/palm_detector" / f".model.onnx.{_dead_pid()}-7.tmp"
    in_kserve = out / "kserve" / f".inferenceservice.yaml.{_dead_pid()}-3.tmp"
    for left in (in_entry, in_detector, in_kserve):
        left.parent.mkdir(parents=True, exist_ok=True)
        left.write_bytes(b"half")
    not_ours = out / "someone_elses" / f".x.{_dead_pid()}-9.tmp"  # export walks only its own
    not_ours.parent.mkdir()
    not_ours.write_bytes(b"x")
    assert cli.main(["export", "-m", model, "-k", KEY, "-o", str(out / "model.onnx")]) == 0
    assert not stale.exists() and live.exists() and not_ours.exists()
    assert not in_entry.exists() and not in_detector.exists() and not in_kserve.exists()
    manifest = json.loads((out / "model.export.json").read_text())
    listed = set(manifest["files"])
    assert {str(out / "model.onnx"), str(out / "labels.txt"), str(out / "nvinfer_config.txt"),
            str(out / "triton/gesturenet/config.pbtxt"),
            str(out / "triton/gesturenet/1/model.onnx")} <= listed
    for path, entry in manifest["files"].items():
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == entry["sha256"]


def test_an_export_that_dies_half_way_leaves_no_manifest(trained, tmp_path, monkeypatch):
    _, _, model = trained
    out = tmp_path / "export"
    assert cli.main(["export", "-m", model, "-k", KEY, "-o", str(out / "model.onnx")]) == 0
    assert (out / "model.export.json").exists()

    from gesturenet_lib.export import deploy_configs

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill would, between two files of the set

    monkeypatch.setattr(deploy_configs, "triton_config", crash)
    assert cli.main(["export", "-m", model, "-k", KEY, "-o", str(out / "model.onnx")]) == 130
    assert not (out / "model.export.json").exists()  # the set on disk is marked incomplete
