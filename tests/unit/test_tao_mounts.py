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


def _convert_specs(tmp_path, mount_dir_path: str, post_data_dir: str = "extracted"):
    """TAO's sample dataset_convert specs with the given mount_dir_path."""
    from tests.conftest import SPECS

    ds = json.loads((SPECS / "dataset_config.json").read_text())
    ds.update(mount_dir_path=mount_dir_path, org_data_dir="original",
              post_data_dir=post_data_dir)
    ds_file, exp_file = tmp_path / "dataset_config.json", tmp_path / "exp.json"
    ds_file.write_text(json.dumps(ds))
    exp_file.write_text((SPECS / "dataset_experiment_config.json").read_text())
    return str(ds_file), str(exp_file)


def test_a_nested_mount_wins_for_originals_under_mount_dir_path(tmp_path, monkeypatch, caplog):
    outer, inner = tmp_path / "outer", tmp_path / "inner"
    (outer / "original").mkdir(parents=True)  # a stale tree the outer mount would show
    inner.mkdir()
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"Mounts": [
        {"source": str(outer), "destination": "/workspace/tao-experiments"},
        {"source": str(inner), "destination": "/workspace/tao-experiments/original"}]}))
    monkeypatch.setenv("TAO_MOUNTS", str(path))
    from gesturenet_lib import io
    from gesturenet_lib.specs import load_convert_specs

    with caplog.at_level(logging.INFO, logger="gesturenet_lib.tao_mounts"):
        ds, _ = load_convert_specs(*_convert_specs(tmp_path, "/workspace/tao-experiments"))
    assert ds.mount_dir_path == str(outer)
    assert io.join(ds.mount_dir_path, ds.org_data_dir, "hagrid") == str(inner / "hagrid")
    assert f"/workspace/tao-experiments/original -> {inner}" in caplog.text
    with pytest.raises(Exception, match="post_data_dir.*another TAO mount"):
        load_convert_specs(*_convert_specs(tmp_path, "/workspace/tao-experiments", "original"))


def test_a_path_that_leaves_its_mount_through_dotdot_is_refused(mounts, capsys):
    project, _ = mounts
    with pytest.raises(UserInputError, match=r"leaves the TAO mount /workspace/tao-experiments"):
        tao_mounts.map_path("/workspace/tao-experiments/../escape/data.json")
    assert cli.main(["dataset_convert", "--dataset_spec", "/workspace/tao-experiments/d.json",
                     "--experiment_spec", "/workspace/tao-experiments/e.json",
                     "--experiment_name", "x",
                     "--output_filename", "/workspace/tao-experiments/../escape/data.json"]) == 2
    err = capsys.readouterr().err
    assert "/workspace/tao-experiments/../escape/data.json: leaves the TAO mount" in err
    assert not (project.parent / "escape").exists()
    # normalised before mapping: a '..' that stays inside the mount is fine
    assert tao_mounts.map_path("/workspace/tao-experiments/a/../b") == str(project / "b")


def test_a_mounts_file_naming_one_destination_twice_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"Mounts": [
        {"source": "/a", "destination": "/workspace/x"},
        {"source": "/b", "destination": "/workspace/x/"}]}))
    monkeypatch.setenv("TAO_MOUNTS", str(path))
    with pytest.raises(UserInputError, match=r"Mounts\[1\].destination.*named twice"):
        tao_mounts.map_path("/workspace/x/y")
