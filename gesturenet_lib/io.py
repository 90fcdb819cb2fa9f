"""The one seam through which the library reads and writes files.

Every path a user gives goes through these functions: local paths, and ``gs://bucket/key``
URIs served by google-cloud-storage (credentials from Google's default chain; with
``STORAGE_EMULATOR_HOST`` set, anonymous credentials against that emulator). Folders on GCS are
key prefixes. Subtasks that hand paths to TensorFlow, Beam's workers or OpenCV still expect
local paths today (see README, "Cloud storage").

Writes are atomic: data goes to a temporary file in the destination folder, is flushed and
fsync'ed, then renamed over the destination, so a crash never leaves a file that looks complete.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gesturenet_lib import gcs
from gesturenet_lib.errors import UserInputError

CLOUD_SCHEMES = ("gs://",)


def is_cloud_uri(path: str | os.PathLike) -> bool:
    return str(path).startswith(CLOUD_SCHEMES)


def join(base: str | os.PathLike, *parts: str) -> str:
    """Join path parts; works for local paths and URIs alike."""
    if is_cloud_uri(base):
        return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


def parent(path: str | os.PathLike) -> str:
    if is_cloud_uri(path):
        return str(path).rstrip("/").rsplit("/", 1)[0]
    return str(Path(path).parent)


def exists(path: str | os.PathLike) -> bool:
    if is_cloud_uri(path):
        with gcs.errors(path):
            return gcs.blob(path).exists(**gcs.call()) or gcs.has_prefix(path)
    return os.path.exists(path)


def is_dir(path: str | os.PathLike) -> bool:
    if is_cloud_uri(path):
        with gcs.errors(path):
            return gcs.has_prefix(path)
    return Path(path).is_dir()


def read_bytes(path: str | os.PathLike) -> bytes:
    if is_cloud_uri(path):
        from google.api_core.exceptions import NotFound

        try:
            with gcs.errors(path):
                return gcs.blob(path).download_as_bytes(**gcs.call())
        except NotFound:
            raise FileNotFoundError(f"{path}: no such object") from None
    with open(path, "rb") as handle:
        return handle.read()


def read_text(path: str | os.PathLike) -> str:
    return read_bytes(path).decode("utf-8")


class PathRefused(ValueError):
    """A file that must not be read: a link leading out of its root, or not a regular file."""


@functools.lru_cache(maxsize=65536)
def _real_folder(folder: str) -> str:
    """The real path of ``folder`` (absolute, normalised). Cached, and made from its parent's
    cached real path when ``folder`` itself is not a link: a run reads files from tens of
    thousands of folders (TAO's layout has one per user and gesture), and resolving each in
    full took one lstat per level of the path (0.45 s of 24,000 annotation files' 0.79 s,
    measured); this way a new folder costs one."""
    parent, name = os.path.split(folder)
    if not name or parent == folder or os.path.islink(folder):
        return os.path.realpath(folder)
    return os.path.join(_real_folder(parent), name)


def _inside(real: str, base: str) -> bool:
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def read_contained(path: str, root: str) -> bytes:
    """The bytes of ``path`` when, its links resolved, it is a regular file inside ``root``;
    else ``PathRefused`` with the reason. A link in the data cannot reach a file outside the
    dataset, and a FIFO or device is refused instead of blocking the run (it is opened without
    waiting, then checked). On GCS there are no links and every object is a regular file."""
    if is_cloud_uri(path):
        return read_bytes(path)
    base = _real_folder(os.path.abspath(root))
    outside = PathRefused("is a link that leads outside its dataset folder")
    if not _inside(_real_folder(os.path.dirname(os.path.abspath(path))), base):
        raise outside
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW)
    except OSError as err:
        if err.errno != errno.ELOOP:  # not a link at the last step: a real error
            raise
        real = os.path.realpath(path)  # the file itself is a link: follow it, then check
        if not _inside(real, base):
            raise outside from None
        fd = os.open(real, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PathRefused("is not a regular file (a folder, FIFO or device)")
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Parse a JSON file; a missing file or bad JSON is a one-line UserInputError naming it."""
    if not exists(path):
        raise UserInputError(f"{path}: {what} not found")
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise UserInputError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: "
                             f"{err.msg}") from None


def is_object(uri: str) -> bool:
    """A gs:// URI naming one object (not a prefix)."""
    if not is_cloud_uri(uri):
        return False
    with gcs.errors(uri):
        return gcs.blob(uri).exists(**gcs.call())


def download(uri: str, path: str) -> None:
    """Stream object ``uri`` to local file ``path``."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with gcs.errors(uri):
        gcs.blob(uri).download_to_filename(path, **gcs.call())


def upload(path: str, uri: str) -> None:
    """Stream local file ``path`` to object ``uri``."""
    with gcs.errors(uri):
        gcs.blob(uri).upload_from_filename(path, **gcs.call())


def delete(path: str | os.PathLike) -> None:
    """Remove one file or object (no error when it is already gone)."""
    if is_cloud_uri(path):
        from google.api_core.exceptions import NotFound

        try:
            with gcs.errors(path):
                gcs.blob(path).delete(**gcs.call())
        except NotFound:
            pass
        return
    Path(path).unlink(missing_ok=True)


def makedirs(path: str | os.PathLike) -> None:
    if is_cloud_uri(path):
        return  # GCS has no folders: a prefix exists once an object is written under it
    Path(path).mkdir(parents=True, exist_ok=True)


TMP_SUFFIX = ".tmp"
_TEMPORARY = re.compile(r"^\..+\.(\d+)-\d+\.tmp$")  # temporary_name's pattern: pid, thread


def temporary_name(target: str) -> str:
    """Where ``target`` is written before its rename: beside it, unique per process and
    thread (two runs never share a temporary), marked with the writer's pid so a rerun can
    tell a dead writer's leftovers (``remove_stale_temporaries``)."""
    folder, name = os.path.split(target)
    return os.path.join(folder, f".{name}.{os.getpid()}-{threading.get_ident()}{TMP_SUFFIX}")


def write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename).

    ``durable`` also fsyncs the file before the rename. Bulk outputs (thousands of crops) pass
    ``durable=False``, which keeps them atomic against a crashed process but leaves flushing to
    the OS; the step that wrote them calls ``sync_file_system()`` once before they are committed
    (in data.json), which gives the same guarantee at the commit point for a fraction of the
    cost of one fsync per file.
    On GCS an object appears whole or not at all, so an upload is atomic as it is.

    The temporary name is unique per process and thread (no two writers share it), and folders
    are made only when the first write into them finds them missing: a crop costs one open,
    one write and one rename, not a mkdir and a random-name search each.
    """
    if is_cloud_uri(path):
        with gcs.errors(path):
            gcs.blob(path).upload_from_string(data, **gcs.call())
        return
    target = os.fspath(path)
    folder = os.path.dirname(target)
    tmp = temporary_name(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileNotFoundError:
        os.makedirs(folder or ".", exist_ok=True)
        fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _nearest_existing(path: str) -> str:
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    return probe


def _can_create_in(folder: str) -> bool:
    """Whether this process can create a file in ``folder``: tried, not guessed from mode
    bits (root, ACLs, read-only mounts and dropped capabilities all decide)."""
    probe = os.path.join(folder, f".gesturenet-write-check-{os.getpid()}")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return False
    os.unlink(probe)
    return True


def _check_cloud_output(uri: str, what: str, folder: bool) -> None:
    """Write and delete a probe object where the output goes (the bucket exists, the
    credentials may write there) before hours of work are done for it."""
    from google.api_core.exceptions import NotFound

    probe = join(uri if folder else parent(uri), f".gesturenet-write-check-{os.getpid()}")
    try:
        write_bytes(probe, b"")
        delete(probe)
    except NotFound:
        raise UserInputError(f"{what} {uri}: the bucket does not exist") from None
    except UserInputError as err:
        raise UserInputError(f"{what} {uri}: cannot write there: {err}") from None


def check_output(path: str | os.PathLike, what: str, folder: bool = False) -> None:
    """Before any work: can ``path`` (a file, or with ``folder`` a folder) be written? Else a
    one-line UserInputError naming ``what`` (the flag or spec field) and the reason. A gs://
    output is checked by writing a probe object there."""
    path = os.fspath(path)
    if is_cloud_uri(path):
        _check_cloud_output(path, what, folder)
        return
    if os.path.exists(path):
        if folder and not os.path.isdir(path):
            raise UserInputError(f"{what} {path}: is a file, not a folder")
        if not folder and os.path.isdir(path):
            raise UserInputError(f"{what} {path}: is a folder, not a file")
    existing = _nearest_existing(path if folder else os.path.dirname(os.path.abspath(path)))
    if not os.path.isdir(existing):
        raise UserInputError(f"{what} {path}: {existing} is a file, so no folder can be "
                             "made there")
    if not _can_create_in(existing):
        raise UserInputError(f"{what} {path}: cannot write in {existing} (permission denied "
                             "or a read-only file system)")


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def list_files(root: str | os.PathLike) -> Iterator[str]:
    """Every file under ``root``, recursively, in sorted order (deterministic)."""
    if is_cloud_uri(root):
        with gcs.errors(root):
            bucket, _, names, _ = gcs.list_names(root)
        yield from (f"gs://{bucket}/{name}" for name in sorted(names) if not name.endswith("/"))
        return
    for dirpath, dirnames, filenames in os.walk(str(root)):
        dirnames.sort()
        for name in sorted(filenames):
            yield os.path.join(dirpath, name)


def list_dir(path: str | os.PathLike) -> list[str]:
    """Names of the entries directly inside ``path``, sorted."""
    if is_cloud_uri(path):
        with gcs.errors(path):
            _, prefix, objects, prefixes = gcs.list_names(path, delimiter="/")
        names = [name[len(prefix):] for name in objects if name != prefix]
        names += [p[len(prefix):].rstrip("/") for p in prefixes]
        return sorted(set(names))
    return sorted(os.listdir(path))


def list_folder(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(sub-folder names, file names) directly inside ``path``, each sorted: one listing of
    the folder (on GCS, the sub-folders are the prefixes under it). A link to a folder is
    neither, as ``list_files`` (os.walk) does not follow it."""
    if is_cloud_uri(path):
        with gcs.errors(path):
            _, prefix, objects, prefixes = gcs.list_names(path, delimiter="/")
        files = [name[len(prefix):] for name in objects
                 if name != prefix and not name.endswith("/")]
        return sorted(p[len(prefix):].rstrip("/") for p in prefixes), sorted(files)
    folders, files = [], []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.name)
            elif not entry.is_dir():
                files.append(entry.name)
    return sorted(folders), sorted(files)
