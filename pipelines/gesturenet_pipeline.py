"""The end-to-end GestureNet pipeline: import -> dataset_convert -> train -> evaluate -> export,
plus inference on the kpi set, optional evaluation on the kpi set's whole images
(``full_frame_eval``: hands found, then classified), and optional k-fold cross-validation (one
model per fold, in parallel, then the mean and spread of the fold metrics).

The source data enter through ``dsl.importer`` (``source_uri``: a HaGRID folder or a folder
already in TAO's layout, see ``source_format``). The encryption key is never a parameter: in
a cluster it comes from the Kubernetes Secret ``GESTURENET_KEY_SECRET`` (key ``key``) as the
environment variable GESTURENET_KEY; KFP's local runner ignores that and hands the process
environment to each task, so locally it comes from the environment.
"""


import json
import os
from pathlib import Path
from typing import List

from kfp import dsl, kubernetes

from components.dataset_convert import dataset_convert
from components.dataset_import import dataset_import
from components.evaluate import evaluate
from components.evaluate_full_frame import evaluate_full_frame
from components.export import export
from components.fold_summary import fold_summary
from components.inference import inference
from components.train import train
from gesturenet_lib import keys

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"
# Overridable at compile time (a cluster without GPUs: GESTURENET_GPU_LIMIT=0).
GPU_TYPE = os.environ.get("GESTURENET_GPU_TYPE", "nvidia.com/gpu")
GPU_LIMIT = int(os.environ.get("GESTURENET_GPU_LIMIT", "1"))
KEY_SECRET = os.environ.get("GESTURENET_KEY_SECRET", keys.KEY_SECRET)


def _spec(name: str) -> dict:
    return json.loads((SPECS / name).read_text())


def _resources(task: dsl.PipelineTask, cpu: str, memory: str, gpu: bool = False,
               key: bool = False) -> dsl.PipelineTask:
    task.set_cpu_request(cpu).set_memory_request(memory)
    if gpu and GPU_LIMIT > 0:
        task.set_accelerator_type(GPU_TYPE).set_accelerator_limit(GPU_LIMIT)
    if key:
        kubernetes.use_secret_as_env(task, secret_name=KEY_SECRET,
                                     secret_key_to_env={"key": "GESTURENET_KEY"})
    return task


@dsl.pipeline(name="gesturenet", description="TAO GestureNet's subtasks on Kubeflow: import, "
              "dataset_convert (Beam), train, evaluate, inference, export.")
def gesturenet_pipeline(
    source_uri: str,
    source_format: str = "hagrid",
    dataset_name: str = "hagrid",
    dataset_spec: dict = _spec("dataset_config.json"),
    experiment_spec: dict = _spec("dataset_experiment_config.json"),
    train_spec: dict = _spec("pipeline_train_spec.json"),
    experiment_name: str = "v1",
    k_folds: int = 0,
    cross_validate: bool = False,
    fold_indices: List[int] = [0, 1, 2],
    export_data_type: str = "fp32",
    export_name: str = "model.onnx",
    full_frame_eval: bool = False,
):
    source = dsl.importer(artifact_uri=source_uri, artifact_class=dsl.Dataset,
                          reimport=False).set_display_name("source data")
    raw = _resources(dataset_import(source=source.output, source_format=source_format,
                                    dataset_name=dataset_name), "1", "2G")
    converted = _resources(dataset_convert(
        raw_data=raw.outputs["raw_data"], dataset_spec=dataset_spec,
        experiment_spec=experiment_spec, k_folds=k_folds, experiment_name=experiment_name),
        "2", "4G")
    trained = _resources(train(dataset=converted.outputs["dataset"], train_spec=train_spec,
                               fold=-1), "4", "16G", gpu=True, key=True)
    _resources(evaluate(dataset=converted.outputs["dataset"], model=trained.outputs["model"],
                        train_spec=train_spec, data_type="kpi_set", fold=-1),
               "2", "8G", key=True)
    with dsl.If(full_frame_eval == True, name="full-frame evaluation"):  # noqa: E712
        _resources(evaluate_full_frame(
            raw_data=raw.outputs["raw_data"], dataset=converted.outputs["dataset"],
            model=trained.outputs["model"], train_spec=train_spec, dataset_spec=dataset_spec,
            data_type="kpi_set"), "2", "8G", key=True)
    _resources(inference(raw_data=raw.outputs["raw_data"], dataset=converted.outputs["dataset"],
                         model=trained.outputs["model"], train_spec=train_spec,
                         data_type="kpi_set"), "2", "8G", key=True)
    _resources(export(model=trained.outputs["model"], dataset=converted.outputs["dataset"],
                      data_type=export_data_type, output_name=export_name),
               "2", "8G", gpu=True, key=True)
    with dsl.If(cross_validate == True, name="k-fold cross-validation"):  # noqa: E712
        with dsl.ParallelFor(fold_indices, name="folds") as fold:
            fold_model = _resources(train(dataset=converted.outputs["dataset"],
                                          train_spec=train_spec, fold=fold),
                                    "4", "16G", gpu=True, key=True)
            fold_eval = _resources(evaluate(dataset=converted.outputs["dataset"],
                                            model=fold_model.outputs["model"],
                                            train_spec=train_spec, data_type="validation_set",
                                            fold=fold), "2", "8G", key=True)
        _resources(fold_summary(fold_metrics=dsl.Collected(fold_eval.outputs["Output"])),
                   "1", "1G")
