"""TAO's original data layout: Label Studio annotations, one hand box per JSON file.

Layout: ``<mount_dir_path>/<org_data_dir>/<dataset>/<user>/<session>/<image>`` with annotations
under ``<dataset>/<annotation_path>/`` (any depth) and an optional set file
``<dataset>/<dataset>.json`` listing users: ``{"set": ..., "users": {"<uid>": {metadata}}}``.
Without a set file, users are the dataset's top-level folders other than the annotation folder.

An annotation's ``task_path`` names its image: relative to ``mount_dir_path``, or absolute. An
absolute path that is not under ``mount_dir_path`` (NVIDIA's tutorial converter writes the path
on the machine where it ran; TAO then sees the folder elsewhere, inside its container) is
re-rooted by its part from ``<org_data_dir>/<dataset>/`` on; a path that still leaves the dataset
after that, or has no such part, is rejected: no file outside the dataset is read.
``completions[0].result`` holds one ``choices`` item (the gesture label) and one
``rectanglelabels`` item (the box, in percent of the image). Optional ``metadata`` (an object)
adds per-image metadata to the user's metadata from the set file.
"""

from __future__ import annotations

import functools
import json
import math
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gesturenet_lib import io
from gesturenet_lib.data.geometry import PercentBox
from gesturenet_lib.errors import RecordError


@dataclass(frozen=True)
class HandRecord:
    """One annotated hand box."""
    source: str            # annotation file, relative to mount_dir_path
    dataset: str
    user_id: str
    session: str
    image_path: str        # relative to mount_dir_path
    label: str
    box: PercentBox
    original_width: int | None = None
    original_height: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    user_folder: str | None = None  # the <user> folder, when user_id comes from uid_name

    @property
    def frame(self) -> str:
        return posixpath.basename(self.image_path)

    @property
    def folder(self) -> str:
        """The user folder the image lies in (crops and frame sessions follow the folders)."""
        return self.user_folder or self.user_id


@dataclass(frozen=True)
class DatasetLayout:
    """Where one dataset lives and what it may contain."""
    mount_dir: str
    org_data_dir: str
    dataset: str
    annotation_path: str
    classes: tuple[str, ...]
    users: Mapping[str, dict[str, Any]]  # user folder -> metadata from the set file (or {})
    uid_name: str = "user_id"            # metadata field naming the person (uid_list.uid_name)

    @functools.cached_property
    def dataset_dir(self) -> str:
        """(Cached: the parse step asks once per annotation file.)"""
        return io.join(self.mount_dir, self.org_data_dir, self.dataset)

    @property
    def annotation_dir(self) -> str:
        return io.join(self.dataset_dir, self.annotation_path)


def read_users(dataset_dir: str, dataset: str, annotation_path: str) -> dict[str, dict]:
    """Users of a dataset: from its set file when there is one, else its top-level folders."""
    set_file = io.join(dataset_dir, f"{dataset}.json")
    if io.exists(set_file):
        try:
            data = json.loads(io.read_text(set_file))
        except json.JSONDecodeError as err:
            raise RecordError(f"{set_file}: invalid JSON at line {err.lineno} column "
                              f"{err.colno}: {err.msg}") from None
        users = data.get("users") if isinstance(data, dict) else None
        if not isinstance(users, dict):
            raise RecordError(f"{set_file}: users = {json.dumps(users)}: must be an object "
                              "of user id -> metadata")
        return {str(uid): (meta if isinstance(meta, dict) else {}) for uid, meta in users.items()}
    top = annotation_path.strip("/").split("/")[0]
    return {name: {} for name in io.list_dir(dataset_dir)
            if name != top and not name.startswith(".") and io.is_dir(io.join(dataset_dir, name))}


MAX_SIDE = 1_000_000  # pixels: an annotation's original_width/height beyond this is malformed


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def subject_id(user_folder: str, metadata: Mapping[str, Any], uid_name: str) -> str:
    """The person a record belongs to: the value of ``uid_name`` in its metadata (set file and
    annotation), else the name of its user folder."""
    value = metadata.get(uid_name)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        return user_folder
    return str(value)


def _rerooted(task_path: str, dataset_prefix: str | None) -> str | None:
    """An absolute ``task_path`` from another machine, from its last ``<org_data_dir>/<dataset>/``
    part on (relative to the mount), or None when it has no such part."""
    if not dataset_prefix:
        return None
    marker = "/" + dataset_prefix.strip("/") + "/"
    at = task_path.rfind(marker)
    return None if at < 0 else task_path[at + 1:]


def relative_task_path(task_path: str, mount_dir: str, dataset_prefix: str | None = None) -> str:
    """``task_path`` relative to the mount, refusing anything that leaves it. An absolute path
    outside the mount is re-rooted at ``dataset_prefix`` (``<org_data_dir>/<dataset>``)."""
    outside = RecordError(f"task_path {task_path!r} resolves outside mount_dir_path")
    if io.is_cloud_uri(mount_dir):
        mount = mount_dir.rstrip("/")
        rel = None
        if io.is_cloud_uri(task_path) and task_path.startswith(mount + "/"):
            rel = task_path[len(mount) + 1:]
        elif io.is_cloud_uri(task_path) or task_path.startswith("/"):
            rel = _rerooted(task_path, dataset_prefix)
        else:
            rel = task_path
        if rel is None:
            raise outside
        rel = posixpath.normpath(rel)
    else:
        mount = os.path.abspath(mount_dir)
        full = os.path.normpath(os.path.join(mount, task_path))  # an absolute task_path wins
        if full != mount and not full.startswith(mount.rstrip(os.sep) + os.sep):
            rerooted = _rerooted(task_path, dataset_prefix) if os.path.isabs(task_path) else None
            if rerooted is None:
                raise outside
            full = os.path.normpath(os.path.join(mount, rerooted))
            if not full.startswith(mount.rstrip(os.sep) + os.sep):
                raise outside
        rel = full[len(mount):].lstrip(os.sep).replace(os.sep, "/") or "."
    if rel == ".." or rel.startswith("../") or rel.startswith("/"):
        raise outside
    return rel


def _object(value: Any) -> dict:
    """``value`` when it is a JSON object, else an empty one (the checks after it report)."""
    return value if isinstance(value, dict) else {}


def _find(result: list, kind: str) -> list[dict]:
    return [item for item in result if isinstance(item, dict) and item.get("type") == kind]


def _load_json(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(f"malformed JSON at line {err.lineno} column {err.colno}: "
                          f"{err.msg}") from None
    except RecursionError:
        raise RecordError("malformed JSON: nested too deeply") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise RecordError(f"malformed JSON: {err}"[:200]) from None
    if not isinstance(data, dict):
        raise RecordError("malformed annotation: top level is not an object")
    return data


def _label_and_box(data: dict, classes) -> tuple[str, PercentBox, dict]:
    """(gesture label, hand box, the box's result item) of completions[0]."""
    completions = data.get("completions")
    if not isinstance(completions, list) or not completions or not isinstance(
            completions[0], dict) or not isinstance(completions[0].get("result"), list):
        raise RecordError("malformed annotation: no completions[0].result")
    result = completions[0]["result"]
    choices, rects = _find(result, "choices"), _find(result, "rectanglelabels")
    if not choices:
        raise RecordError("malformed annotation: no gesture label (choices item)")
    if not rects:
        raise RecordError("malformed annotation: no hand box (rectanglelabels item)")
    if len(rects) > 1:
        raise RecordError(f"annotation has {len(rects)} hand boxes; expected one per file")
    labels = _object(choices[0].get("value")).get("choices")
    if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
        raise RecordError(f"malformed annotation: choices = {json.dumps(labels)[:80]}; "
                          "expected one label")
    if labels[0] not in classes:
        raise RecordError(f"label {labels[0]!r} not in the class list")
    value = _object(rects[0].get("value"))
    try:
        numbers = [float(value[k]) for k in ("x", "y", "width", "height")]
    except (KeyError, TypeError, ValueError, OverflowError):
        numbers = []
    if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
        raise RecordError("malformed annotation: box needs finite numeric x, y, width, height")
    return labels[0], PercentBox(*numbers), rects[0]


def _pixel_count(rect: dict, name: str) -> int | None:
    v = rect.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        return None
    if not math.isfinite(v) or v > MAX_SIDE:
        raise RecordError(f"malformed annotation: {name} = {v!r}: must be a pixel count "
                          f"up to {MAX_SIDE}")
    return int(v)


def parse_annotation(text: str, source: str, layout: DatasetLayout) -> HandRecord:
    """One Label Studio annotation -> HandRecord, or RecordError with the reason."""
    data = _load_json(text)
    task_path = data.get("task_path")
    if not isinstance(task_path, str) or not task_path:
        raise RecordError("malformed annotation: no task_path")
    if not _is_utf8(task_path):
        raise RecordError("malformed annotation: task_path is not valid UTF-8 text (a lone "
                          "surrogate escape)")
    label, box, rect = _label_and_box(data, layout.classes)
    prefix = f"{layout.org_data_dir.strip('/')}/{layout.dataset}/"
    image_path = relative_task_path(task_path, layout.mount_dir, prefix)
    if not image_path.startswith(prefix):
        raise RecordError(f"task_path {task_path!r} is not inside dataset {layout.dataset!r}")
    parts = image_path[len(prefix):].split("/")
    if len(parts) < 2:
        raise RecordError(f"task_path {task_path!r}: expected <user>/<session>/<image>")
    user, session = parts[0], "/".join(parts[1:-1])
    if layout.users and user not in layout.users:
        raise RecordError(f"user {user!r} is not listed in the set file")
    metadata = dict(layout.users.get(user, {}))
    extra = data.get("metadata")
    if isinstance(extra, dict):
        metadata.update(extra)
    person = subject_id(user, metadata, layout.uid_name)
    return HandRecord(source=source, dataset=layout.dataset, user_id=person, session=session,
                      image_path=image_path, label=label, box=box,
                      original_width=_pixel_count(rect, "original_width"),
                      original_height=_pixel_count(rect, "original_height"),
                      metadata=metadata, user_folder=user if person != user else None)


def label_studio_annotation(task_path: str, label: str, box: PercentBox, width: int,
                            height: int, metadata: dict[str, Any] | None = None) -> dict:
    """The Label Studio JSON for one hand box (what the importers write)."""
    doc: dict[str, Any] = {
        "task_path": task_path,
        "completions": [{"result": [
            {"from_name": "gesture", "to_name": "image", "type": "choices",
             "value": {"choices": [label]}},
            {"from_name": "hand", "to_name": "image", "type": "rectanglelabels",
             "original_width": width, "original_height": height,
             "value": {"x": box.x, "y": box.y, "width": box.width, "height": box.height,
                       "rotation": 0, "rectanglelabels": ["hand"]}},
        ]}],
    }
    if metadata:
        doc["metadata"] = metadata
    return doc
