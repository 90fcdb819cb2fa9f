"""train: dataset -> model.tlt (+ metrics, TensorBoard logs). The key comes from the
environment (a Kubernetes Secret in a cluster), never from a parameter."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def train(dataset: Input[Dataset], train_spec: dict, fold: int, model: Output[Model],
          metrics: Output[Metrics], tensorboard: Output[Artifact]):
    from gesturenet_lib.keys import resolve_key
    from gesturenet_lib.pipeline_steps import train_step

    result = train_step(dataset.path, train_spec, resolve_key(None, "GESTURENET_KEY"),
                        model.path, tensorboard.path, None if fold < 0 else fold)
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if result[name] is not None:
            metrics.log_metric(name, result[name])
    model.metadata.update({"classes": result["classes"], "input_dims": result["input_dims"],
                           "epochs": result["epochs"], "fold": fold, "format": "tlt"})
