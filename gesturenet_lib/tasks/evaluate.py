"""evaluate: a model on a set of data.json -> metrics.json, confusion_matrix.png, report.html
and a printed table; with ``full_frame`` (a crop rule), every hand found in the set's whole
images against the annotated boxes (hand recall and precision, gestures on the matched hands).

The scoring is ``evaluation``; this task adds the locations: gs:// staged (data.json, the
set's crops or whole images, the model), and a pipeline's artifacts."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from gesturenet_lib.data.dataset_file import dataset_json
from gesturenet_lib.evaluation.evaluate import EvaluateResult, evaluate
from gesturenet_lib.evaluation.full_frame import evaluate_full_frames
from gesturenet_lib.inference.full_frame import CropRule
from gesturenet_lib.specs import DatasetConfig, Experiment, located, parse
from gesturenet_lib.tasks.experiment_copies import experiment_paths, local_experiment
from gesturenet_lib.tasks.local_copies import LocalCopies, run_staged
from gesturenet_lib.training.trainer import model_path

__all__ = ["EvaluateRequest", "EvaluateResult", "run"]

EVALUATION_FOLDER = "evaluation"  # a pipeline step's metrics.json and PNG, beside its artifacts


@dataclass(frozen=True)
class EvaluateRequest:
    experiment: Experiment            # data.json (evaluator.data_path), images, output folder
    model: str                        # .tlt, .keras, .onnx, .etlt or .engine
    key: str | None
    data_type: str = "kpi_set"
    full_frame: CropRule | None = None  # evaluate on whole images, hands cut by this rule
    report_file: str | None = None    # default: report.html in the output folder

    @classmethod
    def on_artifacts(cls, dataset_dir: str, model_dir: str, train_spec: dict,
                     key: str | None, report_file: str, data_type: str = "kpi_set",
                     fold: int | None = None, raw_dir: str | None = None,
                     dataset_spec: dict | None = None) -> EvaluateRequest:
        """A pipeline step's request: the dataset artifact's data.json (fold ``fold``'s), the
        model artifact's model.tlt, report.html at ``report_file``; with ``raw_dir`` the whole
        images of the raw-data artifact, each found hand cut by the dataset spec's rule."""
        report_file = os.path.abspath(report_file)
        exp = located(train_spec, dataset_json(dataset_dir, fold),
                      os.path.abspath(raw_dir or dataset_dir), os.path.dirname(report_file))
        spec = exp.spec
        exp = replace(exp, spec=replace(spec, evaluator=replace(
            spec.evaluator, evaluation_exp_name=EVALUATION_FOLDER)))
        rule = None
        if raw_dir is not None:
            ds = parse(DatasetConfig, dataset_spec or {})
            rule = CropRule(ds.convert_bbox_square, ds.bbox_enlarge_ratio)
        return cls(exp, model_path(model_dir), key, data_type, rule, report_file)


def run(request: EvaluateRequest) -> EvaluateResult:
    req = request

    def on_local(copies: LocalCopies) -> EvaluateRequest:
        field = "bbox_path" if req.full_frame is None else "full_image_path"
        return replace(req, experiment=local_experiment(copies, req.experiment,
                                                        (req.data_type,), field=field),
                       model=copies.pull(req.model), report_file=copies.output(req.report_file))

    return run_staged(req, (*experiment_paths(req.experiment), req.model, req.report_file),
                      on_local, _evaluate)


def _evaluate(req: EvaluateRequest) -> EvaluateResult:
    if req.full_frame is None:
        return evaluate(req.experiment, req.model, req.key, req.data_type, req.report_file)
    return evaluate_full_frames(req.experiment, req.model, req.key, req.data_type,
                                req.full_frame, req.report_file)
