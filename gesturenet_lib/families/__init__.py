"""Model families: the one place that knows how a family differs. The generic code (train,
export, calibration, the inference backends) asks ``family(name)`` and never branches on a
family's name.

A family gives: its preprocessing, a fresh model, its training inputs, the metadata stored
in its ``.tlt``, its ONNX graph, what its CPU INT8 model quantizes, and its inference backend
for a ``.tlt``/``.keras`` file. Members: ``resnet_vanilla`` (a ResNet trained on crops) and
``hand_landmarks`` (MediaPipe's frozen landmark network and a trained head). Each member
imports the layers it uses when called, so naming a family costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gesturenet_lib.models.preprocessing import Preprocessing
from gesturenet_lib.specs.experiment import ExperimentSpec, Model

DEFAULT = "resnet_vanilla"  # what a model file without metadata (a plain .keras) is


@dataclass(frozen=True)
class TrainingInputs:
    train: Any                      # tf.data batches, repeated
    validation: Any | None          # tf.data batches, or None without a validation set
    train_examples: int             # what one epoch covers
    attachments: dict[str, bytes]   # stored in the .tlt beside the Keras model


@dataclass(frozen=True)
class QuantizeSettings:
    op_types: list[str] | None      # ONNX ops to quantize (None: every supported op)
    reduce_range: bool              # 7-bit weights (safer on x86 without VNNI)


class ModelFamily(Protocol):
    name: str
    quantize: QuantizeSettings

    def preprocessing(self, model: Model) -> Preprocessing: ...

    def build(self, spec: ExperimentSpec): ...

    def training_inputs(self, spec: ExperimentSpec, train_set, val_set, prep: Preprocessing,
                        repeat_val: bool) -> TrainingInputs: ...

    def metadata(self, spec: ExperimentSpec) -> dict: ...

    def to_onnx(self, loaded, metadata: dict, opset: int | None) -> bytes: ...

    def backend(self, loaded, classes: dict[str, int], prep: Preprocessing): ...


def family(name: str | None) -> ModelFamily:
    from gesturenet_lib.families import hand_landmarks, resnet_vanilla

    members = {m.name: m for m in (resnet_vanilla.FAMILY, hand_landmarks.FAMILY)}
    return members[name or DEFAULT]
