"""train: dataset -> model.tlt (+ metrics, TensorBoard logs). The key comes from the
environment (a Kubernetes Secret in a cluster), never from a parameter."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def train(dataset: Input[Dataset], train_spec: dict, fold: int, model: Output[Model],
          metrics: Output[Metrics], tensorboard: Output[Artifact]):
    from gesturenet_lib.keys import resolve_key
    from gesturenet_lib.tasks.train import TrainRequest, run

    request = TrainRequest.into_artifacts(dataset.path, train_spec,
                                          resolve_key(None, "GESTURENET_KEY"), model.path,
                                          tensorboard.path, None if fold < 0 else fold)
    result = run(request)
    for name, value in result.last_epoch.items():
        metrics.log_metric(name, value)
    model.metadata.update({"classes": result.classes, "input_dims": result.input_dims,
                           "epochs": len(result.history), "fold": fold, "format": "tlt"})
