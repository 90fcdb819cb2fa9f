"""Shared fixtures: paths to the repo's example specs and bundled sample data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"
SAMPLE = REPO / "data" / "hagrid-sample"


@pytest.fixture
def write_json(tmp_path):
    """Write a JSON document (or raw text) to a file in tmp_path and return its path."""
    def _write(data, name="spec.json"):
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
        return str(path)
    return _write


@pytest.fixture
def train_spec_dict():
    return json.loads((SPECS / "train_spec.json").read_text())


@pytest.fixture
def dataset_config_dict():
    return json.loads((SPECS / "dataset_config.json").read_text())


@pytest.fixture
def dataset_experiment_dict():
    return json.loads((SPECS / "dataset_experiment_config.json").read_text())
