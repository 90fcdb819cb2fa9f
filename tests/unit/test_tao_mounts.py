"""TAO's launcher mounts file: container paths in NVIDIA's specs and flags map to the host."""

from __future__ import annotations

import json
import logging

import pytest

from gesturenet_lib import cli, tao_mounts
from gesturenet_lib.errors import UserInputError


@pytest.fixture
def mounts(tmp_path, monkeypatch):
    """A mounts file like the notebook's drive_map cell (specs mounted inside the project)."""
    project, specs = tmp_path / "project", tmp_path / "specs"
    project.mkdir()
    specs.mkdir()
    path = tmp_path / "tao_mounts.json"
    path.write_text(json.dumps({"Mounts": [
        {"source": str(project), "destination": "/workspace/tao-experiments"},
        {"source": str(specs), "destination": "/workspace/tao-experiments/gesturenet/specs"},
    ], "DockerOptions": {"user": "1000:1000"}}))
    monkeypatch.setenv("TAO_MOUNTS", str(path))
    return project, specs


def test_the_longest_destination_wins_and_other_paths_stay(mounts):
    project, specs = mounts
    assert tao_mounts.map_path("/workspace/tao-experiments/gesturenet/data.json") == \
        str(project / "gesturenet" / "data.json")
    assert tao_mounts.map_path("/workspace/tao-experiments/gesturenet/specs/train.json") == \
        str(specs / "train.json")
    assert tao_mounts.map_path("/workspace/tao-experiments") == str(project)
    assert tao_mounts.map_path("/workspace/tao-experiments-2/x") == "/workspace/tao-experiments-2/x"
    assert tao_mounts.map_path("relative/path") == "relative/path"


def test_spec_paths_map_through_resolve(mounts):
    project, _ = mounts
    assert tao_mounts.resolve("/workspace/tao-experiments/gesturenet/", "/anywhere") == \
        str(project / "gesturenet")
    assert tao_mounts.resolve("data.json", "/workspace/tao-experiments/gesturenet") == \
        str(project / "gesturenet" / "data.json")  # relative to a spec in the container view
    assert tao_mounts.resolve("gs://b/k", None) == "gs://b/k"


def test_a_destination_that_exists_here_is_left_alone(tmp_path, monkeypatch):
    """Inside TAO's container (or ours), the container paths are already right."""
    real = tmp_path / "real"
    real.mkdir()
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"Mounts": [{"source": "/host", "destination": str(real)}]}))
    monkeypatch.setenv("TAO_MOUNTS", str(path))
    assert tao_mounts.map_path(str(real / "x")) == str(real / "x")


def test_flags_are_mapped_but_never_the_key(mounts, caplog):
    project, specs = mounts
    parser = cli.build_parser()
    args = parser.parse_args(["export", "-m", "/workspace/tao-experiments/gesturenet/m.tlt",
                              "-k", "/workspace/tao-experiments/secret"])
    with caplog.at_level(logging.INFO, logger="gesturenet_lib.tao_mounts"):
        cli.map_flag_paths(args)
    assert args.model == str(project / "gesturenet" / "m.tlt")
    assert args.key == "/workspace/tao-experiments/secret"
    assert "/workspace/tao-experiments ->" in caplog.text


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot read the TAO mounts file"),
    ('{"Mounts": {}}', "Mounts = {}: must be a list"),
    ('{"Mounts": [{"source": "rel", "destination": "/w"}]}', r"Mounts\[0\]"),
])
def test_a_bad_mounts_file_is_one_line_naming_it(tmp_path, monkeypatch, content, message):
    path = tmp_path / "m.json"
    path.write_text(content)
    monkeypatch.setenv("TAO_MOUNTS", str(path))
    with pytest.raises(UserInputError, match=message) as err:
        tao_mounts.map_path("/workspace/x")
    assert str(path) in str(err.value)


def test_tao_mounts_naming_a_missing_file_is_an_error_and_empty_turns_it_off(monkeypatch,
                                                                              tmp_path):
    monkeypatch.setenv("TAO_MOUNTS", str(tmp_path / "nope.json"))
    with pytest.raises(UserInputError, match="mounts file not found"):
        tao_mounts.map_path("/workspace/x")
    monkeypatch.setenv("TAO_MOUNTS", "")
    assert tao_mounts.map_path("/workspace/x") == "/workspace/x"


def test_the_default_file_is_the_launchers(monkeypatch, tmp_path):
    monkeypatch.delenv("TAO_MOUNTS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert tao_mounts.mounts_file() is None
    (tmp_path / ".tao_mounts.json").write_text(json.dumps({"Mounts": [
        {"source": str(tmp_path), "destination": "/workspace/tao-experiments"}]}))
    assert tao_mounts.map_path("/workspace/tao-experiments/a") == str(tmp_path / "a")


def test_resolve_relative_paths_against_the_spec_folder():
    assert tao_mounts.resolve("data.json", "/specs") == "/specs/data.json"
    assert tao_mounts.resolve("../ws/data.json", "/repo/specs") == "/repo/ws/data.json"
    assert tao_mounts.resolve("/abs/data.json", "/specs") == "/abs/data.json"
    assert tao_mounts.resolve("gs://b/k", "/specs") == "gs://b/k"
    assert tao_mounts.resolve("k/data.json", "gs://b/specs") == "gs://b/specs/k/data.json"
