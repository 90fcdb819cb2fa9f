"""Request bodies -> model inputs, with a one-line reason for every refusal (a 400).

Images arrive encoded (JPEG, PNG, BMP): raw in a binary body, a v2 binary tensor or a gRPC
``bytes_contents``; base64 in JSON (a v2 ``BYTES`` string, or a v1 instance written as TF
Serving's ``{"b64": ...}``). They are decoded and preprocessed by the functions
`gesturenet inference` uses, so the server and the CLI give the same answers."""

from __future__ import annotations

import base64
import binascii

import numpy as np

from gesturenet_lib.errors import RecordError
from gesturenet_lib.models.preprocessing import Preprocessing, decode_rgb, to_input

# Leading bytes of the formats OpenCV decodes here; anything else in a bytes field is base64.
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM")
# Keys a v1 instance may hold its image under (TF Serving's and KServe's examples use these).
V1_IMAGE_KEYS = ("image_bytes", "image", "b64", "data")


class BadRequest(ValueError):
    """The request cannot be served as sent; the message is its one-line reason."""


def image_bytes(value: object, where: str) -> bytes:
    """The encoded image in ``value``: raw bytes, base64 (str or bytes) or ``{"b64": ...}``."""
    if isinstance(value, dict):
        found = next((value[k] for k in V1_IMAGE_KEYS if k in value), None)
        if found is None:
            raise BadRequest(f"{where}: expected an image under one of "
                             f"{', '.join(V1_IMAGE_KEYS)}, got keys {sorted(value)[:5]}")
        return image_bytes(found, where)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes) and value.startswith(IMAGE_MAGIC):
        return value
    if not isinstance(value, str | bytes):
        raise BadRequest(f"{where}: expected image bytes or a base64 string, got "
                         f"{type(value).__name__}")
    if not value:
        raise BadRequest(f"{where}: empty image (0 bytes)")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where}: neither an image (JPEG, PNG, BMP) nor base64") from None
    if not data:
        raise BadRequest(f"{where}: empty image (0 bytes)")
    return data


def v1_instances(payload: object, where: str = "instances") -> list:
    """The ``instances`` list of a v1 request body."""
    if not isinstance(payload, dict) or "instances" not in payload:
        raise BadRequest('expected a JSON object with "instances" (KServe v1) or a v2 '
                         "request on /v2/models/<name>/infer")
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise BadRequest(f"{where}: expected a non-empty list")
    return instances


def preprocess_images(blobs: list[bytes], prep: Preprocessing, where: str) -> np.ndarray:
    """Decode and preprocess encoded images into one float32 batch, as inference does."""
    tensors = []
    for i, blob in enumerate(blobs):
        if not blob:
            raise BadRequest(f"{where}[{i}]: empty image (0 bytes)")
        try:
            tensors.append(to_input(decode_rgb(blob), prep))
        except RecordError as err:
            raise BadRequest(f"{where}[{i}]: {err}") from None
    return np.stack(tensors)


def check_batch(array: np.ndarray, dims: tuple[int, ...], max_batch: int, where: str
                ) -> np.ndarray:
    """``array`` as a float32 N x dims batch, N in 1..max_batch, every value finite."""
    if array.ndim != len(dims) + 1 or tuple(array.shape[1:]) != dims:
        expected = "x".join(str(d) for d in ("N", *dims))
        raise BadRequest(f"{where}: shape {list(array.shape)}, expected {expected}")
    if not 1 <= array.shape[0] <= max_batch:
        raise BadRequest(f"{where}: batch of {array.shape[0]}, expected 1 to {max_batch} "
                         "(--max_batch)")
    if not np.isfinite(array).all():
        raise BadRequest(f"{where}: holds NaN or infinite values")
    return np.ascontiguousarray(array, dtype=np.float32)


def nested_floats(value: object, where: str) -> np.ndarray:
    """A v1 tensor given as nested JSON lists -> float32 array (ragged lists refused)."""
    try:
        return np.asarray(value, dtype=np.float32)
    except (ValueError, TypeError):
        raise BadRequest(f"{where}: expected nested lists of numbers of one shape") from None
