"""dataset_convert as an Apache Beam pipeline.

Steps, each a named PTransform (tested with Beam's TestPipeline):

  ReadAnnotations -> AssignSplits -> FilterByMetadata -> SampleFrames   (this module)
    -> CropHands (crop_step) -> WriteDatasetJson (write_step) (+ WriteTfdsShards, tfds_writer)

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
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from gesturenet_lib import io
from gesturenet_lib.data.annotations import DatasetLayout, HandRecord, parse_annotation
from gesturenet_lib.data.dead_letters import (
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


# ---------------------------------------------------------------- 1. read and validate


class ParseAnnotationFn(beam.DoFn):
    """(layout index, annotation path) -> HandRecord, or a reject with the reason."""

    def __init__(self, layouts: list[DatasetLayout]):
        self.layouts = layouts

    def process(self, item: tuple[int, str | bytes]):
        index, path = item
        layout = self.layouts[index]
        if isinstance(path, bytes):  # a file name that is not UTF-8 (see list_annotation_files)
            source = _relative(path.decode("utf-8", "backslashreplace"), layout.mount_dir)
            yield DeadLetter(dropped(
                source, "annotation file name is not UTF-8", REJECTED))
            return
        source = _relative(path, layout.mount_dir)
        Metrics.counter(NAMESPACE, "annotation files read").inc()
        try:
            text = io.read_contained(path, layout.dataset_dir).decode("utf-8")
            yield parse_annotation(text, source, layout)
        except RecordError as err:
            yield DeadLetter(dropped(source, str(err), REJECTED))
        except io.PathRefused as err:
            yield DeadLetter(dropped(source, f"annotation file {err}",
                                                        REJECTED))
        except UnicodeDecodeError:
            yield DeadLetter(dropped(source, "malformed annotation: not UTF-8 text", REJECTED))
        except OSError as err:
            yield DeadLetter(dropped(
                source, f"unreadable annotation file ({err.strerror or err})", REJECTED))


def _relative(path: str, mount_dir: str) -> str:
    prefix = mount_dir.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def list_annotation_files(shard: tuple[int, int], folders: tuple[tuple[int, str], ...]):
    """(layout index, path) for each *.json under each (layout index, annotation folder), of
    shard (i, n): every n-th file from the i-th, in sorted order. A path that is not UTF-8
    text travels as its bytes (Beam's coders carry only UTF-8 text) and the parser rejects
    it."""
    index_in_shard, shards = shard
    for index, folder in folders:
        files = (p for p in io.list_files(folder) if p.endswith(".json"))
        for position, path in enumerate(files):
            if position % shards == index_in_shard:
                try:
                    path.encode("utf-8")
                except UnicodeEncodeError:
                    yield index, os.fsencode(path)
                    continue
                yield index, path


class ReadAnnotations(beam.PTransform):
    """List and parse every annotation file; outputs ``records`` and ``rejected``.

    The files are listed inside the pipeline, so the job graph carries only the folders (a
    managed runner caps its size; a list of a million paths would not fit). ``spread``
    redistributes the paths before parsing, for runners with many workers: one worker lists,
    all parse. The local runner has one worker and skips it (a barrier and a copy of every
    path for nothing). ``shards`` > 1 lists in that many parts instead, each its own element
    from the start: for runners whose parallelism comes only from the first step's
    partitions (Beam's DaskRunner, where a Reshuffle does nothing)."""

    def __init__(self, layouts: list[DatasetLayout], spread: bool = True, shards: int = 1):
        super().__init__()
        self.layouts = layouts
        self.spread = spread
        self.shards = shards

    def expand(self, pbegin):
        folders = tuple((i, layout.annotation_dir) for i, layout in enumerate(self.layouts))
        files = (pbegin
                 | "Shards" >> beam.Create([(i, self.shards) for i in range(self.shards)])
                 | "ListFiles" >> beam.FlatMap(list_annotation_files, folders))
        if self.spread:
            files = files | "Spread" >> beam.Reshuffle()
        parsed = files | "Parse" >> beam.ParDo(ParseAnnotationFn(self.layouts))
        return split_dead_letters(parsed, "records", REJECTED)


# ---------------------------------------------------------------- 2. splits by person


class AssignSplitFn(beam.DoFn):
    """HandRecord -> (split, record); users in no set go to ``filtered``."""

    def __init__(self, plan: SplitPlan, kpi_datasets: frozenset[str],
                 train_val_datasets: frozenset[str]):
        self.plan = plan
        self.kpi_datasets = kpi_datasets
        self.train_val_datasets = train_val_datasets

    def process(self, record: HandRecord):
        split = self.plan.split_of(record.user_id)
        if split == KPI and record.dataset not in self.kpi_datasets:
            reason = f"kpi user of dataset {record.dataset!r}, which is not in set_list.kpi"
        elif split in (TRAIN, VALIDATION) and record.dataset not in self.train_val_datasets:
            reason = f"dataset {record.dataset!r} is not in set_list.train_val"
        elif split is None:
            reason = f"user {record.user_id!r} is in no set"
        else:
            yield split, record
            return
        yield DeadLetter(dropped(record.source, reason, FILTERED,
                                                    record.label))


class AssignSplits(beam.PTransform):
    def __init__(self, plan: SplitPlan, kpi_datasets: list[str], train_val_datasets: list[str]):
        super().__init__()
        self.fn = AssignSplitFn(plan, frozenset(kpi_datasets), frozenset(train_val_datasets))

    def expand(self, records):
        return split_dead_letters(records | "Assign" >> beam.ParDo(self.fn), "assigned",
                                  FILTERED)


# ---------------------------------------------------------------- 3. metadata filters


def filter_match(metadata: dict[str, Any], filters: list[dict[str, Any]]) -> dict | None:
    """The first filter whose every key/value equals the metadata's, or None."""
    for f in filters:
        if f and all(k in metadata and metadata[k] == v for k, v in f.items()):
            return f
    return None


class FilterByMetadataFn(beam.DoFn):
    def __init__(self, train_val: dict[str, list[dict]], kpi: dict[str, list[dict]]):
        self.by_set = {"train_val": train_val, "kpi": kpi}

    def process(self, item):
        split, record = item
        per_dataset = self.by_set["kpi" if split == KPI else "train_val"]
        filters = per_dataset.get("*", []) + per_dataset.get(record.dataset, [])
        match = filter_match(record.metadata, filters)
        if match is None:
            yield item
        else:
            yield DeadLetter(dropped(
                record.source, f"image_feature_filter {json.dumps(match, sort_keys=True)}",
                FILTERED, record.label, split))


class FilterByMetadata(beam.PTransform):
    """Drop images whose metadata match a filter of their set; outputs ``kept`` and, when the
    spec has any filter, ``filtered``. Without filters the step passes its input through and
    runs nothing."""

    def __init__(self, train_val: dict[str, list[dict]], kpi: dict[str, list[dict]]):
        super().__init__()
        self.fn = FilterByMetadataFn(train_val, kpi)
        self.active = any(f for filters in (*train_val.values(), *kpi.values()) for f in filters)

    def expand(self, items):
        if not self.active:
            return {"kept": items}
        return split_dead_letters(items | "Filter" >> beam.ParDo(self.fn), "kept", FILTERED)


# ---------------------------------------------------------------- 4. frame sampling


class KeepEveryNthFrameFn(beam.DoFn):
    def __init__(self, rate: int):
        self.rate = rate

    def process(self, group):
        _, items = group
        frames = sorted({record.frame for _, record in items})
        kept = set(frames[::self.rate])
        for split, record in sorted(items, key=lambda it: it[1].source):
            if record.frame in kept:
                yield split, record
            else:
                yield DeadLetter(dropped(
                    record.source, f"sampling_rate {self.rate}", SAMPLED_OUT, record.label,
                    split))


class SampleFrames(beam.PTransform):
    """Keep every N-th frame of each user session, in file-name order.

    Outputs ``kept`` and, when N > 1, ``sampled_out``. At N = 1 every frame is kept: the step
    passes its input through and runs nothing (no grouping, no output of dead letters)."""

    def __init__(self, rate: int):
        super().__init__()
        self.rate = rate

    def expand(self, items):
        if self.rate == 1:
            return {"kept": items}
        out = (items
               | "BySession" >> beam.Map(lambda it: ((it[1].dataset, it[1].folder,
                                                       it[1].session), it))
               | "GroupSessions" >> beam.GroupByKey()
               | "EveryNth" >> beam.ParDo(KeepEveryNthFrameFn(self.rate)))
        return split_dead_letters(out, "kept", SAMPLED_OUT)


# ---------------------------------------------------------------- 5. crops


