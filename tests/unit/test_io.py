"""The I/O seam: atomic writes, deterministic listings."""

from __future__ import annotations

import os

import pytest

from gesturenet_lib import io, local_files


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "out.json"
    io.write_text(target, "first")
    io.write_text(target, "second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["out.json"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    io.write_bytes(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        io.write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_list_files_is_sorted_and_recursive(tmp_path):
    for name in ["b/2.txt", "a/1.txt", "c.txt", "a/0.txt"]:
        io.write_text(tmp_path / name, name)
    rel = [os.path.relpath(p, tmp_path) for p in io.list_files(tmp_path)]
    assert rel == ["c.txt", "a/0.txt", "a/1.txt", "b/2.txt"]


def test_bulk_writes_are_complete_files_without_fsync(tmp_path):
    target = tmp_path / "sub" / "crop.png"
    io.write_bytes(target, b"x" * 10_000, durable=False)
    local_files.sync_file_system(str(tmp_path))  # syncfs(2) of that file system only
    assert target.read_bytes() == b"x" * 10_000
    assert [p.name for p in target.parent.iterdir()] == ["crop.png"]


def test_without_syncfs_each_file_is_fsynced(tmp_path, monkeypatch):
    import os

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(local_files, "_syncfs", None)  # a platform without syncfs(2)
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    for name in ("a.png", "sub/b.png"):
        io.write_bytes(tmp_path / name, b"x", durable=False)
    local_files.sync_file_system(str(tmp_path))
    assert len(synced) == 2
    local_files.sync_file_system("gs://bucket/crops")  # nothing to flush on object storage


def test_list_folder_parts_folders_from_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "z.json").write_text("{}")
    (tmp_path / "c.json").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "a")  # not followed, as os.walk does not
    assert io.list_folder(tmp_path) == (["a", "b"], ["c.json", "z.json"])
