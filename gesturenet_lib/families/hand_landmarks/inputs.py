"""Training input of the hand_landmarks family: every crop goes once through the frozen
extractor (ONNX Runtime); the head trains on the landmark vectors with tf.data.

Crops where the network finds no hand are left out of the *training* set (the head's output
for them is the fixed fallback, so they would teach it nothing); the validation set keeps
them, so validation accuracy counts them as the model will (fallback class)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from gesturenet_lib.errors import RecordError, UserInputError
from gesturenet_lib.families.hand_landmarks.extractor import Extractor, hand_found
from gesturenet_lib.families.hand_landmarks.layout import MIDDLE_MCP, RAW_SIZE, WRIST
from gesturenet_lib.models.preprocessing import Preprocessing, load_rgb, to_input
from gesturenet_lib.training.data import ImageSet

log = logging.getLogger(__name__)
READ_CHUNK = 256


@dataclass(frozen=True)
class LandmarkSet:
    raw: np.ndarray            # [N, RAW_SIZE] extractor output
    labels: np.ndarray         # [N] class indices

    def __len__(self) -> int:
        return len(self.labels)


def extract_set(images: ImageSet, prep: Preprocessing, extractor: Extractor) -> LandmarkSet:
    """The extractor's output for every crop of ``images`` (read in chunks, so memory stays
    bounded by READ_CHUNK crops)."""
    parts = []
    for start in range(0, len(images), READ_CHUNK):
        tensors = []
        for path in images.paths[start:start + READ_CHUNK]:
            try:
                tensors.append(to_input(load_rgb(path), prep))
            except RecordError as err:
                raise UserInputError(f"{path}: {err} (listed in {images.name})") from None
        parts.append(extractor(np.stack(tensors)))
        log.info("train: landmarks of %s: %d of %d crops", images.name,
                 min(start + READ_CHUNK, len(images)), len(images))
    raw = np.concatenate(parts) if parts else np.zeros((0, RAW_SIZE), np.float32)
    return LandmarkSet(raw, np.asarray(images.labels, np.int64))


def only_hands(data: LandmarkSet, threshold: float) -> LandmarkSet:
    keep = hand_found(data.raw, threshold)
    return LandmarkSet(data.raw[keep], data.labels[keep])


def make_landmark_dataset(data: LandmarkSet, num_classes: int, batch_size: int, shuffle: bool,
                          seed: int, repeat: bool = False, rotation: float = 0.0,
                          jitter: float = 0.0):
    """(raw landmark vector, one-hot label) batches, like ``training.data.make_dataset``;
    ``rotation`` (degrees) and ``jitter`` augment the landmarks (training only)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((data.raw.astype(np.float32), data.labels))
    if shuffle:
        ds = ds.shuffle(max(1, len(data)), seed=seed, reshuffle_each_iteration=True)
    if rotation or jitter:
        ds = ds.map(lambda x, y: (augment_landmarks(x, rotation, jitter), y),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(lambda x, y: (x, tf.one_hot(y, num_classes))).batch(batch_size)
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE)


def augment_landmarks(raw, rotation: float, jitter: float):
    """One raw vector with its 21 points turned about the wrist in the image plane by up to
    ``rotation`` degrees and moved by Gaussian noise of ``jitter`` times the hand's size
    (wrist to middle knuckle); depth, presence and handedness stay. In the landmark space the
    head reads, so the frozen network is not run again."""
    import math

    import tensorflow as tf

    points = tf.reshape(raw[:63], (21, 3))
    xy = points[:, :2] - points[WRIST:WRIST + 1, :2]
    angle = tf.random.uniform([], -1.0, 1.0) * (rotation * math.pi / 180.0)
    c, s = tf.cos(angle), tf.sin(angle)
    turned = tf.stack([c * xy[:, 0] - s * xy[:, 1], s * xy[:, 0] + c * xy[:, 1]], axis=1)
    size = tf.norm(xy[MIDDLE_MCP])
    moved = turned + tf.random.normal((21, 2)) * (jitter * size)
    points = tf.concat([moved + points[WRIST:WRIST + 1, :2], points[:, 2:]], axis=1)
    return tf.concat([tf.reshape(points, (63,)), raw[63:]], axis=0)
