"""Where an annotation's task_path may point: inside mount_dir_path only."""

from __future__ import annotations

import pytest

from gesturenet_lib.data.annotations import RecordError, _relative_task_path

MOUNT = "/data/mount"


@pytest.mark.parametrize("task_path, expected", [
    ("original/ds/u1/s1/a.png", "original/ds/u1/s1/a.png"),
    ("/data/mount/original/ds/u1/a.png", "original/ds/u1/a.png"),
    ("original/ds/../ds/u1/a.png", "original/ds/u1/a.png"),
    ("/data/mount/", "."),
])
def test_task_paths_inside_the_mount_become_relative(task_path, expected):
    assert _relative_task_path(task_path, MOUNT) == expected
    assert _relative_task_path(task_path, MOUNT + "/") == expected


@pytest.mark.parametrize("task_path", [
    "/elsewhere/a.png",
    "../a.png",
    "original/../../a.png",
    "/data/mount-other/a.png",   # shares the mount's prefix as a string, not as a folder
    "/data/mountain/a.png",
    "/data",
])
def test_task_paths_leaving_the_mount_are_rejected(task_path):
    with pytest.raises(RecordError, match="resolves outside mount_dir_path"):
        _relative_task_path(task_path, MOUNT)


def test_a_relative_mount_is_taken_from_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _relative_task_path(str(tmp_path / "m" / "a.png"), "m") == "a.png"
    with pytest.raises(RecordError):
        _relative_task_path(str(tmp_path / "a.png"), "m")
