"""`evaluate`: score a model on one set of a data.json and write metrics.json,
confusion_matrix.png and report.html to <output_experiments_fld>/<evaluation_exp_name>/."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np

from gesturenet_lib import io
from gesturenet_lib.data.dataset_file import read_dataset_file
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.evaluation.metrics import classification_metrics, metrics_table
from gesturenet_lib.evaluation.report import Misclassified, confusion_png, report_html
from gesturenet_lib.inference.loading import load_checked_backend
from gesturenet_lib.inference.run import Source, log_progress, predict_sources
from gesturenet_lib.models.model_file import check_model_path
from gesturenet_lib.specs import Experiment

log = logging.getLogger(__name__)
GALLERY_LIMIT = 120


@dataclass(frozen=True)
class EvaluateResult:
    output_dir: str
    metrics: dict
    table: str
    metrics_file: str
    confusion_png: str
    report_file: str


def counted_index(p, classes: dict[str, int]) -> int:
    """The class a prediction counts as: where a hand_landmarks model found no hand, "random"
    when the classes have it, else -1 (always wrong)."""
    if p.hand_found is False:
        return classes.get("random", -1)
    return p.index


def counted_name(p, classes: dict[str, int], names: list[str]) -> str:
    index = counted_index(p, classes)
    return "no hand found" if index < 0 else names[index]


def start_evaluation(exp: Experiment, model_path: str) -> tuple[dict[str, int], list[str]]:
    """Check the model path and the output folder before any work; (the spec's classes,
    their names in index order)."""
    check_model_path(model_path)
    io.check_output(exp.eval_dir, f"{exp.source}: output_experiments_fld/evaluator."
                                  "evaluation_exp_name", folder=True)
    classes = dict(exp.spec.dataset.classes)
    return classes, sorted(classes, key=classes.get)


def write_outputs(out_dir: str, metrics: dict, names: list[str], wrong: list[Misclassified],
                  title: str, table: str, missed: list[Misclassified] | None = None,
                  report_file: str | None = None) -> EvaluateResult:
    """metrics.json, confusion_matrix.png and report.html (``report_file`` when given)."""
    png = confusion_png(metrics["confusion_matrix"]["matrix"], names)
    result = EvaluateResult(out_dir, metrics, table, io.join(out_dir, "metrics.json"),
                            io.join(out_dir, "confusion_matrix.png"),
                            report_file or io.join(out_dir, "report.html"))
    io.write_text(result.metrics_file, json.dumps(metrics, indent=1) + "\n")
    io.write_bytes(result.confusion_png, png)
    io.write_text(result.report_file, report_html(metrics, png, wrong, title, missed))
    return result


def evaluate(exp: Experiment, model_path: str, key: str | None,
             data_type: str = "kpi_set", report_file: str | None = None) -> EvaluateResult:
    spec = exp.spec
    data_json, image_root = exp.eval_json, exp.eval_image_root
    out_dir = exp.eval_dir
    classes, names = start_evaluation(exp, model_path)
    entries = read_dataset_file(data_json).entries(data_type, classes)
    backend = load_checked_backend(model_path, key, spec)
    sources = [Source(io.join(image_root, e.bbox_path), e.bbox_path) for e in entries]
    labels = [classes[e.label] for e in entries]
    log.info("evaluate: %d images of %s with %s (%s)", len(sources), data_type, model_path,
             backend.name)
    predictions = predict_sources(backend, sources, spec.batch_size, keep_crops=True,
                                  progress=log_progress("evaluate"))
    done = [(p, y) for p, y in zip(predictions, labels, strict=True) if p.error is None]
    truth = np.array([y for _, y in done], dtype=int)
    pred = np.array([counted_index(p, classes) for p, _ in done], dtype=int)
    metrics = classification_metrics(truth, pred, names)
    if any(p.hand_found is not None for p, _ in done):
        metrics["no_hand_found"] = sum(1 for p, _ in done if p.hand_found is False)
        metrics["no_hand_found_counted_as"] = "random" if "random" in classes else "wrong"
    metrics.update(images_evaluated=len(done), images_skipped=len(predictions) - len(done),
                   skipped=[{"path": p.source.shown_as, "error": p.error}
                            for p in predictions if p.error],
                   data_type=data_type, model=model_path, backend=backend.name)
    wrong = [Misclassified(p.source.shown_as, names[y], counted_name(p, classes, names),
                           p.confidence, p.crop)
             for (p, y), k in zip(done, pred, strict=True) if k != y][:GALLERY_LIMIT]
    result = write_outputs(out_dir, metrics, names, wrong,
                           f"GestureNet evaluation: {data_type} of {data_json}",
                           metrics_table(metrics), report_file=report_file)
    if not done:
        raise UserInputError(f"{data_json}: none of the {len(sources)} images of {data_type} "
                             "could be read")
    return result
