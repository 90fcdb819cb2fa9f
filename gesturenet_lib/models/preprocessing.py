"""Preprocessing, defined once and stored with the model: every subtask (train, evaluate,
inference, export, the DeepStream config) reads it from the model file instead of guessing.

    input  = crop resized to (height, width) with bilinear interpolation, RGB (or gray)
    tensor = (input - offset) * scale       # DeepStream: net-scale-factor, offsets
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gesturenet_lib.specs.experiment import LANDMARK_INPUT_SIZE, Model


@dataclass(frozen=True)
class Preprocessing:
    image_height: int
    image_width: int
    channels: int               # 3: RGB, 1: gray
    data_format: str            # layout at the model's input
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    resize: str = "bilinear"

    @classmethod
    def for_model(cls, spec: Model) -> Preprocessing:
        if spec.base_model == "hand_landmarks":  # the landmark network's own input: RGB in [0,1]
            return cls(LANDMARK_INPUT_SIZE, LANDMARK_INPUT_SIZE, 3, spec.data_format)
        return cls(spec.image_height, spec.image_width, 1 if spec.gray_scale_input else 3,
                   spec.data_format)

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

    def tf_resize(self, image):
        """uint8/float HxWxC (RGB) -> float32 HxWxC in [0, 255] at the model's size."""
        import tensorflow as tf

        image = tf.image.resize(tf.cast(image, tf.float32), (self.image_height, self.image_width),
                                method=self.resize, antialias=False)
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
