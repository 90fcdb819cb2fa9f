"""What only local file systems need, beside the I/O seam (``io``): a lock on a run's folder,
the leftovers of writers that died, and flushing one file system. On gs:// each is a no-op:
objects appear whole or not at all."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import time

from gesturenet_lib.errors import UserInputError
from gesturenet_lib.io import _TEMPORARY, is_cloud_uri, list_files, makedirs


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: str, recursive: bool = False) -> list[str]:
    """Delete the temporaries (see ``temporary_name``) that writers on this machine left when
    they died (``kill -9``); a live writer's are kept. Only ``folder`` itself unless
    ``recursive`` (an output may sit in a large folder). Returns what was removed."""
    if is_cloud_uri(folder) or not os.path.isdir(folder):
        return []
    removed = []
    for dirpath, subdirs, names in os.walk(folder):
        if not recursive:
            subdirs.clear()
        for name in names:
            match = _TEMPORARY.match(name)
            if match and not _writer_alive(int(match.group(1))):
                os.unlink(os.path.join(dirpath, name))
                removed.append(os.path.join(dirpath, name))
    return removed


LOCK_NAME = ".gesturenet.lock"


@contextlib.contextmanager
def folder_lock(folder: str, what: str):
    """Hold ``folder`` for this run: a second run that asks for it gets a one-line
    UserInputError naming the holder. The lock (``flock`` on ``.gesturenet.lock``) goes with
    the process, so a killed run never leaves the folder locked. Local folders only."""
    if is_cloud_uri(folder):
        yield
        return
    makedirs(folder)
    path = os.path.join(folder, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another run"
        os.close(fd)
        raise UserInputError(f"{what} {folder}: in use by {holder}; wait for it to end or "
                             "use another folder") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def sync_file_system(folder: str) -> None:
    """Flush to disk what was written without ``durable`` on ``folder``'s file system, and
    only there: Linux's syncfs(2) on that file system, not sync(2) on every file system of
    the machine (on a shared node, every pod's). Elsewhere, each file under ``folder`` is
    fsync'ed. Nothing to do on gs://: an object is stored when its upload returns."""
    if is_cloud_uri(folder) or not os.path.isdir(folder):
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if _syncfs is not None and _syncfs(fd) == 0:
            return
    finally:
        os.close(fd)
    for path in list_files(folder):
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


class BackgroundFlush:
    """While started, flushes ``folder``'s file system every ``period_s`` seconds from a
    daemon thread, with syncfs(2) only (nothing where it is missing, or on gs://).

    Bulk files written without ``durable`` then reach the disk while the work goes on, and
    the ``sync_file_system`` at the commit point finds little left to write. Linux holds back
    dirty pages for up to 30 s or a tenth of the memory: 24,000 crops (560 MB) took the final
    sync 0.55-0.62 s, serially after the last crop; flushed every 2 s, 0.01-0.06 s, and the
    run was 0.8 s shorter (measured in pairs)."""

    def __init__(self, folder: str, period_s: float = 2.0):
        self.folder = folder
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start flushing (once; a no-op where syncfs or a local folder is missing)."""
        if self._thread is not None or _syncfs is None or is_cloud_uri(self.folder):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="background-flush",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop flushing and wait for a flush under way (the caller syncs last)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            sync_file_system(self.folder)


def _load_syncfs():
    """libc's syncfs, where the platform has it (Linux); Python's os module does not."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return None
    syncfs.argtypes = [ctypes.c_int]
    syncfs.restype = ctypes.c_int
    return syncfs


_syncfs = _load_syncfs()
