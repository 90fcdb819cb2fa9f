"""Benchmark: crops of any shape, against Google's own gesture classifier. A hand_landmarks
model is trained on the bundled sample with the project's own specs (the kpi people held out;
it trains on dataset_convert's square 1.3x crops), then the kpi people's hands are re-cut from
their photos the ways other tools cut them: HaGRID's own box as annotated (tight, not square),
that box stretched 1.5x along its width and along its height, and square boxes of 1.0x, 1.3x
(the training cut), 2.0x and 3.0x the box's longer side. The exported model classifies every
cut letterboxed (the hand_landmarks default; ``--compare_fit`` also stretched, the baseline
before ``fit`` existed). Prints macro-F1, per-class recall and "no hand found" per cut.

In the same run, Google's baseline: MediaPipe's canned gesture classifier on the same
128-d hand embedding of the same crops (Thumb_Up -> thumbs_up, Victory -> two, Open_Palm ->
stop, Closed_Fist -> fist, everything else -> random), per-class F1 beside ours on the classes
both know. ``--contender KEY=VALUE ...`` also trains a second model with those
model.hand_landmarks settings changed (e.g. ``features='"landmarks"'``, the head on raw
landmarks), measured the same way in the same run.

    .venv/bin/python bench/crop_fit_bench.py [--epochs N] [--compare_fit]
                                             [--contender KEY=VALUE ...]

Writes bench/results/crop_fit.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from results_file import write_results
from serve_bench import build_model

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "hagrid-sample"
CUTS = {"annotated box": (1.0, 1.0, False), "box 1.5x wide": (1.5, 1.0, False),
        "box 1.5x tall": (1.0, 1.5, False), "square 1.0x": (1.0, 1.0, True),
        "square 1.3x (training cut)": (1.3, 1.3, True), "square 2.0x": (2.0, 2.0, True),
        "square 3.0x": (3.0, 3.0, True)}
# Google's canned gestures -> our classes (the others -> random)
GOOGLE_TO_OURS = {"Thumb_Up": "thumbs_up", "Victory": "two", "Open_Palm": "stop",
                  "Closed_Fist": "fist"}


def kpi_users() -> list[str]:
    """The people the landmark dataset spec holds out (its kpi_users)."""
    spec = REPO / "specs" / "landmark_dataset_config.json"
    return json.loads(spec.read_text())["kpi_users"]


def kpi_hands(kpi: list[str]) -> list[tuple[Path, list[float], str]]:
    """(photo, HaGRID box [x, y, w, h] normalised, our class) of the kpi people's hands."""
    from gesturenet_lib.data.hagrid_import import DEFAULT_CLASS_MAP

    hands = []
    for file in sorted((SAMPLE / "annotations").rglob("*.json")):
        for image_id, entry in json.loads(file.read_text()).items():
            if entry["user_id"] not in kpi:
                continue
            photo = SAMPLE / "dataset" / file.stem / f"{image_id}.jpg"
            for box, label in zip(entry["bboxes"], entry["labels"], strict=True):
                cls = DEFAULT_CLASS_MAP.get(label, DEFAULT_CLASS_MAP["*"])
                hands.append((photo, box, cls))
    return hands


def cut(image: np.ndarray, box: list[float], sx: float, sy: float, square: bool) -> np.ndarray:
    """The box scaled about its centre (x by ``sx``, y by ``sy``; made square on its longer
    side first when ``square``), clipped to the image."""
    h, w = image.shape[:2]
    bw, bh = box[2] * w, box[3] * h
    cx, cy = box[0] * w + bw / 2, box[1] * h + bh / 2
    if square:
        bw = bh = max(bw, bh)
    bw, bh = bw * sx, bh * sy
    x0, y0 = max(0, round(cx - bw / 2)), max(0, round(cy - bh / 2))
    x1, y1 = min(w, round(cx + bw / 2)), min(h, round(cy + bh / 2))
    return image[y0:y1, x0:x1]


def google_predictions(crops: list[np.ndarray], classes: dict[str, int]) -> np.ndarray:
    """Google's canned classifier on the hand embedding of each crop (its scores, part of the
    extractor's output: the same frozen networks as the trained model), mapped to our
    classes."""
    from gesturenet_lib.families.hand_landmarks.assets import (
        canned_onnx_bytes,
        embedder_onnx_bytes,
        landmark_onnx_bytes,
        lite_landmark_onnx_bytes,
        palm_onnx_bytes,
    )
    from gesturenet_lib.families.hand_landmarks.extractor import Extractor, build_extractor
    from gesturenet_lib.models.preprocessing import Preprocessing, to_input
    from gesturenet_lib.specs.experiment import LANDMARK_INPUT_SIZE, HandLandmarks

    size = LANDMARK_INPUT_SIZE
    extractor = Extractor(build_extractor(landmark_onnx_bytes(), HandLandmarks(),
                                          "channels_last", palm_onnx_bytes(),
                                          embedder_onnx=embedder_onnx_bytes(),
                                          canned_onnx=canned_onnx_bytes(),
                                          lite_onnx=lite_landmark_onnx_bytes()))
    prep = Preprocessing(size, size, 3, "channels_last", fit="letterbox")
    return google_classes(extractor(np.stack([to_input(c, prep) for c in crops])), classes)


def google_classes(raw: np.ndarray, classes: dict[str, int]) -> np.ndarray:
    """Google's canned gesture for each extractor row ``raw`` (its scores), mapped to our
    classes; "random" where no hand is present."""
    from gesturenet_lib.families.hand_landmarks.assets import CANNED_GESTURES
    from gesturenet_lib.families.hand_landmarks.layout import (
        CANNED_SIZE,
        CANNED_START,
        PRESENCE,
    )

    scores = raw[:, CANNED_START:CANNED_START + CANNED_SIZE]
    ours = [classes[GOOGLE_TO_OURS.get(CANNED_GESTURES[k], "random")]
            for k in np.argmax(scores, axis=1)]
    return np.where(raw[:, PRESENCE] >= 0.5, ours, classes["random"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, help="training epochs (default: the spec's)")
    parser.add_argument("--contender", nargs="*", default=[], metavar="KEY=VALUE",
                        help="model.hand_landmarks settings of a second model")
    parser.add_argument("--compare_fit", action="store_true",
                        help="also classify every cut stretched to the input")
    args = parser.parse_args()
    fits = ("stretch", "letterbox") if args.compare_fit else ("letterbox",)
    contender = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args.contender)}

    from gesturenet_lib.evaluation.metrics import classification_metrics
    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.models.preprocessing import load_rgb, to_input

    figures: dict = {"contender": contender}
    with tempfile.TemporaryDirectory(prefix="crop-fit-bench-") as tmp:
        models = {"spec": build_model(Path(tmp) / "spec", args.epochs)[0]}
        if contender:
            models["contender"] = build_model(Path(tmp) / "contender", args.epochs,
                                              contender)[0]
        kpi = kpi_users()
        hands = kpi_hands(kpi)
        photos = {p: load_rgb(str(p)) for p in {h[0] for h in hands}}
        figures.update(hands=len(hands), people=len(kpi))
        cut_crops = {name: [cut(photos[p], box, sx, sy, square) for p, box, _ in hands]
                     for name, (sx, sy, square) in CUTS.items()}
        for model_name, model in models.items():
            backend = load_backend(str(model), None, None)
            classes = backend.classes
            names = sorted(classes, key=classes.get)
            truth = np.array([classes[c] for _, _, c in hands])
            for name, crops in cut_crops.items():
                aspect = float(np.median([c.shape[1] / c.shape[0] for c in crops]))
                for fit in fits:
                    prep = dataclasses.replace(backend.preprocessing, fit=fit)
                    batch = np.stack([to_input(c, prep) for c in crops])
                    probs, found = backend.predict_with_hands(batch)
                    metrics = classification_metrics(truth, np.argmax(probs, axis=1), names)
                    row = {"macro_f1": metrics["macro_avg"]["f1"],
                           "recall": {c: metrics["per_class"][c]["recall"] for c in names},
                           "f1": {c: metrics["per_class"][c]["f1"] for c in names},
                           "no_hand": int((~np.asarray(found)).sum()),
                           "median_aspect_w_over_h": aspect}
                    figures[f"{model_name}: {name} / {fit}"] = row
                    recalls = " ".join(f"{c} {r:.2f}" for c, r in row["recall"].items())
                    print(f"{model_name:<9} {name:<28} {fit:<9} macro-F1 "
                          f"{row['macro_f1']:.3f}  no hand {row['no_hand']:3d}/{len(hands)}"
                          f"  recall: {recalls}")
        for name, crops in cut_crops.items():
            google = google_predictions(crops, classes)
            metrics = classification_metrics(truth, google, names)
            known = ["random", *GOOGLE_TO_OURS.values()]
            row = {"f1": {c: metrics["per_class"][c]["f1"] for c in known},
                   "support": {c: int(metrics["per_class"][c]["support"]) for c in known}}
            figures[f"google canned: {name}"] = row
            ours = figures[f"spec: {name} / letterbox"]["f1"]
            print(f"{name:<28} F1 ours / Google's: " + "  ".join(
                f"{c} {ours[c]:.2f}/{row['f1'][c]:.2f} (n={row['support'][c]})" for c in known))
    if args.compare_fit:
        for model_name in models:
            for name in CUTS:
                gain = (figures[f"{model_name}: {name} / letterbox"]["macro_f1"]
                        - figures[f"{model_name}: {name} / stretch"]["macro_f1"])
                print(f"{model_name}: {name}: letterbox - stretch = {gain:+.3f} macro-F1")
    write_results("crop_fit", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
