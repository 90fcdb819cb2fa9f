"""`evaluate --full_frame`: the hands found in each whole image of a set against its annotated
boxes. A found hand matches an annotated one at IoU >= 0.3 (each at most once, best pairs
first). Hand recall and precision count the matches; gesture accuracy and macro-F1 are on the
matched hands; misses and false hands are counted and the missed ones shown in the report."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from gesturenet_lib import io
from gesturenet_lib.data.dataset_file import read_dataset_file
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.evaluation.evaluate import (
    GALLERY_LIMIT,
    EvaluateResult,
    counted_index,
    counted_name,
    start_evaluation,
    write_outputs,
)
from gesturenet_lib.evaluation.metrics import classification_metrics, metrics_table
from gesturenet_lib.evaluation.report import Misclassified
from gesturenet_lib.families.hand_landmarks.palm_detection import iou
from gesturenet_lib.inference.full_frame import (
    CropRule,
    classify_frames,
    hand_finder,
    photo_workers,
)
from gesturenet_lib.inference.loading import load_checked_backend
from gesturenet_lib.inference.run import Source, log_progress
from gesturenet_lib.specs import Experiment

log = logging.getLogger(__name__)
MATCH_IOU = 0.3


@dataclass(frozen=True)
class Annotated:
    box: tuple[int, int, int, int]
    label: str


def match(annotated: list[tuple[int, int, int, int]], found: list[tuple[int, int, int, int]]
          ) -> list[tuple[int, int]]:
    """(annotated index, found index) pairs at IoU >= 0.3, greedily from the best pair."""
    if not annotated or not found:
        return []
    found_boxes = np.array(found, np.float64)
    pairs = sorted(((float(o), a, f) for a, box in enumerate(annotated)
                    for f, o in enumerate(iou(np.array(box, np.float64), found_boxes))
                    if o >= MATCH_IOU), reverse=True)
    used_a, used_f, out = set(), set(), []
    for _, a, f in pairs:
        if a not in used_a and f not in used_f:
            used_a.add(a)
            used_f.add(f)
            out.append((a, f))
    return sorted(out)


def annotated_frames(exp: Experiment, data_type: str, classes: dict[str, int]
                     ) -> dict[str, list[Annotated]]:
    """full_image_path -> its annotated hands in the set, in data.json's order."""
    frames: dict[str, list[Annotated]] = defaultdict(list)
    for e in read_dataset_file(exp.eval_json).entries(data_type, classes, crops=False,
                                                      frames=True):
        frames[e.full_image_path].append(Annotated(e.hand_box(), e.label))
    return frames


def evaluate_full_frames(exp: Experiment, model_path: str, key: str | None,
                         data_type: str = "kpi_set", rule: CropRule | None = None,
                         report_file: str | None = None) -> EvaluateResult:
    out_dir = exp.eval_dir
    classes, names = start_evaluation(exp, model_path)
    frames = annotated_frames(exp, data_type, classes)
    backend = load_checked_backend(model_path, key, exp.spec)
    sources = [Source(io.join(exp.eval_image_root, path), path) for path in frames]
    log.info("evaluate --full_frame: %d images of %s with %s (%s)", len(sources), data_type,
             model_path, backend.name)
    workers = photo_workers(len(sources))
    results = classify_frames(sources, hand_finder(workers=workers), backend, rule or CropRule(),
                              keep_images=True, workers=workers,
                              progress=log_progress("evaluate --full_frame"))
    scored = _score(results, frames, classes, names)
    truth, pred, counts = scored.truth, scored.pred, scored.counts
    if not truth:
        raise UserInputError(f"{exp.eval_json}: no annotated hand of {data_type} was found in "
                             f"its image ({counts['annotated_hands']} annotated, "
                             f"{counts['images_skipped']} images unreadable)")
    metrics = classification_metrics(np.array(truth), np.array(pred), names)
    metrics["full_frame"] = _detection(counts)
    evaluated = len(results) - counts["images_skipped"]
    metrics.update(images_evaluated=evaluated, images_skipped=counts["images_skipped"],
                   skipped=[{"path": r.source.shown_as, "error": r.error}
                            for r in results if r.error],
                   data_type=data_type, model=model_path, backend=backend.name,
                   mode="full_frame")
    return write_outputs(out_dir, metrics, names, scored.wrong,
                         f"GestureNet full-frame evaluation: {data_type} of {exp.eval_json}",
                         detection_table(metrics) + "\n" + metrics_table(metrics),
                         scored.missed, report_file)


@dataclass
class _Scored:
    truth: list[int] = field(default_factory=list)       # matched hands: annotated class
    pred: list[int] = field(default_factory=list)        # and the class they count as
    wrong: list[Misclassified] = field(default_factory=list)
    missed: list[Misclassified] = field(default_factory=list)
    counts: dict = field(default_factory=lambda: defaultdict(int))


def _score(results, frames: dict[str, list[Annotated]], classes: dict[str, int],
           names: list[str]) -> _Scored:
    """Each image's found hands matched to its annotated ones; galleries kept short."""
    scored = _Scored()
    counts = scored.counts
    for result in results:
        wanted = frames[result.source.shown_as]
        if result.error:
            counts["images_skipped"] += 1
            continue
        pairs = match([a.box for a in wanted], [h.box for h in result.hands])
        counts["annotated_hands"] += len(wanted)
        counts["found_hands"] += len(result.hands)
        counts["matched"] += len(pairs)
        for a, f in pairs:
            hand, y = result.hands[f], classes[wanted[a].label]
            k = counted_index(hand, classes)
            scored.truth.append(y)
            scored.pred.append(k)
            if k != y and len(scored.wrong) < GALLERY_LIMIT:
                scored.wrong.append(Misclassified(
                    result.source.shown_as, wanted[a].label, counted_name(hand, classes, names),
                    hand.confidence, _thumbnail(result, hand.crop_box)))
        matched = {a for a, _ in pairs}
        for a, hand in enumerate(wanted):
            if a not in matched and len(scored.missed) < GALLERY_LIMIT:
                scored.missed.append(Misclassified(result.source.shown_as, hand.label,
                                                   "no hand found", 0.0,
                                                   _thumbnail(result, hand.box)))
    return scored


def _detection(counts: dict) -> dict:
    annotated, found, matched = (counts["annotated_hands"], counts["found_hands"],
                                 counts["matched"])
    return {"match_iou": MATCH_IOU, "annotated_hands": annotated, "found_hands": found,
            "matched_hands": matched, "missed_hands": annotated - matched,
            "false_hands": found - matched,
            "hand_recall": matched / annotated if annotated else 0.0,
            "hand_precision": matched / found if found else 0.0}


def detection_table(metrics: dict) -> str:
    d = metrics["full_frame"]
    return (f"hands: {d['annotated_hands']} annotated, {d['found_hands']} found, "
            f"{d['matched_hands']} matched (IoU >= {d['match_iou']}), {d['missed_hands']} "
            f"missed, {d['false_hands']} false; recall {d['hand_recall']:.4f}, precision "
            f"{d['hand_precision']:.4f}; gestures on the matched hands:")


def _thumbnail(result, box: tuple[int, int, int, int]) -> np.ndarray:
    """The part of ``result``'s kept image under ``box`` (in the full image's pixels)."""
    rgb = result.image
    x0, y0, x1, y1 = (int(round(v * result.image_scale)) for v in box)
    crop = rgb[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)]
    return crop if crop.size else rgb
