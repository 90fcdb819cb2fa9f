"""Issue 18, items 14-17: model and output paths are checked before the work, one line and
exit 2; runs into one folder do not collide; export's set of files is whole or absent."""

from __future__ import annotations

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
def test_15_a_folder_given_as_the_model(tmp_path, capsys, subtask, suffix):
    folder = tmp_path / f"dir{suffix}"
    folder.mkdir()
    argv = {"evaluate": ["evaluate", "-e", TRAIN_SPEC, "-m", str(folder), "-k", "k"],
            "inference": ["inference", "-e", TRAIN_SPEC, "-m", str(folder), "-k", "k",
                          "--image_dir", str(tmp_path), "--results_dir", str(tmp_path / "r")],
            "export": ["export", "-m", str(folder), "-k", "k", "-o", str(tmp_path / "o.onnx")],
            }[subtask]
    assert cli.main(argv) == 2
    assert f"-m {folder}: is a folder, not a model file" in _last_error(capsys, subtask)
