"""data.json and its sibling files: names, the document, its bytes, its statistics and the
summary printed from them. The one place that knows how dataset_convert's output is laid out
(readers: training, evaluation, inference, the pipeline steps)."""

from __future__ import annotations

import json
import os
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gesturenet_lib import io
from gesturenet_lib.data.dead_letters import FILTERED, REJECTED, SAMPLED_OUT
from gesturenet_lib.data.splits import KPI, SPLITS, TRAIN, VALIDATION
from gesturenet_lib.errors import UserInputError

SETS = SPLITS  # "train_set", "validation_set", "kpi_set": the sets a data.json holds


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Entry:
    """One crop of a set, the fields its readers use (dataset_convert writes more)."""
    bbox_path: str                           # the crop, relative to the image root
    label: str
    user_id: str | None = None
    full_image_path: str | None = None       # the image it was cut from
    bbox_coordinates: list | None = None     # TAO's 4 corners of the cut, in that image
    bbox_original: list | None = None        # the hand's box as annotated (ours, not TAO's)

    def hand_box(self) -> tuple[int, int, int, int]:
        """The hand's box in its full image (x0, y0, x1, y1): as annotated where data.json
        has it, else the cut's corners (a TAO data.json)."""
        corners = self.bbox_original or self.bbox_coordinates
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        return min(xs), min(ys), max(xs), max(ys)


@dataclass(frozen=True)
class DatasetFile:
    """A data.json as read: its classes, sets and TFDS shards; errors name the file, the set,
    the entry and the field."""
    path: str
    classes: dict[str, int]
    sets: dict[str, list[dict]]
    tfds_dir: str | None = None
    tfds_splits: dict[str, str] = field(default_factory=dict)
    class_weights: Any = None                # as written (training validates them)

    def entries(self, name: str, classes: dict[str, int] | None = None,
                crops: bool = True, frames: bool = False) -> list[Entry]:
        """The entries of set ``name``; with ``classes`` every label must be one of them;
        ``crops``/``frames``: the crop path / the full image and its corners must be there."""
        if name not in SETS:
            raise UserInputError(f"--data_type {name}: must be one of {', '.join(SETS)}")
        if name not in self.sets:
            raise UserInputError(f"{self.path}: has no {name}")
        return [self._entry(name, i, raw, classes, crops, frames)
                for i, raw in enumerate(self.sets[name])]

    def _entry(self, name: str, i: int, raw: Any, classes, crops: bool, frames: bool) -> Entry:
        at = f"{self.path}: {name}.images[{i}]"
        if not isinstance(raw, dict):
            raise UserInputError(f"{at}: must be an object")
        label = raw.get("label")
        if classes is not None and label not in classes:
            raise UserInputError(f"{at}.label = {json.dumps(label)}: not in the spec's "
                                 "dataset.classes")
        needed = (("bbox_path",) if crops else ()) + \
            (("full_image_path", "bbox_coordinates") if frames else ())
        for key in needed:
            if not raw.get(key):
                raise UserInputError(f"{at} needs {key}")
        return Entry(raw.get("bbox_path", ""), label, raw.get("user_id"),
                     raw.get("full_image_path"), raw.get("bbox_coordinates"),
                     raw.get("bbox_original"))


def read_dataset_file(path: str, what: str = "data file") -> DatasetFile:
    doc = io.read_json(path, what)
    if not isinstance(doc, dict):
        raise UserInputError(f"{path}: {what} must be a JSON object")
    sets = {}
    for name in SETS:
        images = (doc.get(name) or {}).get("images") if isinstance(doc.get(name), dict) \
            else None
        if images is not None:
            if not isinstance(images, list):
                raise UserInputError(f"{path}: {name}.images must be a list")
            sets[name] = images
    return DatasetFile(path, dict(doc.get("classes") or {}), sets, doc.get("tfds_dir"),
                       dict(doc.get("tfds_splits") or {}), doc.get("class_weights"))


# ---------------------------------------------------------------- writing


DATA_JSON = "data.json"  # data.json's name in a pipeline's dataset artifact


def dataset_json(dataset_dir: str, fold: int | None = None) -> str:
    """data.json in a pipeline's dataset folder, or fold ``fold``'s file."""
    data_json = os.path.abspath(posixpath.join(dataset_dir, DATA_JSON))
    return data_json if fold is None else fold_path(data_json, fold)


def fold_path(data_json: str, fold: int) -> str:
    stem, ext = posixpath.splitext(data_json)
    return f"{stem}_fold{fold}{ext or '.json'}"


def rejects_path(data_json: str) -> str:
    return posixpath.splitext(data_json)[0] + "_rejects.jsonl"


def stats_path(data_json: str) -> str:
    """The statistics of data.json on their own, for readers that need only those."""
    return posixpath.splitext(data_json)[0] + "_stats.json"


def json_bytes(value: Any) -> bytes:
    """``value`` as data.json writes JSON: compact, key-sorted UTF-8, byte-identical for the
    same inputs.

    orjson writes it about six times faster than the standard library (measured: 2,725
    entries in 2.5 ms instead of 16 ms). Python's own encoder, set to the same format, takes
    over for what orjson refuses (integers beyond 64 bits in user metadata)."""
    import orjson

    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")


def document_bytes(doc: Any) -> bytes:
    """data.json's bytes (``json_bytes`` and a newline)."""
    return json_bytes(doc) + b"\n"


# What dataset_convert's last step reads of an entry: it sorts by the image and the
# annotation file, splits and folds by the person, samples and counts by the label, and the
# TFDS shards read the crop.
ROW_FIELDS = ("full_image_path", "source", "user_id", "label", "bbox_path")


def entry_row(entry: dict, split: str) -> dict:
    """A data.json entry as it travels from the crop step to the last step: ROW_FIELDS, its
    ``split`` and ``json``, the entry already as data.json writes it (``json_bytes``).

    A dict of strings only, which Python's garbage collector does not track: made of the
    entries' nested dicts and lists, the 24,000 entries of a 20,000-image run took the last
    step 1 s to unpickle (90 % of it collections walking every tracked object), serially
    after the crops; as rows, 0.05 s. And the JSON is written by the crop workers, in
    parallel."""
    row = {name: entry[name] for name in ROW_FIELDS}
    row["split"] = split
    row["json"] = json_bytes(entry)
    return row


def row_entry(row: dict) -> dict:
    """The data.json entry a row carries."""
    return json.loads(row["json"])


def dataset_document(rows: dict[str, list[dict]], classes: tuple[str, ...],
                     stats: dict, tfds_dir: str | None, fold: int | None) -> dict:
    """data.json's document from the rows of each set (``entry_row``), their entries
    inserted as they are."""
    import orjson

    doc: dict[str, Any] = {s: {"images": [orjson.Fragment(r["json"]) for r in rows[s]]}
                           for s in SPLITS}
    doc["classes"] = {name: i for i, name in enumerate(classes)}
    doc["stats"] = stats
    if tfds_dir:
        doc["tfds_dir"] = tfds_dir
        doc["tfds_splits"] = tfds_split_names(fold)
    if fold is not None:
        doc["fold"] = fold
    return doc


def tfds_split_names(fold: int | None) -> dict[str, str]:
    if fold is None:
        return {TRAIN: "train", VALIDATION: "validation", KPI: "kpi"}
    return {TRAIN: f"train_fold{fold}", VALIDATION: f"validation_fold{fold}", KPI: "kpi"}


def compute_stats(sets: dict[str, list[dict]], dropped_records: list[dict],
                  duplicates: int, crops_written: int, images_read: int) -> dict:
    """The accounting printed in the summary and stored in data.json (``sets``: rows or
    entries)."""
    unique = {e["source"] for entries in sets.values() for e in entries}
    by_kind: dict[str, Counter] = {k: Counter() for k in (REJECTED, FILTERED, SAMPLED_OUT)}
    for d in dropped_records:
        by_kind[d["kind"]][d["reason"]] += 1
    per_split = {s: dict(sorted(Counter(e["label"] for e in sets[s]).items())) for s in SPLITS}
    stats = {
        "boxes_read": len(unique) + sum(sum(c.values()) for c in by_kind.values()),
        "images_read": images_read,
        "crops": len(unique),
        "crop_files_written": crops_written,
        "rejected": sum(by_kind[REJECTED].values()),
        "filtered": sum(by_kind[FILTERED].values()),
        "sampled_out": sum(by_kind[SAMPLED_OUT].values()),
        "duplicated_by_class_sampling": duplicates,
        "rejected_by_reason": dict(sorted(by_kind[REJECTED].items())),
        "filtered_by_reason": dict(sorted(by_kind[FILTERED].items())),
        "sampled_out_by_reason": dict(sorted(by_kind[SAMPLED_OUT].items())),
        "per_split": per_split,
        "users_per_split": {s: len({e["user_id"] for e in sets[s]}) for s in SPLITS},
    }
    return stats


def per_split_table(stats: dict, classes: tuple[str, ...]) -> str:
    """The per-split, per-class table of the summary."""
    names = list(classes)
    header = f"{'split':<16}" + "".join(f"{n[:10]:>11}" for n in names) + f"{'total':>9}"
    lines = [header]
    for split in SPLITS:
        counts = stats["per_split"][split]
        lines.append(f"{split:<16}" + "".join(f"{counts.get(n, 0):>11}" for n in names)
                     + f"{sum(counts.values()):>9}")
    return "\n".join(lines)


def summary_text(stats: dict, classes: tuple[str, ...]) -> str:
    lines = [
        f"images read          {stats['images_read']}",
        f"hand boxes read      {stats['boxes_read']}",
        f"crops in data.json   {stats['crops']}",
        f"rejected             {stats['rejected']}",
        f"filtered             {stats['filtered']}",
        f"sampled out          {stats['sampled_out']}",
        f"check: {stats['boxes_read']} = {stats['crops']} + {stats['rejected']} + "
        f"{stats['filtered']} + {stats['sampled_out']}",
    ]
    for key, title in (("rejected_by_reason", "rejected"), ("filtered_by_reason", "filtered"),
                       ("sampled_out_by_reason", "sampled out")):
        for reason, n in stats[key].items():
            lines.append(f"  {title}: {n:>6}  {reason}")
    if stats["duplicated_by_class_sampling"]:
        lines.append(f"duplicated by class sampling {stats['duplicated_by_class_sampling']}")
    if stats.get("class_weights_not_in_classes"):
        lines.append("sampling.class_weights names classes not in the class list (their "
                     "weights act on nothing): "
                     + ", ".join(stats["class_weights_not_in_classes"]))
    lines.append("")
    lines.append(per_split_table(stats, classes))
    return "\n".join(lines)
