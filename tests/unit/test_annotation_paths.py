"""Where an annotation's task_path may point: inside mount_dir_path only."""

from __future__ import annotations

import pytest

from gesturenet_lib.data.annotations import relative_task_path
from gesturenet_lib.errors import RecordError

MOUNT = "/data/mount"


@pytest.mark.parametrize("task_path, expected", [
    ("original/ds/u1/s1/a.png", "original/ds/u1/s1/a.png"),
    ("/data/mount/original/ds/u1/a.png", "original/ds/u1/a.png"),
    ("original/ds/../ds/u1/a.png", "original/ds/u1/a.png"),
    ("/data/mount/", "."),
])
def test_task_paths_inside_the_mount_become_relative(task_path, expected):
    assert relative_task_path(task_path, MOUNT) == expected
    assert relative_task_path(task_path, MOUNT + "/") == expected


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
        relative_task_path(task_path, MOUNT)


def test_a_relative_mount_is_taken_from_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert relative_task_path(str(tmp_path / "m" / "a.png"), "m") == "a.png"
    with pytest.raises(RecordError):
        relative_task_path(str(tmp_path / "a.png"), "m")


# NVIDIA's tutorial converter writes the image's absolute path on the machine where it ran;
# TAO (and we) see the folder elsewhere.
PREFIX = "original/data/"


@pytest.mark.parametrize("task_path, expected", [
    ("/home/me/experiments/gesturenet/original/data/uid_1/fist/a.jpg",
     "original/data/uid_1/fist/a.jpg"),
    # the last <org_data_dir>/<dataset>/ part counts (a host folder may share the name)
    ("/srv/original/data/copy/gesturenet/original/data/uid_2/s/b.jpg",
     "original/data/uid_2/s/b.jpg"),
    ("gs://bucket/other/original/data/uid_1/s/c.jpg", None),  # only with a gs:// mount
])
def test_host_absolute_task_paths_are_rerooted_at_the_dataset(task_path, expected):
    if expected is None:
        assert relative_task_path(task_path, "gs://mine/root", PREFIX) == \
            "original/data/uid_1/s/c.jpg"
        return
    assert relative_task_path(task_path, MOUNT, PREFIX) == expected


@pytest.mark.parametrize("task_path", [
    "/home/me/elsewhere/a.jpg",                                # no dataset part at all
    "/home/me/original/data/../../../etc/passwd",              # still leaves the dataset
    "/home/me/original/other/uid_1/a.jpg",                     # another dataset's folder
])
def test_rerooting_never_reads_outside_the_mount(task_path):
    with pytest.raises(RecordError, match="resolves outside mount_dir_path"):
        relative_task_path(task_path, MOUNT, PREFIX)


def test_relative_task_paths_are_never_rerooted():
    with pytest.raises(RecordError, match="resolves outside mount_dir_path"):
        relative_task_path("../original/data/u/a.jpg", MOUNT, PREFIX)
