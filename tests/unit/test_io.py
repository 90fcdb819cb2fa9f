"""The I/O seam: atomic writes, deterministic listings."""

from __future__ import annotations

import os
import threading
import time

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


def test_read_contained_follows_links_at_every_level_of_the_path(tmp_path):
    """Real paths are made from the parent folder's (cached): a link anywhere on the way is
    still resolved, whichever folders were read before it."""
    root, outside = tmp_path / "dataset", tmp_path / "outside"
    for folder in (root / "u1" / "s1", root / "u2" / "s1", outside / "s1"):
        folder.mkdir(parents=True)
        (folder / "a.json").write_text("{}")
    (root / "u3").symlink_to(outside)                  # a user folder leading out
    (root / "u4").symlink_to(root / "u1")              # a user folder leading in
    (root / "u2" / "s2").symlink_to(outside / "s1")    # a session folder leading out
    assert io.read_contained(str(root / "u1" / "s1" / "a.json"), str(root)) == b"{}"
    assert io.read_contained(str(root / "u2" / "s1" / "a.json"), str(root)) == b"{}"
    assert io.read_contained(str(root / "u4" / "s1" / "a.json"), str(root)) == b"{}"
    for leaving in (root / "u3" / "s1" / "a.json", root / "u2" / "s2" / "a.json"):
        with pytest.raises(io.PathRefused, match="outside"):
            io.read_contained(str(leaving), str(root))


def test_background_flush_runs_one_thread_while_started_and_none_after(tmp_path):
    def flushers():
        return [t for t in threading.enumerate() if t.name == "background-flush"]

    flush = local_files.BackgroundFlush(str(tmp_path), period_s=0.01)
    flush.start()
    flush.start()  # once
    assert flush.running and len(flushers()) == 1
    (tmp_path / "crop.png").write_bytes(b"x" * 100_000)
    time.sleep(0.05)  # flushes while files are written
    flush.stop()
    assert not flush.running and not flushers()
    flush.stop()  # stopping twice is harmless (teardown after finish_bundle)
    cloud = local_files.BackgroundFlush("gs://bucket/extracted")
    cloud.start()
    assert not cloud.running  # objects are stored when their upload returns
