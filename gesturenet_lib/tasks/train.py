"""train: data.json's train and validation sets -> model.tlt (encrypted with the key), the spec,
the class map, metrics.csv, TensorBoard logs and checkpoints; a rerun resumes.

The training itself is ``training.trainer``; this task adds the locations: gs:// staged (the
checkpoints already on gs:// pulled first, so a run resumes from them), and a pipeline's
artifacts (the dataset folder, one fold's file, the model and TensorBoard folders)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from gesturenet_lib.data.dataset_file import dataset_json
from gesturenet_lib.specs import Experiment, located
from gesturenet_lib.tasks.experiment_copies import experiment_paths, local_experiment
from gesturenet_lib.tasks.local_copies import LocalCopies, run_staged
from gesturenet_lib.training.trainer import TrainResult, train

__all__ = ["TrainRequest", "TrainResult", "run"]


@dataclass(frozen=True)
class TrainRequest:
    experiment: Experiment            # the spec with its paths: data.json, images, output folder
    key: str
    tensorboard_dir: str | None = None  # default: tensorboard/ in the output folder

    @classmethod
    def into_artifacts(cls, dataset_dir: str, train_spec: dict, key: str, model_dir: str,
                       tensorboard_dir: str, fold: int | None = None) -> TrainRequest:
        """A pipeline step's request: the dataset artifact's data.json (fold ``fold``'s file
        when given), the model written into ``model_dir``."""
        model_dir = os.path.abspath(model_dir)
        exp = located(train_spec, dataset_json(dataset_dir, fold),
                      os.path.abspath(dataset_dir), os.path.dirname(model_dir),
                      save_weights_path=os.path.basename(model_dir))
        return cls(exp, key, os.path.abspath(tensorboard_dir))


def run(request: TrainRequest) -> TrainResult:
    req = request

    def on_local(copies: LocalCopies) -> TrainRequest:
        exp = local_experiment(copies, req.experiment, ("train_set", "validation_set"),
                               pull_outputs=True)
        return replace(req, experiment=exp, tensorboard_dir=copies.output(req.tensorboard_dir))

    return run_staged(req, (*experiment_paths(req.experiment), req.tensorboard_dir), on_local,
                      lambda r: train(r.experiment, r.key, r.tensorboard_dir))
