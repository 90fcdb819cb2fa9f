"""The bundled HaGRID sample imported and converted with the hand_landmarks dataset spec:
the ground several end-to-end tests of that family start from."""

from __future__ import annotations

from pathlib import Path

from gesturenet_lib import cli
from tests.conftest import SAMPLE, SPECS


def convert_sample_for_landmarks(root: Path) -> Path:
    """root/specs (the landmark specs) and root/workspace (original/, extracted/,
    data_landmarks.json); returns root."""
    specs = root / "specs"
    specs.mkdir()
    for name in ("landmark_dataset_config.json", "dataset_experiment_config.json"):
        (specs / name).write_text((SPECS / name).read_text())
    assert cli.main(["dataset_import", "--format", "hagrid", "--images", str(SAMPLE / "dataset"),
                     "--annotations", str(SAMPLE / "annotations"), "--output",
                     str(root / "workspace" / "original" / "hagrid")]) == 0
    assert cli.main(["dataset_convert",
                     "--dataset_spec", str(specs / "landmark_dataset_config.json"),
                     "--experiment_spec", str(specs / "dataset_experiment_config.json"),
                     "--k_folds", "0",
                     "--output_filename", str(root / "workspace/data_landmarks.json"),
                     "--experiment_name", "landmarks"]) == 0
    return root
