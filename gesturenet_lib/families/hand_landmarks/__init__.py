"""``hand_landmarks``: MediaPipe's pretrained hand-landmark network, frozen and stored in the
model as ``extractor.onnx``, and a small head trained on its landmarks. The crops go through
the extractor once at training time (and once more for each training cut and each other
localization the spec asks for); export joins both into one ONNX graph."""

from __future__ import annotations

import dataclasses
import logging

from gesturenet_lib.errors import UserInputError
from gesturenet_lib.export.calibration import QuantizeSettings
from gesturenet_lib.families.base import TrainingInputs
from gesturenet_lib.models.preprocessing import Preprocessing
from gesturenet_lib.specs.experiment import LANDMARK_INPUT_SIZE

log = logging.getLogger(__name__)
EXTRACTOR = "extractor.onnx"  # the attachment that holds the frozen network


class HandLandmarks:
    name = "hand_landmarks"
    # The head compares regressed pixel coordinates finely: quantizing only the convolutions
    # at full int8 range kept 94% top-1 agreement with FP32 on the sample, every op 52%.
    quantize = QuantizeSettings(op_types=["Conv"], reduce_range=False)

    def preprocessing(self, model) -> Preprocessing:
        # the landmark network's own input: RGB in [0, 1]; a crop of another shape is
        # letterboxed by default, so the palm detector and the landmark network see the hand
        # undistorted (a 62x118 hand stretched to a square is twice as wide)
        return Preprocessing(LANDMARK_INPUT_SIZE, LANDMARK_INPUT_SIZE, 3, model.data_format,
                             fit=model.input_fit or "letterbox")

    def build(self, spec):
        from gesturenet_lib.families.hand_landmarks.head import build_head
        from gesturenet_lib.models.regularizer import make_regularizer

        return build_head(spec.model.landmarks, dict(spec.dataset.classes),
                          make_regularizer(spec.model), spec.random_seed)

    def training_inputs(self, spec, train_set, val_set, prep, repeat_val) -> TrainingInputs:
        import numpy as np

        from gesturenet_lib.families.hand_landmarks.assets import (
            canned_onnx_bytes,
            embedder_onnx_bytes,
            landmark_onnx_bytes,
            lite_landmark_onnx_bytes,
            palm_onnx_bytes,
        )
        from gesturenet_lib.families.hand_landmarks.extractor import (
            Extractor,
            build_extractor,
            localization_networks,
        )
        from gesturenet_lib.families.hand_landmarks.inputs import (
            extract_set,
            make_landmark_dataset,
            only_hands,
        )

        settings = spec.model.landmarks

        def extractor_for(localization: str) -> bytes:
            palm_needed, lite_needed = localization_networks(localization)
            return build_extractor(
                landmark_onnx_bytes(), dataclasses.replace(settings, localization=localization),
                spec.model.data_format, palm_onnx_bytes() if palm_needed else None,
                embedder_onnx=embedder_onnx_bytes(), canned_onnx=canned_onnx_bytes(),
                lite_onnx=lite_landmark_onnx_bytes() if lite_needed else None)

        extractor_onnx = extractor_for(settings.localization)
        extractor = Extractor(extractor_onnx)
        train_raw = extract_set(train_set, prep, extractor)
        for cut in range(settings.augment_cuts):   # the same crops cut other ways
            train_raw += extract_set(train_set, prep, extractor,
                                     np.random.default_rng([spec.random_seed, cut]))
        for other in _other_localizations(settings):   # the hand found another way
            train_raw += extract_set(train_set, prep, Extractor(extractor_for(other)))
        hands = only_hands(train_raw, settings.presence_threshold)
        log.info("train: hand found in %d of %d training crops%s (the others are left out: "
                 "their prediction is the fixed no-hand fallback)", len(hands), len(train_raw),
                 _more_rows(settings))
        if len(hands) == 0:
            raise UserInputError(f"{spec.dataset.data_path}: the landmark network found no "
                                 "hand in any training crop (try a larger bbox_enlarge_ratio "
                                 "or model.hand_landmarks.padding)")
        if any(a.enable for a in vars(spec.dataset.augmentation).values()):
            log.info("train: dataset.augmentation is not applied by hand_landmarks (the head "
                     "trains on the frozen network's landmarks)")
        n, batch, seed = spec.dataset.num_classes, spec.batch_size, spec.random_seed
        train = make_landmark_dataset(hands, n, batch, shuffle=True, seed=seed, repeat=True,
                                      rotation=settings.augment_rotation,
                                      jitter=settings.augment_jitter)
        val = make_landmark_dataset(extract_set(val_set, prep, extractor), n, batch,
                                    shuffle=False, seed=seed, repeat=repeat_val) \
            if len(val_set) else None
        return TrainingInputs(train, val, len(hands), {EXTRACTOR: extractor_onnx})

    def metadata(self, spec) -> dict:
        return {"hand_landmarks": dataclasses.asdict(spec.model.landmarks)}

    def to_onnx(self, loaded, metadata: dict, opset: int | None) -> bytes:
        from gesturenet_lib.families.hand_landmarks.onnx_graph import landmark_model_to_onnx

        settings = loaded.metadata["hand_landmarks"]
        return landmark_model_to_onnx(loaded.model, loaded.attachments[EXTRACTOR],
                                      settings["presence_threshold"],
                                      {**metadata, "hand_landmarks": settings}, opset)

    def keras_objects(self) -> dict:
        """The head's own layers, for loading a stored model."""
        import keras

        from gesturenet_lib.families.hand_landmarks.head import (
            LandmarkFeatures,
            NoHandFallback,
            RawSection,
            Vote,
        )

        return {keras.saving.get_registered_name(c): c
                for c in (LandmarkFeatures, NoHandFallback, RawSection, Vote)}

    def backend(self, loaded, classes, prep):
        from gesturenet_lib.families.hand_landmarks.backend import LandmarkBackend

        return LandmarkBackend(loaded.attachments[EXTRACTOR], loaded.model, classes, prep,
                               loaded.metadata["hand_landmarks"]["presence_threshold"])


def _more_rows(settings) -> str:
    """How the training rows were multiplied, for the log line."""
    cuts = settings.augment_cuts
    more = [f"{cuts} more cut{'s' if cuts > 1 else ''}"] if cuts else []
    more += [f"the hand found by {other}" for other in _other_localizations(settings)]
    return f" (each crop also with {', '.join(more)})" if more else ""


def _other_localizations(settings) -> list[str]:
    """The localizations whose rows also train the head: each listed once, the spec's own
    left out (its rows are there already)."""
    return [name for name in dict.fromkeys(settings.augment_localizations)
            if name != settings.localization]


FAMILY = HandLandmarks()
