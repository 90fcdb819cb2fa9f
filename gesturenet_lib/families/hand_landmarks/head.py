"""The trainable head of the hand_landmarks family (Keras): the extractor's raw vector
[N, RAW_SIZE] -> features (MediaPipe's hand embedding, features of the landmarks, Google's
canned gesture scores; ``settings.features`` says which) -> MLP -> softmax, averaged with a
second MLP on Google's canned scores alone (``settings.canned_vote``) -> no-hand fallback. The
feature steps are Keras ops, so the same code runs in training and, converted by tf2onnx, in
the exported graph."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from gesturenet_lib.families.hand_landmarks.extractor import fallback_probabilities
from gesturenet_lib.families.hand_landmarks.layout import (
    CANNED_SIZE,
    CANNED_START,
    EMBEDDING_SIZE,
    EMBEDDING_START,
    FEATURE_SIZE,
    FINGERTIPS,
    HANDEDNESS,
    MIDDLE_MCP,
    PRESENCE,
    RAW_SIZE,
    TIP_PAIRS,
    WRIST,
)
from gesturenet_lib.specs.experiment import HandLandmarks


@keras.saving.register_keras_serializable(package="gesturenet")
class LandmarkFeatures(layers.Layer):
    """Raw [N, RAW_SIZE] -> features [N, FEATURE_SIZE]: the 21 points relative to the wrist, divided
    by the wrist-to-middle-knuckle length (x, y), x negated for hands whose handedness score
    is below 0.5 (a left and a right hand making one gesture give the same features), then the
    fingertip-to-wrist and fingertip-to-fingertip distances. Orientation is kept on purpose:
    classes such as stop vs stop_inverted differ only by it."""

    def call(self, raw):
        points = ops.reshape(raw[:, :63], (-1, 21, 3))
        relative = points - points[:, WRIST:WRIST + 1, :]
        size = ops.sqrt(ops.sum(ops.square(relative[:, MIDDLE_MCP, :2]), axis=-1))
        relative = relative / ops.reshape(size + 1e-6, (-1, 1, 1))
        sign = ops.where(raw[:, HANDEDNESS:HANDEDNESS + 1] >= 0.5, 1.0, -1.0)
        mirror = ops.concatenate([sign, ops.ones_like(sign), ops.ones_like(sign)], axis=-1)
        relative = relative * ops.reshape(mirror, (-1, 1, 3))
        tips = ops.take(relative, list(FINGERTIPS), axis=1)
        to_wrist = ops.sqrt(ops.sum(ops.square(tips), axis=-1))
        first = ops.take(relative, [a for a, _ in TIP_PAIRS], axis=1)
        second = ops.take(relative, [b for _, b in TIP_PAIRS], axis=1)
        between = ops.sqrt(ops.sum(ops.square(first - second), axis=-1) + 1e-12)
        return ops.concatenate([ops.reshape(relative, (-1, 63)), to_wrist, between], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], FEATURE_SIZE)


@keras.saving.register_keras_serializable(package="gesturenet")
class RawSection(layers.Layer):
    """Raw [N, RAW_SIZE] -> the ``size`` numbers from ``start``: a section the frozen
    extractor computed (MediaPipe's hand embedding, Google's canned gesture scores)."""

    def __init__(self, start: int, size: int, **kwargs):
        super().__init__(**kwargs)
        self.start, self.size = int(start), int(size)

    def call(self, raw):
        return raw[:, self.start:self.start + self.size]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "size": self.size}


@keras.saving.register_keras_serializable(package="gesturenet")
class Vote(layers.Layer):
    """Two heads' probabilities [N, C] -> their average. In training, each example takes one
    head's probabilities, picked at random: the loss then trains each head on its own examples
    (trained through the average, one head would learn some classes and the other the rest,
    and their average would tie)."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        first, second = inputs
        if training:
            pick = keras.random.uniform(ops.shape(first)[:1], seed=self.seed_generator) < 0.5
            return ops.where(ops.expand_dims(pick, -1), first, second)
        return (first + second) * 0.5

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="gesturenet")
class NoHandFallback(layers.Layer):
    """Where the presence score is below ``threshold``, the head's probabilities are replaced
    by ``fallback``."""

    def __init__(self, threshold: float, fallback: list[float], **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)
        self.fallback = [float(v) for v in fallback]

    def call(self, inputs):
        probabilities, raw = inputs
        found = raw[:, PRESENCE:PRESENCE + 1] >= self.threshold
        fallback = ops.convert_to_tensor(np.array([self.fallback], np.float32))
        return ops.where(found, probabilities, fallback + 0.0 * probabilities)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "fallback": self.fallback}


def _classifier(x, settings: HandLandmarks, classes: dict[str, int], regularizer,
                hidden_prefix: str, prefix: str):
    """Features -> the hidden Dense layers (``hidden_units``, ReLU, ``dropout``) -> softmax
    over the classes; layers ``<hidden_prefix>dense_<i>``, ``<prefix>predictions_dense``,
    ``<prefix>probabilities``."""
    for i, units in enumerate(settings.hidden_units, start=1):
        x = layers.Dense(units, activation="relu", kernel_regularizer=regularizer,
                         name=f"{hidden_prefix}dense_{i}")(x)
        if settings.dropout > 0:
            x = layers.Dropout(settings.dropout, name=f"{hidden_prefix}dropout_{i}")(x)
    x = layers.Dense(len(classes), kernel_regularizer=regularizer,
                     name=f"{prefix}predictions_dense")(x)
    return layers.Activation("softmax", dtype="float32", name=f"{prefix}probabilities")(x)


def build_head(settings: HandLandmarks, classes: dict[str, int], regularizer=None,
               seed: int | None = None):
    """Raw landmark vector -> class probabilities. Layer names are fixed (``head_dense_<i>``,
    ``predictions_dense``, ``predictions``), as in the ResNet family; the canned vote's are
    ``canned_dense_<i>``, ``canned_predictions_dense``, ``canned_probabilities``, ``vote``."""
    raw = keras.Input(shape=(RAW_SIZE,), name="input_1")
    # Google's 8 scores: None, Closed_Fist, Open_Palm, Pointing_Up, Thumb_Down, Thumb_Up,
    # Victory, ILoveYou
    canned = RawSection(CANNED_START, CANNED_SIZE, name="canned_scores")(raw)
    parts = []
    if "embedding" in settings.features:
        # as MediaPipe Model Maker's gesture head (and Google's canned classifier) reads it:
        # batch normalisation and ReLU on the embedding
        embedding = RawSection(EMBEDDING_START, EMBEDDING_SIZE, name="embedding")(raw)
        embedding = layers.BatchNormalization(name="embedding_norm")(embedding)
        parts.append(layers.ReLU(name="embedding_relu")(embedding))
    if "landmarks" in settings.features:
        parts.append(LandmarkFeatures(name="landmark_features")(raw))
    if "canned" in settings.features:
        parts.append(canned)
    x = parts[0] if len(parts) == 1 else layers.Concatenate(name="features")(parts)
    probabilities = _classifier(x, settings, classes, regularizer, "head_", "")
    if settings.canned_vote:
        probabilities = Vote(seed, name="vote")(
            [probabilities,
             _classifier(canned, settings, classes, regularizer, "canned_", "canned_")])
    outputs = NoHandFallback(settings.presence_threshold, fallback_probabilities(classes),
                             name="predictions")([probabilities, raw])
    return keras.Model(raw, outputs, name="gesturenet_hand_landmarks")
