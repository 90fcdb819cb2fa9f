"""Inference-side preprocessing with OpenCV (no TensorFlow needed, so ONNX and TensorRT
deployments can run it): read, optionally crop, then the model's stored ``Preprocessing``."""

from __future__ import annotations

import numpy as np

from gesturenet_lib import io
from gesturenet_lib.data.annotations import RecordError
from gesturenet_lib.data.images import decode
from gesturenet_lib.models.preprocessing import Preprocessing


def load_rgb(path: str) -> np.ndarray:
    """H x W x 3 RGB uint8, or RecordError naming the problem."""
    try:
        data = io.read_bytes(path)
    except FileNotFoundError:
        raise RecordError("missing image") from None
    return decode_rgb(data)


def decode_rgb(data: bytes) -> np.ndarray:
    """H x W x 3 RGB uint8 from encoded bytes (a file or a request body), or RecordError."""
    import cv2

    return cv2.cvtColor(decode(data), cv2.COLOR_BGR2RGB)


def crop_corners(image: np.ndarray, corners: list[list[int]]) -> np.ndarray:
    """Cut the box given as TAO's 4 corners ([0] top-left, [3] bottom-right)."""
    (x0, y0), (x1, y1) = corners[0], corners[3]
    h, w = image.shape[:2]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise RecordError(f"bbox_coordinates {corners} outside the {w}x{h} image")
    return image[y0:y1, x0:x1]


def to_input(image: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """RGB uint8 crop -> float32 model input (declared layout, no batch dimension)."""
    import cv2

    resized = cv2.resize(image, (prep.image_width, prep.image_height),
                         interpolation=cv2.INTER_LINEAR).astype(np.float32)
    if prep.channels == 1:
        resized = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)[:, :, None]
    tensor = (resized - prep.offset) * prep.scale
    if prep.data_format == "channels_first":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor, dtype=np.float32)
