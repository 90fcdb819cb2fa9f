"""Preprocessing, defined once and stored with the model: every subtask (train, evaluate,
inference, export, serve, the DeepStream config) reads it from the model file instead of
guessing; the functions at the end apply it with OpenCV (no TensorFlow, so ONNX and TensorRT
deployments run them too).

    input  = crop fitted to (height, width) with bilinear interpolation, RGB (or gray):
             "stretch" resizes it to that size whatever its shape (TAO's classifiers);
             "letterbox" scales it to fit, aspect kept, centred on a black border
             (DeepStream: maintain-aspect-ratio=1, symmetric-padding=1)
    tensor = (input - offset) * scale       # DeepStream: net-scale-factor, offsets

A model stored before ``fit`` existed reads as "stretch", which is what it was trained with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from gesturenet_lib import io
from gesturenet_lib.data.images import decode, displayed_size
from gesturenet_lib.errors import RecordError

FITS = ("stretch", "letterbox")


@dataclass(frozen=True)
class Preprocessing:
    image_height: int
    image_width: int
    channels: int               # 3: RGB, 1: gray
    data_format: str            # layout at the model's input
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    resize: str = "bilinear"
    fit: str = "stretch"        # FITS: how a crop of another shape meets the input

    def input_dims(self) -> tuple[int, int, int]:
        """The model's input without the batch dimension, in its declared layout."""
        if self.data_format == "channels_first":
            return self.channels, self.image_height, self.image_width
        return self.image_height, self.image_width, self.channels

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls(**data)

    def letterbox_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) a crop of this size is scaled to under letterbox: the larger side
        fills the input, rounded to the nearest pixel, at least 1 (integer arithmetic, so the
        OpenCV and TensorFlow paths agree to the pixel)."""
        H, W = self.image_height, self.image_width
        if width * H >= height * W:   # wider than the input: the width fills it
            return max(1, (2 * height * W + width) // (2 * width)), W
        return H, max(1, (2 * width * H + height) // (2 * height))

    def letterbox_place(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a crop of this size inside the input under
        letterbox: scaled by ``letterbox_size``, centred."""
        nh, nw = self.letterbox_size(height, width)
        return (self.image_height - nh) // 2, (self.image_width - nw) // 2, nh, nw

    def tf_resize(self, image):
        """uint8/float HxWxC (RGB) -> float32 HxWxC in [0, 255] at the model's size."""
        import tensorflow as tf

        H, W = self.image_height, self.image_width
        image = tf.cast(image, tf.float32)
        if self.fit == "letterbox":
            shape = tf.shape(image)
            h, w = shape[0], shape[1]
            wide = w * H >= h * W
            nh = tf.where(wide, tf.maximum(1, (2 * h * W + w) // (2 * w)), H)
            nw = tf.where(wide, W, tf.maximum(1, (2 * w * H + h) // (2 * h)))
            image = tf.image.resize(image, (nh, nw), method=self.resize, antialias=False)
            image = tf.image.pad_to_bounding_box(image, (H - nh) // 2, (W - nw) // 2, H, W)
        else:
            image = tf.image.resize(image, (H, W), method=self.resize, antialias=False)
        if self.channels == 1 and image.shape[-1] != 1:
            image = tf.image.rgb_to_grayscale(image)
        return image

    def tf_normalize(self, image):
        """float32 HxWxC in [0, 255] -> the model's input tensor (declared layout)."""
        import tensorflow as tf

        image = (image - self.offset) * self.scale
        if self.data_format == "channels_first":
            image = tf.transpose(image, (2, 0, 1))
        return image


def load_rgb(path: str) -> np.ndarray:
    """H x W x 3 RGB uint8, or RecordError naming the problem."""
    try:
        data = io.read_bytes(path)
    except FileNotFoundError:
        raise RecordError("missing image") from None
    return decode_rgb(data)


def load_frame(path: str, long_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A whole image for finding hands in: (RGB uint8, reduced as ``decode`` does for
    ``long_side``; its full (width, height) as displayed), or RecordError."""
    try:
        data = io.read_bytes(path)
    except FileNotFoundError:
        raise RecordError("missing image") from None
    return decode(data, rgb=True, long_side=long_side), displayed_size(data)


def decode_rgb(data: bytes) -> np.ndarray:
    """H x W x 3 RGB uint8 from encoded bytes (a file or a request body), or RecordError."""
    return decode(data, rgb=True)


def crop_corners(image: np.ndarray, corners: list[list[int]]) -> np.ndarray:
    """Cut the box given as TAO's 4 corners ([0] top-left, [3] bottom-right)."""
    (x0, y0), (x1, y1) = corners[0], corners[3]
    h, w = image.shape[:2]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise RecordError(f"bbox_coordinates {corners} outside the {w}x{h} image")
    return image[y0:y1, x0:x1]


def fitted(image: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """An RGB crop at the model's input size, as ``prep.fit`` says."""
    import cv2

    H, W = prep.image_height, prep.image_width
    if prep.fit != "letterbox" or image.shape[:2] == (H, W):
        return cv2.resize(image, (W, H), interpolation=cv2.INTER_LINEAR)
    top, left, nh, nw = prep.letterbox_place(*image.shape[:2])
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return cv2.copyMakeBorder(small, top, H - nh - top, left, W - nw - left,
                              cv2.BORDER_CONSTANT, value=0)


def to_input(image: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """RGB uint8 crop -> float32 model input (declared layout, no batch dimension)."""
    import cv2

    resized = fitted(image, prep).astype(np.float32)
    if prep.channels == 1:
        resized = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)[:, :, None]
    tensor = (resized - prep.offset) * prep.scale
    if prep.data_format == "channels_first":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor, dtype=np.float32)
