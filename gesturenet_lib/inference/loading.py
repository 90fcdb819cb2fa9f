"""A model file of any format (``.tlt``, ``.keras``, ``.onnx``, ``.etlt``, ``.engine``) as an
inference backend: a Keras file through its model family, the others as they are."""

from __future__ import annotations

import json

from gesturenet_lib import io
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.families import family, keras_objects, spec_preprocessing
from gesturenet_lib.inference.backends import FORMATS, Backend, OnnxBackend, TensorRTBackend
from gesturenet_lib.models.model_file import (
    check_model_path,
    metadata_or_spec,
    read_model_file,
    read_onnx,
)
from gesturenet_lib.specs.experiment import ExperimentSpec


def check_classes(model_classes: dict[str, int], spec_classes: dict[str, int], model: str):
    if model_classes != spec_classes:
        raise UserInputError(f"{model}: the model's classes {json.dumps(model_classes)} differ "
                             f"from the spec's dataset.classes {json.dumps(spec_classes)}")


def load_backend(path: str, key: str | None, spec: ExperimentSpec | None) -> Backend:
    """The backend for ``path``; checks its class count against ``spec``."""
    suffix = next((s for s in FORMATS if path.endswith(s)), None)
    if suffix is None:
        raise UserInputError(f"-m {path}: unknown model format; expected one of "
                             + ", ".join(FORMATS))
    check_model_path(path)
    if suffix in (".tlt", ".keras"):
        loaded, classes, prep = read_model_file(path, key, spec, spec_preprocessing(spec),
                                                keras_objects())
        backend: Backend = family(loaded.family).backend(loaded, classes, prep)
    elif suffix in (".onnx", ".etlt"):
        data, meta = read_onnx(path, key)
        backend = OnnxBackend(data, *metadata_or_spec(meta, spec, spec_preprocessing(spec), path),
                              path)
    else:
        meta_path = path + ".json"
        meta = json.loads(io.read_text(meta_path)) if io.exists(meta_path) else {}
        classes, prep = metadata_or_spec(meta, spec, spec_preprocessing(spec), path)
        backend = TensorRTBackend(io.read_bytes(path), classes, prep, path)
    if spec is not None and backend.num_outputs != spec.dataset.num_classes:
        raise UserInputError(f"{path}: the model has {backend.num_outputs} classes, the spec's "
                             f"dataset.num_classes is {spec.dataset.num_classes}")
    return backend


def load_checked_backend(path: str, key: str | None, spec: ExperimentSpec) -> Backend:
    """``load_backend``, then the model's class names must be the spec's."""
    backend = load_backend(path, key, spec)
    check_classes(backend.classes, dict(spec.dataset.classes), path)
    return backend
