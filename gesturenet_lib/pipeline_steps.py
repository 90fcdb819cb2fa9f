"""The subtasks as steps over artifact folders, for the KFP components (which only call these).

A pipeline hands each step folders (its input and output artifacts) instead of the paths a
spec names: each step parses its spec parameter once, locates it at those folders (the same
typed request the CLI builds from a file; no spec is written to re-point paths), then calls
the same library function the CLI calls. Layouts:

- raw data: a ``mount_dir_path`` folder holding ``<org_data_dir>/<dataset>/...``;
- dataset: a ``mount_dir_path`` folder holding the crops (``<post_data_dir>/...``), data.json,
  the fold files and the rejects file;
- model: model.tlt and what train writes beside it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace

from gesturenet_lib import io
from gesturenet_lib.specs import Experiment, parse, reconcile
from gesturenet_lib.specs.dataset_config import DatasetConfig
from gesturenet_lib.specs.dataset_experiment_config import DatasetExperimentConfig
from gesturenet_lib.specs.experiment import ExperimentSpec

DATA_JSON = "data.json"


def import_step(source_dir: str, source_format: str, raw_dir: str, dataset: str,
                org_data_dir: str = "original") -> dict:
    """The raw-data artifact (``raw_dir`` is its mount_dir_path) from ``source_dir``:
    ``hagrid``: HaGRID images anywhere under it and its annotations in ``annotations/``;
    ``tao``: already TAO's layout (a mount_dir_path folder), copied as it is."""
    from gesturenet_lib.errors import UserInputError

    if source_format == "tao":
        shutil.copytree(source_dir, raw_dir, dirs_exist_ok=True)
        return {"images": sum(1 for _ in io.list_files(raw_dir)), "boxes": -1, "users": -1,
                "rejected": 0}
    if source_format != "hagrid":
        raise UserInputError(f"source_format {source_format!r}: must be hagrid or tao")
    from gesturenet_lib.data.hagrid_import import import_hagrid

    result = import_hagrid(source_dir, io.join(source_dir, "annotations"),
                           io.join(raw_dir, org_data_dir, dataset))
    return {"images": result.images, "boxes": result.boxes, "users": result.users,
            "rejected": result.rejected}


def convert_step(raw_dir: str, dataset_spec: dict, experiment_spec: dict, k_folds: int,
                 experiment_name: str, dataset_dir: str, beam_args: list[str] | None = None
                 ) -> dict:
    """dataset_convert with the raw artifact as input and ``dataset_dir`` as output."""
    from gesturenet_lib.data.dataset_convert import ConvertRequest, dataset_convert

    # The output folder is the mount, whatever mount_dir_path either spec gives.
    ds = replace(parse(DatasetConfig, dataset_spec), mount_dir_path=os.path.abspath(dataset_dir))
    exp = replace(parse(DatasetExperimentConfig, experiment_spec), mount_dir_path=None)
    ds, exp = reconcile(ds, exp, "dataset_spec", "experiment_spec")
    io.makedirs(dataset_dir)
    # The output folder is the mount: crops land in it; the originals are linked in for the
    # run only (an artifact must not hold links to another artifact).
    link = io.join(dataset_dir, ds.org_data_dir)
    os.symlink(os.path.abspath(io.join(raw_dir, ds.org_data_dir)), link)
    try:
        result = dataset_convert(ConvertRequest(
            "dataset_spec", "experiment_spec", io.join(dataset_dir, DATA_JSON),
            experiment_name, k_folds, list(beam_args or []), dataset=ds, experiment=exp))
    finally:
        os.unlink(link)
    stats = result.stats
    return {"boxes_read": stats["boxes_read"], "crops": stats["crops"],
            "rejected": stats["rejected"], "filtered": stats["filtered"],
            "sampled_out": stats["sampled_out"],
            **{f"{split}_images": sum(counts.values())
               for split, counts in stats["per_split"].items()},
            "classes": list(exp.classes), "k_folds": k_folds, "summary": result.summary}


def _experiment(train_spec: dict, dataset_dir: str, data_json: str, output_dir: str
                ) -> Experiment:
    """The spec parameter, located at the step's folders (its own paths do not apply)."""
    spec = parse(ExperimentSpec, train_spec)
    spec = replace(spec, evaluator=replace(spec.evaluator, evaluation_exp_name="results"))
    return Experiment(spec, "train_spec", data_json, data_json, os.path.abspath(dataset_dir),
                      os.path.abspath(output_dir), spec.model.weights_init)


def train_step(dataset_dir: str, train_spec: dict, key: str, model_dir: str,
               tensorboard_dir: str, fold: int | None = None) -> dict:
    """train on the dataset artifact (fold ``fold``'s file when given) into ``model_dir``."""
    from gesturenet_lib.training.trainer import train

    name = DATA_JSON if fold is None else f"data_fold{fold}.json"
    data_json = os.path.abspath(io.join(dataset_dir, name))
    with tempfile.TemporaryDirectory(prefix="gesturenet-train-") as work:
        exp = _experiment(train_spec, dataset_dir, data_json, work)
        spec = exp.spec
        result = train(exp, key)
        io.makedirs(model_dir)
        for entry in os.listdir(result.output_dir):
            source = io.join(result.output_dir, entry)
            if entry == "tensorboard":
                shutil.copytree(source, tensorboard_dir, dirs_exist_ok=True)
            elif entry != "checkpoints":
                shutil.copy2(source, io.join(model_dir, entry))
    last = result.history[-1]
    return {"epochs": len(result.history), "loss": last["loss"], "accuracy": last["accuracy"],
            "val_loss": last["val_loss"], "val_accuracy": last["val_accuracy"],
            "classes": sorted(spec.dataset.classes, key=spec.dataset.classes.get),
            "input_dims": list(_input_dims(spec)), "fold": fold}


def _input_dims(spec: ExperimentSpec) -> tuple[int, int, int]:
    """The model's input without the batch, in its declared layout (either family)."""
    from gesturenet_lib.models.preprocessing import Preprocessing

    return Preprocessing.for_model(spec.model).input_dims()


def evaluate_step(dataset_dir: str, model_dir: str, train_spec: dict, key: str | None,
                  report_path: str, data_type: str = "kpi_set", fold: int | None = None
                  ) -> dict:
    """evaluate; returns metrics.json's content and copies report.html to ``report_path``."""
    from gesturenet_lib.evaluation.evaluate import evaluate

    name = DATA_JSON if fold is None else f"data_fold{fold}.json"
    data_json = os.path.abspath(io.join(dataset_dir, name))
    with tempfile.TemporaryDirectory(prefix="gesturenet-eval-") as work:
        result = evaluate(_experiment(train_spec, dataset_dir, data_json, work),
                          io.join(model_dir, "model.tlt"), key, data_type)
        io.write_bytes(report_path, io.read_bytes(io.join(result.output_dir, "report.html")))
    return {**result.metrics, "table": result.table}


def full_frame_evaluate_step(raw_dir: str, dataset_dir: str, model_dir: str, train_spec: dict,
                             dataset_spec: dict, key: str | None, report_path: str,
                             data_type: str = "kpi_set") -> dict:
    """evaluate --full_frame on the raw full images of a set, each found hand cut with the
    dataset spec's crop settings; returns metrics.json's content, report.html copied to
    ``report_path``."""
    from gesturenet_lib.evaluation.full_frame import evaluate_full_frames
    from gesturenet_lib.inference.full_frame import CropRule

    ds = parse(DatasetConfig, dataset_spec)
    rule = CropRule(ds.convert_bbox_square, ds.bbox_enlarge_ratio)
    data_json = os.path.abspath(io.join(dataset_dir, DATA_JSON))
    with tempfile.TemporaryDirectory(prefix="gesturenet-eval-frames-") as work:
        exp = replace(_experiment(train_spec, dataset_dir, data_json, work),
                      image_root_path=os.path.abspath(raw_dir))
        result = evaluate_full_frames(exp, io.join(model_dir, "model.tlt"), key, data_type,
                                      rule)
        io.write_bytes(report_path, io.read_bytes(io.join(result.output_dir, "report.html")))
    return {**result.metrics, "table": result.table}


def inference_step(raw_dir: str, dataset_dir: str, model_dir: str, train_spec: dict,
                   key: str | None, results_dir: str, data_type: str = "kpi_set") -> dict:
    """inference on a set of data.json, cut from the raw full images."""
    from gesturenet_lib.inference.infer import inference

    data_json = os.path.abspath(io.join(dataset_dir, DATA_JSON))
    with tempfile.TemporaryDirectory(prefix="gesturenet-infer-") as work:
        result = inference(_experiment(train_spec, dataset_dir, data_json, work),
                           io.join(model_dir, "model.tlt"), key, results_dir,
                           os.path.abspath(raw_dir), data_json, data_type)
    return {"classified": result.classified, "failed": result.failed}


def export_step(model_dir: str, dataset_dir: str, key: str, export_dir: str,
                data_type: str = "fp32", output_name: str = "model.onnx",
                calibration_images: int = 64) -> dict:
    """export; INT8 calibrates on training crops of the dataset artifact."""
    from gesturenet_lib.data.dataset_file import read_dataset_file
    from gesturenet_lib.data.splits import TRAIN
    from gesturenet_lib.export.exporter import ExportRequest, export

    io.makedirs(export_dir)
    with tempfile.TemporaryDirectory(prefix="gesturenet-export-") as work:
        cal_dir = None
        batch_size = 16
        if data_type == "int8":
            data = read_dataset_file(io.join(dataset_dir, DATA_JSON))
            crops = data.entries(TRAIN)[:calibration_images]
            cal_dir = io.join(work, "calibration")
            for i, entry in enumerate(crops):
                io.write_bytes(io.join(cal_dir, f"{i:05d}.png"),
                               io.read_bytes(io.join(dataset_dir, entry.bbox_path)))
            batch_size = max(1, min(16, len(crops)))
        result = export(ExportRequest(
            model=io.join(model_dir, "model.tlt"), key=key,
            output=io.join(export_dir, output_name), data_type=data_type,
            cal_image_dir=cal_dir, cal_cache_file=io.join(export_dir, "cal.bin"),
            cal_data_file=io.join(work, "calibration.npy"), batch_size=batch_size,
            batches=max(1, calibration_images // batch_size) if cal_dir else 10))
    return {"files": {k: os.path.relpath(v, export_dir) for k, v in result.files.items()},
            "data_type": data_type, "notes": result.notes}


def fold_summary(fold_metrics: list[dict]) -> dict:
    """Mean and spread (population standard deviation) of accuracy and macro-F1 over folds."""
    import statistics

    summary: dict = {"folds": len(fold_metrics)}
    for key, pick in (("accuracy", lambda m: m["accuracy"]),
                      ("macro_f1", lambda m: m["macro_avg"]["f1"])):
        values = [pick(m) for m in fold_metrics]
        summary[f"{key}_mean"] = statistics.fmean(values) if values else 0.0
        summary[f"{key}_std"] = statistics.pstdev(values) if len(values) > 1 else 0.0
    return summary
