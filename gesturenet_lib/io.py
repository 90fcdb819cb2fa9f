"""The one seam through which the library reads and writes files.

Every path a user gives goes through these functions, so that cloud URIs (``gs://bucket/key``)
can be supported in one place. Today local paths are served; a ``gs://`` URI is refused with a
clear message until the cloud-storage issue lands (see README, "Cloud storage").

Writes are atomic: data goes to a temporary file in the destination folder, is flushed and
fsync'ed, then renamed over the destination, so a crash never leaves a file that looks complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gesturenet_lib.errors import UserInputError

CLOUD_SCHEMES = ("gs://",)


class UnsupportedURIError(OSError):
    """A URI scheme this build cannot read or write."""


def is_cloud_uri(path: str | os.PathLike) -> bool:
    return str(path).startswith(CLOUD_SCHEMES)


def _local(path: str | os.PathLike) -> Path:
    if is_cloud_uri(path):
        raise UnsupportedURIError(
            f"{path}: cloud storage URIs are not supported by this build yet; "
            "copy the data to a local path"
        )
    return Path(path)


def join(base: str | os.PathLike, *parts: str) -> str:
    """Join path parts; works for local paths and URIs alike."""
    if is_cloud_uri(base):
        return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


def resolve(path: str, relative_to: str | os.PathLike | None) -> str:
    """Resolve a path from a spec: absolute paths and URIs stay, relative ones are taken
    relative to ``relative_to`` (the folder of the spec file that named them)."""
    if is_cloud_uri(path) or os.path.isabs(path) or relative_to is None:
        return path
    if is_cloud_uri(relative_to):
        return join(relative_to, path)
    return os.path.normpath(os.path.join(relative_to, path))


def parent(path: str | os.PathLike) -> str:
    if is_cloud_uri(path):
        return str(path).rstrip("/").rsplit("/", 1)[0]
    return str(Path(path).parent)


def exists(path: str | os.PathLike) -> bool:
    return _local(path).exists()


def is_dir(path: str | os.PathLike) -> bool:
    return _local(path).is_dir()


def read_bytes(path: str | os.PathLike) -> bytes:
    return _local(path).read_bytes()


def read_text(path: str | os.PathLike) -> str:
    return _local(path).read_text(encoding="utf-8")


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Parse a JSON file; a missing file or bad JSON is a one-line UserInputError naming it."""
    if not exists(path):
        raise UserInputError(f"{path}: {what} not found")
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise UserInputError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: "
                             f"{err.msg}") from None


def makedirs(path: str | os.PathLike) -> None:
    _local(path).mkdir(parents=True, exist_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename).

    ``durable`` also fsyncs the file before the rename. Bulk outputs (thousands of crops) pass
    ``durable=False``, which keeps them atomic against a crashed process but leaves flushing to
    the OS; the step that commits them (data.json) calls ``sync_local()`` once first, which gives
    the same guarantee at the commit point for a fraction of the cost of one fsync per file.
    """
    target = _local(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
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


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def sync_local() -> None:
    """Flush every file written without ``durable`` to disk (local file systems)."""
    if hasattr(os, "sync"):
        os.sync()


def list_files(root: str | os.PathLike) -> Iterator[str]:
    """Every file under ``root``, recursively, in sorted order (deterministic)."""
    base = _local(root)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            yield str(Path(dirpath, name))


def list_dir(path: str | os.PathLike) -> list[str]:
    """Names of the entries directly inside ``path``, sorted."""
    return sorted(os.listdir(_local(path)))
