"""`dataset_import --format hagrid`: HaGRID annotations -> TAO's original data layout.

HaGRID stores, per gesture, ``{"<image id>": {"bboxes": [[x, y, w, h], ...] (normalised,
top-left origin), "labels": [...], "user_id": ...}}``. The importer writes into the dataset
folder (``<mount_dir_path>/<org_data_dir>/<org_dataset>``) only:

- ``<user_id>/<session>/<image>``: the image (hard link when possible, else a copy); the
  session is the HaGRID gesture file the image is listed in;
- ``annotation/<user_id>/<session>/<image id>_<box>.json``: one Label Studio annotation per hand
  box, ``task_path`` relative to mount_dir_path, labels mapped by the class map, HaGRID's own
  label and split kept in ``metadata`` (usable by ``image_feature_filter``);
- ``<org_dataset>.json``: the set file listing users, with the attribution in ``metadata``.

Boxes whose image is missing or whose label the class map does not cover are counted and
written to ``<dataset folder>_import_rejects.jsonl`` beside the dataset folder.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from gesturenet_lib import io
from gesturenet_lib.data import images
from gesturenet_lib.data.annotations import label_studio_annotation
from gesturenet_lib.data.geometry import PercentBox
from gesturenet_lib.data.images import IMAGE_SUFFIXES
from gesturenet_lib.errors import RecordError, UserInputError

log = logging.getLogger(__name__)

# HaGRID label -> GestureNet class; "*" catches every other label, no_gesture hands included.
DEFAULT_CLASS_MAP = {"like": "thumbs_up", "fist": "fist", "stop": "stop", "palm": "stop",
                     "ok": "ok", "peace": "two", "*": "random"}

ATTRIBUTION = ("HaGRID - HAnd Gesture Recognition Image Dataset, Kapitanov, Makhlyarchuk, "
               "Kvanchiani, Nagaev (https://github.com/hukenovs/hagrid, arXiv:2206.08219); "
               "licence: HaGRID's public license with attribution and conditions reserved "
               "(a variant of CC BY-SA 4.0)")


@dataclass(frozen=True)
class ImportResult:
    output: str                   # the dataset folder written
    images: int
    boxes: int                    # -1: not counted (a folder copied as it is)
    users: int                    # -1: not counted
    rejected: int
    rejects_file: str | None
    per_class: dict[str, int]


def rejects_path(output_dir: str) -> str:
    """The boxes that could not be imported, beside the dataset folder."""
    return f"{str(output_dir).rstrip('/')}_import_rejects.jsonl"


def load_class_map(path: str | None) -> dict[str, str]:
    if path is None:
        return dict(DEFAULT_CLASS_MAP)
    data = io.read_json(path, "--class_map file")
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise UserInputError(f"{path}: must be an object of HaGRID label -> class name")
    return data


def _index_images(images_dir: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for path in io.list_files(images_dir):
        stem, suffix = os.path.splitext(os.path.basename(path))
        if suffix.lower() in IMAGE_SUFFIXES:
            index.setdefault(stem, path)
    return index


def _link_or_copy(src: str, dst: str) -> None:
    if io.exists(dst):
        return
    io.makedirs(io.parent(dst))
    tmp = io.temporary_name(dst)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _image_size(path: str) -> tuple[int, int] | None:
    """The size the image is displayed at (EXIF orientation applied), from its header: the
    grid HaGRID's normalised boxes, Label Studio and dataset_convert all use."""
    try:
        return images.displayed_size(io.read_bytes(path))
    except RecordError:
        return None


@dataclass
class _Tally:
    """What an import wrote and refused, as it goes."""
    users: dict[str, dict] = field(default_factory=dict)
    rejects: list[dict] = field(default_factory=list)
    per_class: dict[str, int] = field(default_factory=dict)
    boxes: int = 0
    images: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Target:
    out: Path                    # the dataset folder written (<org_data_dir>/<org_dataset>)
    class_map: dict[str, str]

    @property
    def task_prefix(self) -> str:
        return f"{self.out.parent.name}/{self.out.name}"


def _import_image(target: _Target, tally: _Tally, src: str, source: str, image_id: str,
                  rec: dict, session: str, hagrid_split: str | None) -> None:
    """One HaGRID image: its annotations (one per box) and the image, linked or copied."""
    user, bboxes, labels = rec["user_id"], rec["bboxes"], rec["labels"]
    size = _image_size(src)
    if size is None:
        tally.rejects.append({"source": source, "reason": "unreadable image"})
        return
    rel_image = posixpath.join(user, session, os.path.basename(src))
    written = 0
    for i, (bbox, label) in enumerate(zip(bboxes, labels, strict=True)):
        cls = target.class_map.get(label, target.class_map.get("*"))
        if cls is None:
            tally.rejects.append({"source": f"{source}#{i}",
                                  "reason": f"label {label!r} not in the class map"})
            continue
        meta = {"hagrid_label": label, **({"hagrid_split": hagrid_split} if hagrid_split
                                          else {})}
        doc = label_studio_annotation(f"{target.task_prefix}/{rel_image}", cls,
                                      PercentBox(*(float(v) * 100.0 for v in bbox)),
                                      size[0], size[1], meta)
        io.write_text(target.out / "annotation" / user / session / f"{image_id}_{i}.json",
                      json.dumps(doc, indent=1, sort_keys=True) + "\n")
        tally.per_class[cls] = tally.per_class.get(cls, 0) + 1
        tally.boxes += 1
        written += 1
    if not written:  # every box refused: nothing names the image, so it is not imported
        return
    _link_or_copy(src, str(target.out / rel_image))
    tally.users.setdefault(user, {})
    tally.images.add(rel_image)


def _import_file(target: _Target, tally: _Tally, images: dict[str, str], ann_file: str,
                 annotations_dir: str) -> None:
    """One HaGRID annotation file (a session): every image it annotates."""
    rel_ann = os.path.relpath(ann_file, annotations_dir)
    session = os.path.splitext(os.path.basename(ann_file))[0]
    try:
        records = json.loads(io.read_text(ann_file))
    except json.JSONDecodeError as err:
        tally.rejects.append({"source": rel_ann, "reason": f"malformed JSON at line {err.lineno}"})
        return
    for image_id, rec in sorted(records.items()):
        source = f"{rel_ann}:{image_id}"
        src = images.get(image_id)
        bboxes, labels = rec.get("bboxes") or [], rec.get("labels") or []
        if src is None or not rec.get("user_id") or len(bboxes) != len(labels):
            reason = ("missing image" if src is None else "no user_id" if not rec.get("user_id")
                      else "bboxes and labels differ in length")
            tally.rejects.extend({"source": f"{source}#{i}", "reason": reason}
                                 for i in range(max(1, len(labels))))
            continue
        _import_image(target, tally, src, source, image_id,
                      {**rec, "bboxes": bboxes, "labels": labels}, session,
                      os.path.dirname(rel_ann) or None)


def import_hagrid(images_dir: str, annotations_dir: str, output_dir: str,
                  class_map_file: str | None = None) -> ImportResult:
    class_map = load_class_map(class_map_file)
    for flag, folder in (("--images", images_dir), ("--annotations", annotations_dir)):
        if not io.is_dir(folder):
            raise UserInputError(f"{flag} {folder}: folder not found")
    out = Path(output_dir).resolve()
    org_dataset = out.name
    images = _index_images(images_dir)
    annotation_files = [p for p in io.list_files(annotations_dir) if p.endswith(".json")]
    if not annotation_files:
        raise UserInputError(f"--annotations {annotations_dir}: no HaGRID annotation files")
    target, tally = _Target(out, class_map), _Tally()
    for ann_file in annotation_files:
        _import_file(target, tally, images, ann_file, annotations_dir)
    users, rejects, per_class, boxes, used_images = (tally.users, tally.rejects,
                                                     tally.per_class, tally.boxes, tally.images)
    set_file = {"set": org_dataset, "users": dict(sorted(users.items())),
                "metadata": {"source": "HaGRID", "attribution": ATTRIBUTION,
                             "class_map": class_map}}
    io.write_text(out / f"{org_dataset}.json", json.dumps(set_file, indent=1) + "\n")
    rejects_file = None
    if rejects:
        rejects_file = rejects_path(str(out))
        io.write_text(rejects_file, "".join(json.dumps(r) + "\n" for r in rejects))
    log.info("dataset_import: %d images, %d hand boxes, %d users, %d rejected", len(used_images),
             boxes, len(users), len(rejects))
    return ImportResult(output_dir, len(used_images), boxes, len(users), len(rejects), rejects_file,
                        dict(sorted(per_class.items())))
