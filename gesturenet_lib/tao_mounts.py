"""TAO's launcher mounts file, so NVIDIA's specs run on the host with no edit.

The TAO launcher runs each subtask in a container and mounts host folders into it, as listed in
``~/.tao_mounts.json`` (``TAO_MOUNTS`` may name another file)::

    {"Mounts": [{"source": "/home/me/tao", "destination": "/workspace/tao-experiments"}]}

NVIDIA's tutorial specs and flags then name container paths (``/workspace/tao-experiments/...``).
We run on the host, so a path under a mount's ``destination`` maps to the same path under its
``source`` (the longest destination wins, as nested mounts need; a path is joined in the
container's terms first and mapped after, so a nested mount also wins for a path built from
``mount_dir_path`` plus ``org_data_dir``). A path is normalised before it is mapped, and one
that leaves its mount through ``..`` is an error. A mount whose destination
exists on this machine is left alone: inside TAO's own container, or in one of ours that mounts
the same folders, the paths are already right. The log says which mapping was applied.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass

from gesturenet_lib import io
from gesturenet_lib.errors import UserInputError

log = logging.getLogger(__name__)
ENV_VAR = "TAO_MOUNTS"
DEFAULT_FILE = "~/.tao_mounts.json"


@dataclass(frozen=True)
class Mount:
    source: str
    destination: str


def mounts_file() -> str | None:
    """The mounts file in use: ``$TAO_MOUNTS`` (which must exist), else ``~/.tao_mounts.json``
    when it exists; ``TAO_MOUNTS=""`` turns the mapping off."""
    named = os.environ.get(ENV_VAR)
    if named is not None:
        if named and not os.path.isfile(named):
            raise UserInputError(f"{ENV_VAR}={named}: mounts file not found")
        return named or None
    default = os.path.expanduser(DEFAULT_FILE)
    return default if os.path.isfile(default) else None


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int) -> tuple[Mount, ...]:
    """The mounts of ``path`` (cached per file version), longest destination first."""
    try:
        doc = json.loads(open(path, encoding="utf-8").read())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserInputError(f"{path}: cannot read the TAO mounts file: {err}") from None
    entries = doc.get("Mounts") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise UserInputError(f"{path}: Mounts = {json.dumps(entries)}: must be a list of "
                             '{"source": ..., "destination": ...} objects')
    mounts, seen = [], set()
    for i, entry in enumerate(entries):
        source = entry.get("source") if isinstance(entry, dict) else None
        destination = entry.get("destination") if isinstance(entry, dict) else None
        if not (isinstance(source, str) and isinstance(destination, str)
                and os.path.isabs(os.path.expanduser(source)) and os.path.isabs(destination)):
            raise UserInputError(f"{path}: Mounts[{i}] = {json.dumps(entry)[:80]}: needs an "
                                 "absolute source and destination")
        mount = Mount(os.path.normpath(os.path.expanduser(source)), os.path.normpath(destination))
        if mount.destination in seen:
            raise UserInputError(f"{path}: Mounts[{i}].destination = {json.dumps(destination)}: "
                                 "named twice; each destination can be mounted once")
        seen.add(mount.destination)
        mounts.append(mount)
    return tuple(sorted(mounts, key=lambda m: len(m.destination), reverse=True))


def active_mounts() -> tuple[Mount, ...]:
    """The mounts that apply on this machine (their destination does not exist here)."""
    path = mounts_file()
    if path is None:
        return ()
    return tuple(m for m in _read(path, os.stat(path).st_mtime_ns)
                 if not os.path.exists(m.destination))


@functools.lru_cache(maxsize=64)
def _announce(destination: str, source: str) -> None:
    log.info("TAO mounts (%s): %s -> %s", mounts_file(), destination, source)


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def map_path(path: str) -> str:
    """``path`` on this machine: under a mount's destination, the same place under its source.
    A path written under a mount that leaves it through ``..`` is a UserInputError: in TAO's
    container it would name a folder outside the mounted source."""
    if not os.path.isabs(path):
        return path
    normal = os.path.normpath(path)
    mounts = active_mounts()
    for mount in mounts:
        if _under(path, mount.destination) and not _under(normal, mount.destination):
            raise UserInputError(f"{path}: leaves the TAO mount {mount.destination} "
                                 f"({mounts_file()}) through '..'")
    for mount in mounts:  # longest destination first
        if _under(normal, mount.destination):
            _announce(mount.destination, mount.source)
            return os.path.normpath(mount.source + "/" + normal[len(mount.destination):])
    return normal


def map_joined(base: str, part: str) -> str:
    """``part`` under ``base``, both as a spec wrote them (``base`` absolute): joined in the
    container's terms, then mapped, so a mount nested inside ``base``'s mount wins."""
    return map_path(os.path.join(base, part))


def resolve(path: str, relative_to: str | os.PathLike | None) -> str:
    """Resolve a path from a spec: URIs stay, relative paths are taken relative to
    ``relative_to`` (the folder of the spec file that named them), and a local path under a
    TAO launcher mount's container destination maps to its host source. Spec paths pass here,
    flag paths through ``map_path``, where the CLI builds a request."""
    if io.is_cloud_uri(path):
        return path
    if relative_to is None:
        return map_path(path) if os.path.isabs(path) else path
    if io.is_cloud_uri(relative_to) and not os.path.isabs(path):
        return io.join(relative_to, path)
    # absolute, so the path still means the same when written into another spec file
    return map_path(absolute(path, relative_to))


def absolute(path: str, relative_to: str | os.PathLike) -> str:
    """A local spec path made absolute against its spec's folder, not yet mapped (nor
    normalised: ``map_path`` must still see a ``..`` that leaves a mount)."""
    joined = os.path.join(relative_to, path)
    return joined if os.path.isabs(joined) else os.path.join(os.getcwd(), joined)
