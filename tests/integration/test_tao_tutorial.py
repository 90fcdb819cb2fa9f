"""NVIDIA's GestureNet tutorial notebook, replayed cell by cell with TAO's own material.

The data: the bundled HaGRID photos written as HGR-style input and converted the way NVIDIA's
converter does (host-absolute `task_path`, see tests/tao_tutorial.py), then the folder moved
elsewhere, as TAO's container sees it. The specs: TAO's documented samples and a TAO-form train
spec (tests/data/tao_docs). Two runs: paths edited in the specs; and no edit at all, with a TAO
launcher mounts file mapping `/workspace/tao-experiments` to where the folders really are.
The commands are the notebook's, flag for flag.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from gesturenet_lib import cli
from tests.conftest import REPO, SAMPLE
from tests.tao_tutorial import convert_like_nvidia, write_hgr_style

pytestmark = pytest.mark.slow
TAO_DOCS = REPO / "tests" / "data" / "tao_docs"
CONTAINER_ROOT = "/workspace/tao-experiments"  # the notebook's $USER_EXPERIMENT_DIR's root
KEY = "nvidia_tlt"  # the notebook's %env KEY


def _tutorial_data(tmp_path: Path) -> Path:
    """HGR-style photos -> NVIDIA-style conversion on the "host" -> the folder moved to where
    TAO's container sees it. Returns the moved LOCAL_PROJECT_DIR."""
    hgr = tmp_path / "downloads" / "original_images"
    write_hgr_style(SAMPLE, hgr, limit=150)
    host_experiment = tmp_path / "host" / "gesturenet"
    assert convert_like_nvidia(hgr, host_experiment) > 150
    project = tmp_path / "project"
    project.mkdir()
    shutil.move(str(host_experiment), str(project / "gesturenet"))
    sample_task = json.loads(next((project / "gesturenet/original/data/annotation")
                                  .glob("*.json")).read_text())["task_path"]
    assert sample_task.startswith(str(host_experiment)) and not Path(sample_task).exists()
    # NGC's pretrained model: a file in TAO's own (closed) .tlt layout where the spec says
    ngc = project / "gesturenet/pretrained_models/gesturenet_vtrainable_v1.0/model.tlt"
    ngc.parent.mkdir(parents=True)
    ngc.write_bytes(struct.pack("<i", 7) + b"input_1" + os.urandom(256))
    return project


def _specs(folder: Path, edit_root: str | None) -> None:
    """TAO's samples into ``folder``; ``edit_root`` replaces the container root in their paths
    (the only edit a user makes), None keeps them as published."""
    folder.mkdir(parents=True)
    for name in ("dataset_config.json", "dataset_experiment_config.json", "train_spec.json"):
        text = (TAO_DOCS / name).read_text()
        if edit_root is not None:
            text = text.replace(CONTAINER_ROOT, edit_root)
        (folder / name).write_text(text)


def _error_line(err: str, subtask: str) -> str:
    """The one error line (progress logs come before it); never a traceback."""
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"gesturenet {subtask}: error: "), last
    return last


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("mode", ["paths_edited", "mounts_file"])
def test_the_notebook_runs_unchanged(tmp_path, capsys, caplog, monkeypatch, mode):
    caplog.set_level(logging.INFO, logger="gesturenet_lib.tao_mounts")
    project = _tutorial_data(tmp_path)
    local_specs = tmp_path / "notebook" / "specs"
    if mode == "paths_edited":
        _specs(local_specs, str(project))
        monkeypatch.setenv("TAO_MOUNTS", "")
        experiment_dir, specs_dir = project / "gesturenet", local_specs
    else:
        if os.path.exists(CONTAINER_ROOT):
            pytest.skip(f"{CONTAINER_ROOT} exists here: the mounts would not apply")
        _specs(local_specs, None)
        mounts = tmp_path / "tao_mounts.json"  # the notebook's drive_map cell, as written
        mounts.write_text(json.dumps({"Mounts": [
            {"source": str(project), "destination": CONTAINER_ROOT},
            {"source": str(local_specs), "destination": f"{CONTAINER_ROOT}/gesturenet/specs"},
        ]}, indent=4))
        monkeypatch.setenv("TAO_MOUNTS", str(mounts))
        experiment_dir = Path(f"{CONTAINER_ROOT}/gesturenet")
        specs_dir = Path(f"{CONTAINER_ROOT}/gesturenet/specs")
    local_experiment = project / "gesturenet"
    user_dir, specs = str(experiment_dir), str(specs_dir)

    # 2.B dataset_convert, flag for flag
    code, out, err = _run(["dataset_convert", "--dataset_spec", f"{specs}/dataset_config.json",
                           "--k_folds", "0", "--experiment_spec",
                           f"{specs}/dataset_experiment_config.json", "--output_filename",
                           f"{user_dir}/data.json", "--experiment_name", "v1"], capsys)
    assert code == 0, err
    assert "class_weights names classes not in the class list" in out and " v" in out
    data = json.loads((local_experiment / "data.json").read_text())
    assert data["stats"]["rejected"] == 0, data["stats"]["rejected_by_reason"]
    assert data["stats"]["class_weights_not_in_classes"] == ["v"]
    kpi = data["kpi_set"]["images"]
    assert kpi and {e["user_id"] for e in kpi} <= {"uid_1", "uid_2"}
    train_users = {e["user_id"] for e in data["train_set"]["images"]}
    assert train_users and not train_users & {"uid_1", "uid_2"}
    if mode == "mounts_file":
        assert f"{CONTAINER_ROOT} -> {project}" in caplog.text  # the log names the mapping

    # 4. train: NGC's pretrained model cannot be read (TAO's closed cipher): one line, exit 2
    code, _, err = _run(["train", "-e", f"{specs}/train_spec.json", "-k", KEY], capsys)
    last = _error_line(err, "train")
    assert code == 2 and "closed cipher" in last and "remove model.weights_init" in last
    spec = json.loads((local_specs / "train_spec.json").read_text())
    del spec["model"]["weights_init"]  # the user follows the message
    (local_specs / "train_spec.json").write_text(json.dumps(spec, indent=4))
    code, _, err = _run(["train", "-e", f"{specs}/train_spec.json", "-k", KEY], capsys)
    assert code == 0, err
    model_dir = local_experiment / "model"
    assert (model_dir / "model.tlt").exists() and (model_dir / "train_spec.json").exists()

    # 5. evaluate with the spec train wrote back
    code, _, err = _run(["evaluate", "-e", f"{user_dir}/model/train_spec.json", "-m",
                         f"{user_dir}/model/model.tlt", "-k", KEY], capsys)
    assert code == 0, err
    assert (local_experiment / "results" / "metrics.json").exists()

    # 6. inference on the kpi set; the notebook reads the class index as the second field
    code, _, err = _run(["inference", "-e", f"{user_dir}/model/train_spec.json", "-m",
                         f"{user_dir}/model/model.tlt", "-k", KEY, "--image_root_path", user_dir,
                         "--data_json", f"{user_dir}/data.json", "--data_type", "kpi_set",
                         "--results_dir", f"{user_dir}/model"], capsys)
    assert code == 0, err
    lines = (model_dir / "results.txt").read_text().splitlines()
    assert len(lines) == len(kpi)
    assert all(0 <= int(line.split(" ")[1]) < 6 for line in lines)

    # 7.1 export with --out_file
    code, _, err = _run(["export", "-m", f"{user_dir}/model/model.tlt", "-k", KEY,
                         "--out_file", f"{user_dir}/model/model.etlt"], capsys)
    assert code == 0, err
    assert (model_dir / "model.etlt").exists()
    assert (model_dir / "labels.txt").read_text() == "thumbs_up;fist;stop;ok;two;random\n"

    # 7.2 the notebook's helper samples 100 crops; 7.3 the INT8 cell, exactly its flags
    calibration = local_experiment / "calibration_samples"
    calibration.mkdir()
    crops = sorted({e["bbox_path"] for s in ("train_set", "validation_set", "kpi_set")
                    for e in data[s]["images"]})[:100]
    for i, crop in enumerate(crops):
        shutil.copyfile(local_experiment / crop, calibration / f"{i:03d}.png")
    code, _, err = _run(["export", "-m", f"{user_dir}/model/model.tlt", "-k", KEY,
                         "--engine_file", f"{user_dir}/model/model.int8.engine",
                         "--data_type", "int8",
                         "--cal_image_dir", f"{user_dir}/calibration_samples/",
                         "--cal_cache_file", f"{user_dir}/model/int8_calibration.bin",
                         "--cal_data_file", f"{user_dir}/model/int8_calibration.tensorfile",
                         "--batches", "100"], capsys)
    tensorfile = np.load(model_dir / "int8_calibration.tensorfile")
    assert tensorfile.shape == (100, 3, 160, 160)  # --batches 100 x the doc's batch size 1
    header = (model_dir / "int8_calibration.bin").read_text().splitlines()[0]
    assert header.startswith("TRT-") and header.endswith("EntropyCalibration2")
    if importlib.util.find_spec("tensorrt") is None:
        last = _error_line(err, "export")
        assert code == 2 and "tensorrt" in last and "int8_calibration.bin" in last
        assert "int8_calibration.tensorfile" in last and "model.tlt.etlt" in last
        assert not (model_dir / "model.int8.engine").exists()
    else:
        assert code == 0, err
        assert (model_dir / "model.int8.engine").exists()
    # without -o, TAO's rule: ".etlt is appended to model path"
    assert (model_dir / "model.tlt.etlt").exists()
