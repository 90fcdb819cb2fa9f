"""`.tlt` model files: a Keras model plus our metadata (classes, preprocessing, the spec it
was trained with), zipped and encrypted with the user's key (see ``crypto``).

Plain ``.keras`` files are read too (``weights_init`` may name one); they carry no metadata.
A model may carry attachments: the hand_landmarks family stores its frozen landmark extractor
(ONNX) as ``extractor.onnx`` beside the trained head.
"""

from __future__ import annotations

import io as _bytes_io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

from gesturenet_lib import crypto, io
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.models.preprocessing import Preprocessing

FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    model: object                     # keras.Model
    classes: dict[str, int] | None
    preprocessing: Preprocessing | None
    metadata: dict
    attachments: dict[str, bytes] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.metadata.get("base_model", "resnet_vanilla")


def keras_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as handle:
            return handle.read()


def load_keras_bytes(data: bytes, compile: bool = False):
    import keras

    import gesturenet_lib.models.landmark_head  # noqa: F401  (registers the head's layers)
    import gesturenet_lib.training.schedule  # noqa: F401  (registers the LR schedule)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as handle:
            handle.write(data)
        return keras.models.load_model(path, compile=compile)


def save_tlt(path: str, model, key: str, classes: dict[str, int], preprocessing: Preprocessing,
             extra: dict | None = None, attachments: dict[str, bytes] | None = None) -> None:
    metadata = {"format_version": FORMAT_VERSION, "classes": classes,
                "preprocessing": preprocessing.to_dict(), **(extra or {}),
                "attachments": sorted(attachments or {})}
    buffer = _bytes_io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("model.keras", keras_bytes(model))
        for name, data in sorted((attachments or {}).items()):
            archive.writestr(name, data)
        archive.writestr("gesturenet.json", json.dumps(metadata, indent=1, sort_keys=True))
    io.write_bytes(path, crypto.encrypt(buffer.getvalue(), key, "keras"))


def check_model_path(path: str, flag: str = "-m") -> None:
    """A one-line UserInputError unless ``path`` is a model file (missing, or a folder named
    like one, e.g. ``dir.onnx``)."""
    if not io.exists(path):
        raise UserInputError(f"{flag} {path}: model file not found")
    if io.is_dir(path):
        raise UserInputError(f"{flag} {path}: is a folder, not a model file")


def load_model_file(path: str, key: str | None) -> LoadedModel:
    """Read a ``.tlt`` (with ``key``) or a ``.keras`` file; errors name the file."""
    check_model_path(path)
    blob = io.read_bytes(path)
    if path.endswith(".keras"):
        return LoadedModel(load_keras_bytes(blob), None, None, {})
    if not key:
        raise UserInputError(f"{path}: a key is needed (-k/--key or GESTURENET_KEY)")
    try:
        data, kind = crypto.decrypt(blob, key)
    except crypto.DecryptionError as err:
        raise UserInputError(f"{path}: {err}") from None
    if kind != "keras":
        raise UserInputError(f"{path}: holds a {kind} model, not a Keras model")
    with zipfile.ZipFile(_bytes_io.BytesIO(data)) as archive:
        metadata = json.loads(archive.read("gesturenet.json"))
        model = load_keras_bytes(archive.read("model.keras"))
        attachments = {name: archive.read(name) for name in metadata.get("attachments", [])}
    return LoadedModel(model, metadata.get("classes"),
                       Preprocessing.from_dict(metadata["preprocessing"]), metadata, attachments)
