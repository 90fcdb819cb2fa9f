"""The last step of dataset_convert: every entry and dead letter -> data.json, the fold
files, the rejects file and the statistics (one writer: the files are built from all
records at once, so the same inputs give the same bytes on every runner)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import apache_beam as beam

from gesturenet_lib import io
from gesturenet_lib.data.class_sampling import balance_classes
from gesturenet_lib.data.cropping import unpack
from gesturenet_lib.data.dataset_file import (
    compute_stats,
    dataset_document,
    document_bytes,
    fold_path,
    rejects_path,
    stats_path,
    tfds_split_names,
)
from gesturenet_lib.data.dead_letters import DROPPED, REJECTED, SAMPLED_OUT, dropped
from gesturenet_lib.data.splits import KPI, SPLITS, TRAIN, SplitPlan, fold_split

log = logging.getLogger(__name__)
ENTRIES = "entries"  # beside DROPPED: the two kinds of input the write gathers


@dataclass(frozen=True)
class OutputSettings:
    """What the final step writes, and where (``data_json`` may be any path or URI)."""
    data_json: str
    classes: tuple[str, ...]
    k_folds: int
    experiment_name: str
    use_class_weights: bool
    class_weights: dict[str, float]    # of classes in ``classes`` only
    tfds_dir: str | None = None
    # classes sampling.class_weights names that are not in ``classes``: their weights act on
    # nothing (TAO's sample names "v"); reported in the stats and the summary
    unused_class_weights: tuple[str, ...] = ()


def _by_split(rows: list[dict], split_of) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for row in rows:
        split = split_of(row)
        if split is not None:
            out[split].append(row)
    return out


def build_dataset(rows: list[dict], settings: OutputSettings, split_of
                  ) -> tuple[dict[str, list[dict]], list[dict], int]:
    """Sets of one split (or fold) of the entries' rows (``dataset_file.entry_row``), with
    class sampling applied to the training set."""
    sets = _by_split(rows, split_of)
    dropped_records: list[dict] = []
    duplicates = 0
    if settings.use_class_weights:
        result = balance_classes(sets[TRAIN], settings.class_weights, settings.experiment_name)
        sets[TRAIN] = result.records
        duplicates = result.duplicates
        dropped_records = [dropped(r["source"], "class sampling (use_class_weights)",
                                   SAMPLED_OUT, r["label"], TRAIN) for r in result.sampled_out]
    return sets, dropped_records, duplicates


class WriteDatasetJsonFn(beam.DoFn):
    """Writes data.json (fold 0 when folding), the fold files and the rejects file; with
    ``emit_entries``, yields the final (tfds split name, entry's row) pairs for the shard
    writer."""

    def __init__(self, settings: OutputSettings, plan: SplitPlan, emit_entries: bool = True):
        self.settings = settings
        self.plan = plan
        self.emit_entries = emit_entries

    def _split_of(self, fold: int | None):
        """Split of an entry's row: as assigned, or in fold ``fold`` (that fold validates)."""
        if fold is None:
            return lambda row: row["split"]
        return lambda row: fold_split(self.plan, fold, row["user_id"])

    def process(self, grouped):
        _, values = grouped
        s = self.settings
        # The crop step made its crops durable before it passed their entries on.
        rows = [row for kind, v in values if kind == ENTRIES for row in unpack(v)]
        dropped_records = [v for kind, v in values if kind == DROPPED]
        rows.sort(key=lambda r: (r["full_image_path"], r["source"]))
        dropped_records.sort(key=lambda d: (d["source"], d["reason"]))
        log.info("dataset_convert: writing %s (%d crops)", s.data_json, len(rows))
        images_read = len({r["full_image_path"] for r in rows} |
                          {d["source"] for d in dropped_records if d["kind"] == REJECTED
                           and d["reason"].startswith(("unreadable", "truncated", "missing"))})
        folds = list(range(s.k_folds)) if s.k_folds >= 2 else [None]
        for fold in folds:
            sets, class_dropped, dups = build_dataset(rows, s, self._split_of(fold))
            stats = compute_stats(sets, dropped_records + class_dropped, dups,
                                  len(rows), images_read)
            if s.unused_class_weights:
                stats["class_weights_not_in_classes"] = list(s.unused_class_weights)
            document = document_bytes(dataset_document(sets, s.classes, stats,
                                                      s.tfds_dir, fold))
            if fold is not None:
                io.write_bytes(fold_path(s.data_json, fold), document)
            if fold in (None, 0):
                rejects = [{"source": d["source"], "reason": d["reason"]}
                           for d in dropped_records if d["kind"] == REJECTED]
                io.write_text(rejects_path(s.data_json),
                              "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects))
                io.write_text(stats_path(s.data_json), json.dumps(stats, sort_keys=True,
                                                                  indent=1) + "\n")
                io.write_bytes(s.data_json, document)  # last: data.json commits the others
            del document
            if not self.emit_entries:
                continue
            names = tfds_split_names(fold)
            for split, records in sets.items():
                if fold is not None and split == KPI and fold != 0:
                    continue  # one kpi split serves every fold
                for row in records:
                    yield names[split], row


class WriteDatasetJson(beam.PTransform):
    """(packed batches of entries' rows, dead-letter records) -> data.json, fold files,
    rejects file. With ``emit_entries`` the output holds the final (tfds split name, entry's
    row) pairs (for the shard writer); without, it is empty."""

    def __init__(self, settings: OutputSettings, plan: SplitPlan, emit_entries: bool = True):
        super().__init__()
        self.settings = settings
        self.plan = plan
        self.emit_entries = emit_entries

    def expand(self, inputs):
        # One write over every entry (packed in batches by the crop step: a runner copies a
        # few byte strings far faster than thousands of small dicts) and every dead letter,
        # gathered by one group: real dependencies, which every runner computes in parallel
        # before the write (Beam's DaskRunner computes side inputs inside the consuming task,
        # serially: 0.31 of the local run's rate at 20,000 images).
        packed_entries, dropped_records = inputs
        return ((packed_entries | "TagEntries" >> beam.Map(lambda b: (None, (ENTRIES, b))),
                 dropped_records | "TagDropped" >> beam.Map(lambda d: (None, (DROPPED, d))))
                | "Together" >> beam.Flatten()
                | "Gather" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(WriteDatasetJsonFn(self.settings, self.plan,
                                                           self.emit_entries)))
