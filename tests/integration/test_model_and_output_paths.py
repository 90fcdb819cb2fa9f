"""Model and output paths are checked before the work, one line and
exit 2; runs into one folder do not collide; export's set of files is whole or absent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from gesturenet_lib import cli
from tests.conftest import SPECS

TRAIN_SPEC = str(SPECS / "train_spec.json")


def _last_error(capsys, subtask: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"gesturenet {subtask}: error: "), err
    return last


@pytest.mark.parametrize("suffix", [".tlt", ".onnx", ".etlt", ".keras"])
@pytest.mark.parametrize("subtask", ["evaluate", "inference", "export"])
def test_a_folder_given_as_the_model(tmp_path, capsys, subtask, suffix):
    folder = tmp_path / f"dir{suffix}"
    folder.mkdir()
    argv = {"evaluate": ["evaluate", "-e", TRAIN_SPEC, "-m", str(folder), "-k", "k"],
            "inference": ["inference", "-e", TRAIN_SPEC, "-m", str(folder), "-k", "k",
                          "--image_dir", str(tmp_path), "--results_dir", str(tmp_path / "r")],
            "export": ["export", "-m", str(folder), "-k", "k", "-o", str(tmp_path / "o.onnx")],
            }[subtask]
    assert cli.main(argv) == 2
    assert f"-m {folder}: is a folder, not a model file" in _last_error(capsys, subtask)


# ---------------------------------------------------------------- 14: outputs checked first

def _train_spec(tmp_path, output_dir) -> str:
    doc = json.loads((SPECS / "train_spec.json").read_text())
    doc["output_experiments_fld"] = str(output_dir)
    path = tmp_path / "train_spec.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _dataset_specs(tmp_path, mount) -> tuple[str, str]:
    ds = json.loads((SPECS / "dataset_config.json").read_text())
    ds["mount_dir_path"] = str(mount)
    (tmp_path / "ds.json").write_text(json.dumps(ds))
    (tmp_path / "exp.json").write_text((SPECS / "dataset_experiment_config.json").read_text())
    return str(tmp_path / "ds.json"), str(tmp_path / "exp.json")


def _argv(subtask: str, tmp_path, target) -> list[str]:
    """The subtask with ``target`` as its output (file or folder, as the subtask takes it)."""
    model = tmp_path / "model.tlt"
    model.write_bytes(b"GNETENC\x01 not a real model")
    spec = _train_spec(tmp_path, target)
    return {
        "dataset_convert": ["dataset_convert", "--dataset_spec",
                            _dataset_specs(tmp_path, tmp_path)[0], "--experiment_spec",
                            str(tmp_path / "exp.json"), "--output_filename", str(target),
                            "--experiment_name", "v1"],
        "dataset_convert_mount": ["dataset_convert", "--dataset_spec",
                                  _dataset_specs(tmp_path, target)[0], "--experiment_spec",
                                  str(tmp_path / "exp.json"), "--output_filename",
                                  str(tmp_path / "d.json"), "--experiment_name", "v1"],
        "train": ["train", "-e", spec, "-k", "k"],
        "evaluate": ["evaluate", "-e", spec, "-m", str(model), "-k", "k"],
        "inference": ["inference", "-e", TRAIN_SPEC, "-m", str(model), "-k", "k",
                      "--image_dir", str(tmp_path), "--results_dir", str(target)],
        "export": ["export", "-m", str(model), "-k", "k", "-o", str(target)],
    }[subtask]


SUBTASKS = ["dataset_convert", "dataset_convert_mount", "train", "evaluate", "inference",
            "export"]
FILE_OUTPUTS = {"dataset_convert", "export"}


@pytest.mark.parametrize("subtask", SUBTASKS)
def test_an_output_under_a_file_fails_before_the_work(tmp_path, capsys, subtask):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    target = blocker / "sub" / ("out.onnx" if subtask in FILE_OUTPUTS else "out")
    assert cli.main(_argv(subtask, tmp_path, target)) == 2
    assert f"{blocker} is a file, so no folder can be made there" in _last_error(
        capsys, subtask.replace("_mount", ""))


@pytest.mark.parametrize("subtask", SUBTASKS)
def test_an_output_of_the_wrong_kind(tmp_path, capsys, subtask):
    if subtask in FILE_OUTPUTS:
        target = tmp_path / "taken.onnx"
        target.mkdir()
        expected = "is a folder, not a file"
    else:
        target = tmp_path / "taken"
        target.write_text("x")
        expected = "is a file"  # the folder itself, or (train) the one it would be made in
    if subtask == "dataset_convert_mount":  # the mount's crop folder is a file
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "extracted").write_text("x")
        target = tmp_path / "m"
    assert cli.main(_argv(subtask, tmp_path, target)) == 2
    assert expected in _last_error(capsys, subtask.replace("_mount", ""))


def _unprivileged() -> list[str]:
    """Run as root without the capabilities that ignore file permissions (as any user is)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv (util-linux) is missing")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", "--bounding-set", caps, "--inh-caps", caps]


@pytest.mark.parametrize("subtask", SUBTASKS)
def test_an_unwritable_output_folder_fails_before_the_work(tmp_path, subtask):
    locked = tmp_path / "locked"
    locked.mkdir()
    target = locked / ("out.onnx" if subtask in FILE_OUTPUTS else "out")
    argv = _argv(subtask, tmp_path, target)
    if subtask == "dataset_convert_mount":
        target = locked
    locked.chmod(0o555)
    try:
        run = subprocess.run([*_unprivileged(), sys.executable, "-m", "gesturenet_lib", *argv],
                             capture_output=True, text=True, timeout=120)
    finally:
        locked.chmod(0o755)
    assert run.returncode == 2, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "Traceback" not in run.stderr and f"cannot write in {locked}" in last, last
