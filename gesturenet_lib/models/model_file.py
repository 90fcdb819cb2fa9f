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
from gesturenet_lib.specs.experiment import ExperimentSpec

FORMAT_VERSION = 1
ONNX_METADATA_KEY = "gesturenet"  # our metadata in an ONNX model's metadata_props


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


def load_keras_bytes(data: bytes, compile: bool = False, custom_objects: dict | None = None):
    """A Keras model from its bytes; ``custom_objects``: the layers of a model family
    (``families.keras_objects()``)."""
    import keras

    import gesturenet_lib.training.schedule  # noqa: F401  (registers the LR schedule)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as handle:
            handle.write(data)
        return keras.models.load_model(path, compile=compile, custom_objects=custom_objects)


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


def load_model_file(path: str, key: str | None, custom_objects: dict | None = None
                    ) -> LoadedModel:
    """Read a ``.tlt`` (with ``key``) or a ``.keras`` file; errors name the file."""
    check_model_path(path)
    blob = io.read_bytes(path)
    if path.endswith(".keras"):
        return LoadedModel(load_keras_bytes(blob, custom_objects=custom_objects), None, None, {})
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
        model = load_keras_bytes(archive.read("model.keras"), custom_objects=custom_objects)
        attachments = {name: archive.read(name) for name in metadata.get("attachments", [])}
    return LoadedModel(model, metadata.get("classes"),
                       Preprocessing.from_dict(metadata["preprocessing"]), metadata, attachments)


# ---------------------------------------------------------------- every format's reader

def read_metadata(onnx_bytes: bytes) -> dict:
    """Our metadata from an ONNX model ({} when it has none)."""
    import onnx

    proto = onnx.load_from_string(onnx_bytes)
    for entry in proto.metadata_props:
        if entry.key == ONNX_METADATA_KEY:
            return json.loads(entry.value)
    return {}


def check_container(path: str, blob: bytes) -> None:
    """Refuse, clearly, files that are not our encrypted format (TAO's above all)."""
    if not blob.startswith(crypto.MAGIC):
        if crypto.looks_like_tao(blob):
            raise UserInputError(
                f"{path}: this looks like a model encrypted by NVIDIA TAO, whose cipher is "
                "closed; our .tlt/.etlt format differs. Export it from TAO to ONNX (TAO 5: "
                "`tao model gesturenet export` writes .onnx) and pass the .onnx file")
        raise UserInputError(f"{path}: not a GestureNet encrypted model (wrong file or "
                             "truncated)")


def decrypt_container(path: str, blob: bytes, key: str | None) -> tuple[bytes, str]:
    """(model bytes, kind) of our encrypted file, or a UserInputError naming the problem."""
    check_container(path, blob)
    if not key:
        raise UserInputError(f"{path}: a key is needed (-k/--key or GESTURENET_KEY)")
    try:
        return crypto.decrypt(blob, key)
    except crypto.DecryptionError as err:
        raise UserInputError(f"{path}: {err}") from None


def metadata_or_spec(meta: dict, spec: ExperimentSpec | None,
                     spec_preprocessing: Preprocessing | None, path: str
                     ) -> tuple[dict[str, int], Preprocessing]:
    """Classes and preprocessing from the model's metadata, else from the spec (its family's
    preprocessing, ``families.spec_preprocessing``)."""
    if meta.get("classes") and meta.get("preprocessing"):
        return meta["classes"], Preprocessing.from_dict(meta["preprocessing"])
    if spec is None:
        raise UserInputError(f"{path}: the model carries no class map; give the experiment "
                             "spec (-e)")
    return dict(spec.dataset.classes), spec_preprocessing


def read_model_file(path: str, key: str | None, spec: ExperimentSpec | None,
                    spec_preprocessing: Preprocessing | None = None,
                    custom_objects: dict | None = None):
    """(LoadedModel, classes, preprocessing) of a .tlt (with the key) or .keras file."""
    if path.endswith(".tlt"):
        check_container(path, io.read_bytes(path))  # the clear errors for TAO files too
    loaded = load_model_file(path, key, custom_objects)
    meta = {"classes": loaded.classes,
            "preprocessing": loaded.preprocessing.to_dict() if loaded.preprocessing else None}
    return (loaded, *metadata_or_spec(meta, spec, spec_preprocessing, path))


def read_onnx(path: str, key: str | None) -> tuple[bytes, dict]:
    """(ONNX bytes, our metadata) of a .onnx or .etlt (with the key) file; TensorFlow-free."""
    data = io.read_bytes(path)
    if path.endswith(".etlt"):
        data, kind = decrypt_container(path, data, key)
        if kind != "onnx":
            raise UserInputError(f"{path}: holds a {kind} model, not ONNX")
    try:
        return data, read_metadata(data)
    except Exception:  # onnx raises DecodeError for truncated files
        raise UserInputError(f"{path}: not a readable ONNX model (truncated or "
                             "corrupted?)") from None
