"""A hand_landmarks .tlt in inference: the stored extractor (ONNX Runtime), then the Keras
head."""

from __future__ import annotations

import numpy as np

from gesturenet_lib.families.hand_landmarks.extractor import Extractor, hand_found
from gesturenet_lib.inference.backends import Backend, KerasBackend


class LandmarkBackend(Backend):
    """A hand_landmarks .tlt: the stored extractor (ONNX Runtime) then the Keras head, the
    two-step path that export joins into one graph."""

    def __init__(self, extractor_onnx: bytes, head, classes, preprocessing, threshold: float):
        self.extractor = Extractor(extractor_onnx)
        self.head = KerasBackend(head, classes, preprocessing)
        self.threshold = threshold
        super().__init__("onnxruntime+keras", classes, preprocessing, self.head.num_outputs)

    def run(self, batch):
        return self.head.run(self.extractor(batch))

    def predict_with_hands(self, batch):
        raw = self.extractor(np.ascontiguousarray(batch, dtype=np.float32))
        return np.asarray(self.head.run(raw)), hand_found(raw, self.threshold)
