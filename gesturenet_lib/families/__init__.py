"""Model families, one folder each: ``resnet_vanilla`` (a ResNet trained on crops) and
``hand_landmarks`` (MediaPipe's frozen palm detector and landmark network, and a trained head).
A folder holds everything its family is: network, head, inputs, ONNX graph, backend, assets.

A family gives (``base.ModelFamily``): its preprocessing, a fresh model, its training inputs, the
metadata stored in its ``.tlt``, its ONNX graph, what its CPU INT8 model quantizes, its own Keras
objects and its inference backend for a ``.tlt``/``.keras`` file. The work of a subtask (train,
export, loading a model) looks the family up here, by the name its spec or model file holds, and
hands it to the generic layers below, which never branch on a family's name. Each member imports
the layers it uses when called, so naming a family costs nothing.
"""

from __future__ import annotations

from gesturenet_lib.families.base import ModelFamily, TrainingInputs
from gesturenet_lib.models.preprocessing import Preprocessing
from gesturenet_lib.specs.experiment import ExperimentSpec

__all__ = ["DEFAULT", "ModelFamily", "TrainingInputs", "family", "keras_objects", "members",
           "spec_preprocessing"]

DEFAULT = "resnet_vanilla"  # what a model file without metadata (a plain .keras) is


def members() -> tuple[ModelFamily, ...]:
    from gesturenet_lib.families import hand_landmarks, resnet_vanilla

    return resnet_vanilla.FAMILY, hand_landmarks.FAMILY


def family(name: str | None) -> ModelFamily:
    return {m.name: m for m in members()}[name or DEFAULT]


def spec_preprocessing(spec: ExperimentSpec | None) -> Preprocessing | None:
    """The preprocessing of the spec's model family (for a model file that carries none)."""
    return None if spec is None else family(spec.model.base_model).preprocessing(spec.model)


def keras_objects() -> dict:
    """Every family's own Keras objects, for loading a stored model of any family."""
    return {name: obj for m in members() for name, obj in m.keras_objects().items()}
