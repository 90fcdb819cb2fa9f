"""Batched prediction over a list of image sources, shared by evaluate and inference.

A source is an image file, optionally with a box to cut (TAO's 4 corners). A source that cannot
be read gives a result with its error instead of stopping the run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gesturenet_lib.errors import RecordError
from gesturenet_lib.inference.backends import Backend
from gesturenet_lib.models.preprocessing import crop_corners, load_rgb, to_input


@dataclass(frozen=True)
class Source:
    path: str                          # absolute path to read
    shown_as: str                      # path as the user knows it (data.json or relative)
    corners: list[list[int]] | None = None


class Probabilities:
    """The class a ``probabilities`` vector picks, and how sure it is."""
    probabilities: np.ndarray | None

    @property
    def index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))


@dataclass(frozen=True)
class Prediction(Probabilities):
    source: Source
    probabilities: np.ndarray | None
    error: str | None = None
    crop: np.ndarray | None = None     # RGB, kept when asked (report galleries)
    hand_found: bool | None = None     # hand_landmarks models: did the network find a hand


def _load(source: Source) -> np.ndarray:
    image = load_rgb(source.path)
    return crop_corners(image, source.corners) if source.corners else image


def log_progress(what: str, every: int = 10):
    """A progress callback: one log line every ``every`` batches and at the end."""
    import logging

    log = logging.getLogger("gesturenet_lib.inference")
    calls = {"n": 0}

    def report(done: int, total: int) -> None:
        calls["n"] += 1
        if calls["n"] % every == 0 or done == total:
            log.info("%s: %d of %d images", what, done, total)

    return report


def predict_sources(backend: Backend, sources: list[Source], batch_size: int,
                    keep_crops: bool = False, progress=None) -> list[Prediction]:
    results: list[Prediction | None] = [None] * len(sources)
    for start in range(0, len(sources), batch_size):
        chunk = list(enumerate(sources[start:start + batch_size], start))
        tensors, kept = [], []
        for i, source in chunk:
            try:
                crop = _load(source)
                tensors.append(to_input(crop, backend.preprocessing))
                kept.append((i, crop))
            except RecordError as err:
                results[i] = Prediction(source, None, str(err))
        if tensors:
            probs, hands = backend.predict_with_hands(np.stack(tensors))
            for k, ((i, crop), p) in enumerate(zip(kept, probs, strict=True)):
                results[i] = Prediction(sources[i], p, None, crop if keep_crops else None,
                                        None if hands is None else bool(hands[k]))
        if progress is not None:
            progress(min(start + batch_size, len(sources)), len(sources))
    return [r for r in results if r is not None]
