"""What a model family is (``ModelFamily``) and what it hands the trainer (``TrainingInputs``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gesturenet_lib.export.calibration import QuantizeSettings
from gesturenet_lib.models.preprocessing import Preprocessing
from gesturenet_lib.specs.experiment import ExperimentSpec, Model


@dataclass(frozen=True)
class TrainingInputs:
    train: Any                      # tf.data batches, repeated
    validation: Any | None          # tf.data batches, or None without a validation set
    train_examples: int             # what one epoch covers
    attachments: dict[str, bytes]   # stored in the .tlt beside the Keras model


class ModelFamily(Protocol):
    name: str
    quantize: QuantizeSettings

    def preprocessing(self, model: Model) -> Preprocessing: ...

    def build(self, spec: ExperimentSpec): ...

    def training_inputs(self, spec: ExperimentSpec, train_set, val_set, prep: Preprocessing,
                        repeat_val: bool) -> TrainingInputs: ...

    def metadata(self, spec: ExperimentSpec) -> dict: ...

    def to_onnx(self, loaded, metadata: dict, opset: int | None) -> bytes: ...

    def keras_objects(self) -> dict: ...

    def backend(self, loaded, classes: dict[str, int], prep: Preprocessing): ...
