"""A hand_landmarks model in inference: the crop path (the stored extractor, then the head)
and the landmark path (the head on landmarks a hand finder already read)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np

from gesturenet_lib.export.onnx_export import HAND_FOUND, keras_to_onnx
from gesturenet_lib.families.hand_landmarks.extractor import (
    EXTRACTOR_OUTPUT,
    ROWS,
    Extractor,
    from_rows,
    hand_found,
)
from gesturenet_lib.inference.backends import Backend, OnnxBackend
from gesturenet_lib.ort_cpu import cpu_session, quiet_between_runs

# rows [N, NET_ROW] (landmarks in any square-pixel frame) -> (probabilities, hand found)
LandmarkReader = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class LandmarkBackend(Backend):
    """A hand_landmarks .tlt or .keras: the stored extractor, then the Keras head run as ONNX
    (the two steps export joins into one graph), both with ONNX Runtime.

    The head is converted once per loaded model, when first used (~0.3 s). Called for a
    photo's one or two hands between the hand finder's runs, TensorFlow's call took ~2.2 ms of
    CPU (its thread pool wakes and spins) against ~0.1 ms for ONNX Runtime's: a tenth of what
    finding a photo's hands costs; a served crop pays the same."""

    def __init__(self, extractor_onnx: bytes, head, classes, preprocessing, threshold: float):
        self.extractor_onnx = extractor_onnx
        self.extractor = Extractor(extractor_onnx)
        self.keras_head = head
        self.threshold = threshold
        super().__init__("onnxruntime", classes, preprocessing, int(head.output_shape[-1]))

    @cached_property
    def head(self) -> Callable[[np.ndarray], np.ndarray]:
        """The head: extractor rows [N, ...] -> class probabilities [N, classes]."""
        session = _session(keras_to_onnx(self.keras_head, {}))
        name = session.get_inputs()[0].name
        return lambda raw: session.run(None, {name: np.ascontiguousarray(raw, np.float32)})[0]

    def run(self, batch):
        return self.head(self.extractor(batch))

    def predict_with_hands(self, batch):
        raw = self.extractor(np.ascontiguousarray(batch, dtype=np.float32))
        return self.head(raw), hand_found(raw, self.threshold)

    @cached_property
    def landmark_path(self) -> LandmarkReader:
        """The classifier from the landmark network's rows (``landmark_reader``): the
        extractor's part after the rows, then the head."""
        after_rows = _session(from_rows(self.extractor_onnx, [EXTRACTOR_OUTPUT]))
        head, threshold = self.head, self.threshold

        def read(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            raw = after_rows.run(None, {ROWS: np.ascontiguousarray(rows, np.float32)})[0]
            return head(raw), hand_found(raw, threshold)
        return read


def landmark_reader(backend: Backend) -> LandmarkReader | None:
    """The model's classifier from the landmark network's rows, when the model is one that
    reads landmarks (a hand_landmarks .tlt/.keras, or its exported .onnx/.etlt): the part of
    its own graph after the rows (embedder, canned scores, head), so a hand found in a whole
    image is classified without the networks run again on its crop. The head and the embedder
    are invariant to the landmarks' position and scale (both normalise by the hand's own size),
    so image pixels serve as well as the crop's. None for any other model (a ResNet, a TensorRT
    engine): those classify the crop.

    A stored model's (.tlt, .keras) is ``LandmarkBackend.landmark_path``."""
    if isinstance(backend, LandmarkBackend):
        return backend.landmark_path
    part = from_rows(backend.onnx_bytes, [backend.output_names[0], HAND_FOUND]) \
        if isinstance(backend, OnnxBackend) else None
    if part is not None:
        graph = _session(part)

        def read_exported(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            probs, found = graph.run(None, {ROWS: np.ascontiguousarray(rows, np.float32)})
            return probs, found[:, 0] >= 0.5
        return read_exported
    return None


def _session(onnx_bytes: bytes):
    # it takes turns with the hand finder's two sessions
    return cpu_session(onnx_bytes, quiet_between_runs())
