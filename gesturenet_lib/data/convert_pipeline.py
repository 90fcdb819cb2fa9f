"""dataset_convert as an Apache Beam pipeline.

Steps, each a named PTransform (tested with Beam's TestPipeline):

  ReadHands -> SampleFrames   (this module)
    -> CropHands (crop_step) -> WriteDatasetJson (write_step) (+ WriteTfdsShards, tfds_writer)

ReadHands reads one listing shard per call: it lists the shard's annotation files, parses each
(ParseAnnotation), gives it its person's split (AssignSplit) and applies the metadata filters
(FilterByMetadata), and passes on the boxes of one image together. No step groups by image:
on a distributed runner a by-image GroupByKey is a full shuffle of every record.

Records that cannot be used go to dead-letter outputs with a reason instead of raising:
``rejected`` (bad data), ``filtered`` (excluded by the spec: metadata filter, a user in no set),
``sampled_out`` (frame sampling, class sampling); each is also counted by a Beam counter (the
``dataset_convert`` namespace: what a Dataflow or Dask dashboard shows). The final step writes
data.json, the fold files, the rejects file and the statistics; every hand box is accounted for:
``boxes_read = crops + rejected + filtered + sampled_out``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from gesturenet_lib import io
from gesturenet_lib.data.annotations import DatasetLayout, HandRecord, parse_annotation
from gesturenet_lib.data.dead_letters import (
    DROPPED,
    FILTERED,
    REJECTED,
    SAMPLED_OUT,
    DeadLetter,
    dropped,
    reason_category,
)
from gesturenet_lib.data.splits import KPI, TRAIN, VALIDATION, SplitPlan
from gesturenet_lib.errors import RecordError

log = logging.getLogger(__name__)

NAMESPACE = "dataset_convert"  # of the Beam counters


# ---------------------------------------------------------------- dead letters, counted

class CountDeadLettersFn(beam.DoFn):
    """DeadLetter -> its record, counted as ``<kind>: <reason category>``."""

    def process(self, value):
        if isinstance(value, DeadLetter):
            record = value.record
            Metrics.counter(NAMESPACE, f"{record['kind']}: "
                                       f"{reason_category(record['reason'])}").inc()
            yield record


def split_dead_letters(outputs, main: str, dead: str) -> dict:
    """A step's one output -> ``{main: kept values, dead: dead-letter records}``. One output
    per step, not a ParDo's tagged outputs: Beam's DaskRunner hands every consumer of a
    multi-output ParDo all of its outputs, which would mix records and rejects there."""
    return {main: outputs | f"Kept_{main}" >> beam.Filter(
                lambda value: not isinstance(value, DeadLetter)),
            dead: outputs | f"Dead_{dead}" >> beam.ParDo(CountDeadLettersFn())}


# ---------------------------------------------------------------- 1. listing shards


@dataclass(frozen=True)
class ListingShard:
    """A part of the annotation files, listed by the step that reads them (the job graph
    carries folders, never the file list: a managed runner caps its size). ``recursive``: every
    file under ``folder``; else only the files directly in it, part ``part`` of ``parts``
    contiguous parts of their sorted list."""
    layout: int           # index into the layouts
    folder: str
    recursive: bool = True
    part: int = 0
    parts: int = 1


def whole_trees(layouts: list[DatasetLayout]) -> list[ListingShard]:
    """One shard per dataset: its whole annotation tree, in sorted order (one worker)."""
    return [ListingShard(i, layout.annotation_dir) for i, layout in enumerate(layouts)]


MAX_LISTING_DEPTH = 4  # folder levels the driver may list to cut the trees into shards


def plan_listing(layouts: list[DatasetLayout], wanted: int) -> list[ListingShard]:
    """Cut the annotation trees into about ``wanted`` shards, by folder: each folder is listed
    once, by one shard, and the boxes of one image (whose annotation files lie side by side)
    stay in one shard. The driver lists folders level by level until there are enough; files
    found on the way are shards of their own folder, and when the folders run out, folders of
    files are cut into contiguous parts (each part lists its folder)."""
    shards: list[ListingShard] = []
    frontier = [(i, layout.annotation_dir) for i, layout in enumerate(layouts)]
    for _ in range(MAX_LISTING_DEPTH):
        if not frontier or len(shards) + len(frontier) >= wanted:
            break
        deeper = []
        for index, folder in frontier:
            subfolders, files = io.list_folder(folder)
            if any(name.endswith(".json") for name in files):
                shards.append(ListingShard(index, folder, recursive=False))
            deeper += [(index, io.join(folder, name)) for name in subfolders]
        frontier = deeper
    shards += [ListingShard(index, folder) for index, folder in frontier]
    flat = [s for s in shards if not s.recursive]
    if flat and len(shards) < wanted:
        parts = -(-(wanted - len(shards) + len(flat)) // len(flat))
        shards = [s for s in shards if s.recursive] + [
            replace(s, part=k, parts=parts) for s in flat for k in range(parts)]
    return shards


def shard_files(shard: ListingShard):
    """(layout index, path) of each *.json of the shard, in sorted order. A path that is not
    UTF-8 text travels as its bytes (Beam's coders carry only UTF-8 text) and the parser
    rejects it."""
    if shard.recursive:
        paths = (p for p in io.list_files(shard.folder) if p.endswith(".json"))
    else:
        names = [n for n in io.list_folder(shard.folder)[1] if n.endswith(".json")]
        size = len(names)
        block = names[shard.part * size // shard.parts:(shard.part + 1) * size // shard.parts]
        paths = (io.join(shard.folder, name) for name in block)
    for path in paths:
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            yield shard.layout, os.fsencode(path)
            continue
        yield shard.layout, path


# ---------------------------------------------------------------- 2. each hand box


class ParseAnnotation:
    """(layout index, annotation path) -> HandRecord, or a reject with the reason."""

    def __init__(self, layouts: list[DatasetLayout]):
        self.layouts = layouts

    def __call__(self, item: tuple[int, str | bytes]) -> HandRecord | DeadLetter:
        index, path = item
        layout = self.layouts[index]
        if isinstance(path, bytes):  # a file name that is not UTF-8 (see shard_files)
            source = _relative(path.decode("utf-8", "backslashreplace"), layout.mount_dir)
            return DeadLetter(dropped(source, "annotation file name is not UTF-8", REJECTED))
        source = _relative(path, layout.mount_dir)
        Metrics.counter(NAMESPACE, "annotation files read").inc()
        try:
            text = io.read_contained(path, layout.dataset_dir).decode("utf-8")
            return parse_annotation(text, source, layout)
        except RecordError as err:
            return DeadLetter(dropped(source, str(err), REJECTED))
        except io.PathRefused as err:
            return DeadLetter(dropped(source, f"annotation file {err}", REJECTED))
        except UnicodeDecodeError:
            return DeadLetter(dropped(source, "malformed annotation: not UTF-8 text", REJECTED))
        except OSError as err:
            return DeadLetter(dropped(
                source, f"unreadable annotation file ({err.strerror or err})", REJECTED))


def _relative(path: str, mount_dir: str) -> str:
    prefix = mount_dir.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


class AssignSplit:
    """HandRecord -> (split, record): the split of its person; users in no set are
    ``filtered``."""

    def __init__(self, plan: SplitPlan, kpi_datasets: list[str],
                 train_val_datasets: list[str]):
        self.plan = plan
        self.kpi_datasets = frozenset(kpi_datasets)
        self.train_val_datasets = frozenset(train_val_datasets)

    def __call__(self, record: HandRecord) -> tuple[str, HandRecord] | DeadLetter:
        split = self.plan.split_of(record.user_id)
        if split == KPI and record.dataset not in self.kpi_datasets:
            reason = f"kpi user of dataset {record.dataset!r}, which is not in set_list.kpi"
        elif split in (TRAIN, VALIDATION) and record.dataset not in self.train_val_datasets:
            reason = f"dataset {record.dataset!r} is not in set_list.train_val"
        elif split is None:
            reason = f"user {record.user_id!r} is in no set"
        else:
            return split, record
        return DeadLetter(dropped(record.source, reason, FILTERED, record.label))


def filter_match(metadata: dict[str, Any], filters: list[dict[str, Any]]) -> dict | None:
    """The first filter whose every key/value equals the metadata's, or None."""
    for f in filters:
        if f and all(k in metadata and metadata[k] == v for k, v in f.items()):
            return f
    return None


class FilterByMetadata:
    """(split, record) -> itself, or ``filtered`` when its metadata match a filter of its
    set (``image_feature_filter``); ``active`` is False when the spec has no filter."""

    def __init__(self, train_val: dict[str, list[dict]], kpi: dict[str, list[dict]]):
        self.by_set = {"train_val": train_val, "kpi": kpi}
        self.active = any(f for filters in (*train_val.values(), *kpi.values())
                          for f in filters)

    def __call__(self, item: tuple[str, HandRecord]) -> tuple[str, HandRecord] | DeadLetter:
        split, record = item
        per_dataset = self.by_set["kpi" if split == KPI else "train_val"]
        filters = per_dataset.get("*", []) + per_dataset.get(record.dataset, [])
        match = filter_match(record.metadata, filters)
        if match is None:
            return item
        return DeadLetter(dropped(
            record.source, f"image_feature_filter {json.dumps(match, sort_keys=True)}",
            FILTERED, record.label, split))


# ---------------------------------------------------------------- 3. read a shard


class ReadHandsFn(beam.DoFn):
    """ListingShard -> image groups ``(image path, [(split, record), ...])`` and dead letters.

    Each listed file is parsed, given its person's split and passed through the metadata
    filters; consecutive boxes of one image form a group (the crop step decodes each image
    once per group). Everything happens inside one call per shard, so no output waits for
    the end of a bundle: Beam's DaskRunner drops what a DoFn emits in finish_bundle."""

    def __init__(self, parse: ParseAnnotation, assign: AssignSplit, keep: FilterByMetadata):
        self.parse = parse
        self.assign = assign
        self.keep = keep

    def _hand(self, item) -> tuple[str, HandRecord] | DeadLetter:
        record = self.parse(item)
        if isinstance(record, DeadLetter):
            return record
        assigned = self.assign(record)
        if isinstance(assigned, DeadLetter) or not self.keep.active:
            return assigned
        return self.keep(assigned)

    def process(self, shard: ListingShard):
        path, group = None, []
        for item in shard_files(shard):
            hand = self._hand(item)
            if isinstance(hand, DeadLetter):
                yield hand
                continue
            if hand[1].image_path != path:
                if group:
                    yield path, group
                path, group = hand[1].image_path, []
            group.append(hand)
        if group:
            yield path, group


class ReadHands(beam.PTransform):
    """List and parse the annotation files of each shard, assign splits, apply the metadata
    filters; outputs ``groups`` (boxes of one image) and ``dropped`` (rejected or filtered).

    ``spread`` redistributes the shards before reading, for runners with many workers (one
    worker would otherwise read them all); a runner in this process has one worker and skips
    it. On Beam's DaskRunner, where a Reshuffle does nothing, the parallelism is the shards'
    partitions."""

    def __init__(self, shards: list[ListingShard], parse: ParseAnnotation, assign: AssignSplit,
                 keep: FilterByMetadata, spread: bool = True):
        super().__init__()
        self.shards = shards
        self.fn = ReadHandsFn(parse, assign, keep)
        self.spread = spread

    def expand(self, pbegin):
        shards = pbegin | "Shards" >> beam.Create(self.shards)
        if self.spread:
            shards = shards | "Spread" >> beam.Reshuffle()
        return split_dead_letters(shards | "Read" >> beam.ParDo(self.fn), "groups", DROPPED)


# ---------------------------------------------------------------- 4. frame sampling


class KeepEveryNthFrameFn(beam.DoFn):
    """(session, image groups) -> the groups of every N-th frame, regrouped by image (so the
    boxes of one image meet even when their files were apart), and the others sampled out."""

    def __init__(self, rate: int):
        self.rate = rate

    def process(self, session):
        _, groups = session
        items = sorted((item for _, group in groups for item in group),
                       key=lambda it: it[1].source)
        frames = sorted({record.frame for _, record in items})
        kept = set(frames[::self.rate])
        by_image: dict[str, list] = {}
        for split, record in items:
            if record.frame in kept:
                by_image.setdefault(record.image_path, []).append((split, record))
            else:
                yield DeadLetter(dropped(
                    record.source, f"sampling_rate {self.rate}", SAMPLED_OUT, record.label,
                    split))
        yield from sorted(by_image.items())


class SampleFrames(beam.PTransform):
    """Keep every N-th frame of each user session, in file-name order.

    Image groups in, image groups out (``kept``) and, when N > 1, ``sampled_out``. At N = 1
    every frame is kept: the step passes its input through and runs nothing (no grouping, no
    output of dead letters)."""

    def __init__(self, rate: int):
        super().__init__()
        self.rate = rate

    def expand(self, groups):
        if self.rate == 1:
            return {"kept": groups}

        def session(group):
            record = group[1][0][1]  # every box of one image lies in one session
            return (record.dataset, record.folder, record.session), group

        out = (groups
               | "BySession" >> beam.Map(session)
               | "GroupSessions" >> beam.GroupByKey()
               | "EveryNth" >> beam.ParDo(KeepEveryNthFrameFn(self.rate)))
        return split_dead_letters(out, "kept", SAMPLED_OUT)


# ---------------------------------------------------------------- 5. crops


