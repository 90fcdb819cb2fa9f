"""Training input of the hand_landmarks family: every crop goes through a frozen extractor
(ONNX Runtime); the head trains on the landmark vectors with tf.data.

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
# Cuts of a training crop (augment_cuts). dataset_convert's crop is the hand's box grown 1.3x;
# other tools cut tighter (the box itself, 0.77 of that crop, of any aspect) or looser (up to
# 3x the box: 2.3x the crop). Each side is drawn on its own, so the aspect varies too.
INNER_SIDE = (0.75, 1.0)   # a window inside the crop, per side
OUTER_SIDE = (1.0, 2.3)    # the crop on a wider black border, per side


@dataclass(frozen=True)
class LandmarkSet:
    raw: np.ndarray            # [N, RAW_SIZE] extractor output
    labels: np.ndarray         # [N] class indices

    def __len__(self) -> int:
        return len(self.labels)


    def __add__(self, other: LandmarkSet) -> LandmarkSet:
        return LandmarkSet(np.concatenate([self.raw, other.raw]),
                           np.concatenate([self.labels, other.labels]))


def extract_set(images: ImageSet, prep: Preprocessing, extractor: Extractor,
                recut_rng: np.random.Generator | None = None) -> LandmarkSet:
    """The extractor's output for every crop of ``images`` (read in chunks, so memory stays
    bounded by READ_CHUNK crops); with ``recut_rng``, for a random cut of each crop
    (``recut``)."""
    parts = []
    for start in range(0, len(images), READ_CHUNK):
        tensors = []
        for path in images.paths[start:start + READ_CHUNK]:
            try:
                rgb = load_rgb(path)
                tensors.append(to_input(rgb if recut_rng is None else recut(rgb, recut_rng),
                                        prep))
            except RecordError as err:
                raise UserInputError(f"{path}: {err} (listed in {images.name})") from None
        parts.append(extractor(np.stack(tensors)))
        log.info("train: landmarks of %s%s: %d of %d crops", images.name,
                 "" if recut_rng is None else " (cut another way)",
                 min(start + READ_CHUNK, len(images)), len(images))
    raw = np.concatenate(parts) if parts else np.zeros((0, RAW_SIZE), np.float32)
    return LandmarkSet(raw, np.asarray(images.labels, np.int64))


def recut(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crop cut another way, at random: a window inside it (each side ``INNER_SIDE`` of
    the crop's, anywhere in it) or, as often, the crop somewhere on a black canvas (each side
    ``OUTER_SIDE`` times the crop's)."""
    import cv2

    h, w = rgb.shape[:2]
    inner = rng.random() < 0.5
    sides = rng.uniform(*(INNER_SIDE if inner else OUTER_SIDE), size=2)
    cut_w, cut_h = max(1, round(w * sides[0])), max(1, round(h * sides[1]))
    x, y = rng.integers(0, abs(cut_w - w) + 1), rng.integers(0, abs(cut_h - h) + 1)
    if inner:
        return rgb[y:y + cut_h, x:x + cut_w]
    return cv2.copyMakeBorder(rgb, int(y), int(cut_h - h - y), int(x), int(cut_w - w - x),
                              cv2.BORDER_CONSTANT, value=(0, 0, 0))


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
