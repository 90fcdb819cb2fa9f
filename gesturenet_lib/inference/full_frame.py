"""Whole images: find every hand (``HandFinder``) and classify it. A model that reads
landmarks (hand_landmarks, as .tlt, .keras, .onnx or .etlt) classifies the landmarks the
finder already read; any other (a ResNet, a TensorRT engine) classifies each hand's crop, cut
from its found box the way dataset_convert cuts an annotated box. A large JPEG is decoded
reduced (``FRAME_LONG_SIDE``); boxes and landmarks are reported in the full image's pixels.
One ``FrameResult`` per image; an image without a hand has none. Several images are found in
at once, one per core (``photo_workers``), and classified in order."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from gesturenet_lib.data.geometry import PercentBox, crop_box
from gesturenet_lib.errors import RecordError
from gesturenet_lib.families.hand_landmarks.backend import LandmarkReader, landmark_reader
from gesturenet_lib.families.hand_landmarks.hand_finder import FoundHand, HandFinder
from gesturenet_lib.inference.backends import Backend
from gesturenet_lib.inference.run import Probabilities, Source
from gesturenet_lib.models.preprocessing import load_frame, to_input
from gesturenet_lib.specs.dataset_config import DatasetConfig

_FIELDS = DatasetConfig.__dataclass_fields__   # dataset_convert's defaults, read from its spec
# The landmark network reads a hand's rotated box at 224x224, and the palm detector the whole
# image at 192x192: a photo's long side beyond this buys nothing but decoding time for hands
# down to 12 % of it (a 12-megapixel photo is decoded at half size, 2856 px long).
FRAME_LONG_SIDE = 1920


@dataclass(frozen=True)
class CropRule:
    """How a found hand's box becomes a crop: dataset_convert's two settings."""
    square: bool = _FIELDS["convert_bbox_square"].default
    enlarge_ratio: float = _FIELDS["bbox_enlarge_ratio"].default


# the ratios the dataset spec accepts
ENLARGE_RANGE = (_FIELDS["bbox_enlarge_ratio"].metadata["min"],
                 _FIELDS["bbox_enlarge_ratio"].metadata["max"])


@dataclass(frozen=True)
class FrameHand(Probabilities):
    hand: FoundHand
    box: tuple[int, int, int, int]        # the hand's box in the image (x0, y0, x1, y1)
    crop_box: tuple[int, int, int, int]   # dataset_convert's cut of the box (a crop model
                                          # classifies it; reports show it)
    probabilities: np.ndarray
    hand_found: bool | None               # the classifier's own check (hand_landmarks)

    def scaled(self, factor: float, size: tuple[int, int]) -> FrameHand:
        """The same hand in an image ``factor`` times as large, of ``size`` (width, height):
        the hand box read again from the scaled landmarks."""
        if factor == 1:
            return self
        hand = self.hand.scaled(factor)
        x0, y0, x1, y1 = (round(v * factor) for v in self.crop_box)
        crop = (max(0, x0), max(0, y0), min(size[0], x1), min(size[1], y1))
        return FrameHand(hand, hand.box(*size), crop, self.probabilities, self.hand_found)


@dataclass(frozen=True)
class FrameResult:
    source: Source
    size: tuple[int, int] | None          # width, height
    hands: list[FrameHand]
    error: str | None = None
    image: np.ndarray | None = None       # RGB, kept when asked (previews, galleries),
    image_scale: float = 1.0              # as decoded: its pixels per pixel of ``size``

    def hands_on_image(self) -> list[FrameHand]:
        """``hands`` in the pixels of ``image`` (a reduced decode's)."""
        size = (self.image.shape[1], self.image.shape[0])
        return [h.scaled(self.image_scale, size) for h in self.hands]


def cut(rgb: np.ndarray, box: tuple[int, int, int, int], rule: CropRule
        ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """dataset_convert's crop of the hand box ``box`` (pixels): (crop, the box cut)."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    percent = PercentBox(100 * x0 / w, 100 * y0 / h, 100 * max(1, x1 - x0) / w,
                         100 * max(1, y1 - y0) / h)
    pixels = crop_box(percent, w, h, rule.square, rule.enlarge_ratio)
    return (rgb[pixels.y0:pixels.y1, pixels.x0:pixels.x1],
            (pixels.x0, pixels.y0, pixels.x1, pixels.y1))


def classify_hands(rgb: np.ndarray, hands: list[FoundHand], backend: Backend, rule: CropRule,
                   reader: LandmarkReader | None) -> list[FrameHand]:
    """Found hands of ``rgb``, classified: by ``reader``, the model's landmark path
    (``landmark_reader``), else each hand's crop through ``backend``."""
    if not hands:
        return []
    h, w = rgb.shape[:2]
    boxes = [hand.box(w, h) for hand in hands]
    cuts = [cut(rgb, box, rule) for box in boxes]
    if reader is not None:
        probs, found = reader(np.stack([hand.raw for hand in hands]))
    else:
        batch = np.stack([to_input(crop, backend.preprocessing) for crop, _ in cuts])
        probs, found = backend.predict_with_hands(batch)
    return [FrameHand(hand, box, cut_box, p, None if found is None else bool(found[k]))
            for k, (hand, box, (_, cut_box), p) in enumerate(
                zip(hands, boxes, cuts, probs, strict=True))]


def classify_frames(sources: list[Source], finder: HandFinder, backend: Backend,
                    rule: CropRule, keep_images: bool = False, progress=None,
                    from_landmarks: bool = True, workers: int = 1) -> list[FrameResult]:
    """Each image once (a data.json lists an image once per hand; pass it once).
    ``from_landmarks=False`` sends every hand's crop through the model even where it could
    read the landmarks (the path of a ResNet or a TensorRT engine; benchmarks compare both).
    ``workers`` images are decoded and searched at once (give the finder as many, see
    ``hand_finder``); the model classifies them one after the other, in order (a TensorRT
    context or a Keras model is not shared between threads)."""
    reader = landmark_reader(backend) if from_landmarks else None

    def found(source: Source):
        try:
            rgb, size = load_frame(source.path, FRAME_LONG_SIDE)
        except RecordError as err:
            return Searched(None, None, [], str(err))
        return Searched(rgb, size, finder.find(rgb), None)

    results = []
    for n, (source, done) in enumerate(zip(sources, in_order(found, sources, workers),
                                           strict=True), 1):
        if done.error is not None:
            results.append(FrameResult(source, None, [], done.error))
        else:
            scale = done.size[0] / done.rgb.shape[1]
            hands = [h.scaled(scale, done.size)
                     for h in classify_hands(done.rgb, done.hands, backend, rule, reader)]
            results.append(FrameResult(source, done.size, hands, None,
                                       done.rgb if keep_images else None, 1 / scale))
        if progress is not None:  # unreadable images count as done too
            progress(n, len(sources))
    return results


@dataclass(frozen=True)
class Searched:
    """One image decoded and searched for hands, or why it could not be read."""
    rgb: np.ndarray | None
    size: tuple[int, int] | None
    hands: list[FoundHand]
    error: str | None


def photo_workers(images: int) -> int:
    """How many images to find hands in at once: one per core this process may use, no more
    than there are images. The networks are small: on 2 cores ONNX Runtime's two threads ran
    one photo 1.1x as fast as one thread did, two photos at once (one thread each) 1.7x."""
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")   # not on macOS
             else os.cpu_count() or 1)
    return max(1, min(cores, images))


def in_order(work: Callable, items: Iterable, workers: int) -> Iterator:
    """``work`` on each item, ``workers`` threads at once, the answers in the items' order; at
    most two per thread run ahead of the reader (each holds a decoded image)."""
    if workers <= 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def hand_finder(presence_threshold: float = 0.5, workers: int = 1) -> HandFinder:
    """The finder built from the networks ``make models`` extracted, for ``workers`` images
    at once (then each network run takes one core)."""
    from gesturenet_lib.families.hand_landmarks.assets import landmark_onnx_bytes, palm_onnx_bytes

    return HandFinder(palm_onnx_bytes(), landmark_onnx_bytes(), presence_threshold,
                      threads=1 if workers > 1 else 0)


def hand_record(result: FrameResult, k: int, hand: FrameHand, names: list[str]) -> dict:
    """One line of results.jsonl for a found hand."""
    return {"path": result.source.shown_as, "hand_index": k, "image_size": list(result.size),
            "box": list(hand.box), "crop_box": list(hand.crop_box),
            "rotated_box": {"center": [round(hand.hand.rect.cx, 2), round(hand.hand.rect.cy, 2)],
                            "side": round(hand.hand.rect.side, 2),
                            "rotation_degrees": round(float(np.degrees(hand.hand.rect.rotation)),
                                                      2)},
            "palm_score": round(hand.hand.palm_score, 4), **hand_fields(hand, names)}


def hand_fields(hand: FrameHand, names: list[str]) -> dict:
    """What a results.jsonl record says of any found hand (whole photos and video alike):
    landmarks, scores and the class."""
    return {"landmarks": np.round(hand.hand.landmarks, 2).tolist(),
            "presence": round(hand.hand.presence, 4),
            "handedness_score": round(hand.hand.handedness, 4),
            "class_index": hand.index, "class_name": names[hand.index],
            "confidence": hand.confidence,
            "probabilities": [float(v) for v in hand.probabilities],
            **({} if hand.hand_found is None else {"hand_found": hand.hand_found})}
