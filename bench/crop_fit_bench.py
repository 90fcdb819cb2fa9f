"""Benchmark: crops of any shape. A hand_landmarks model is trained on the bundled sample with
the project's own specs (the kpi people held out; it trains on dataset_convert's square 1.3x
crops), then the kpi people's hands are re-cut from their photos the ways other tools cut
them: HaGRID's own box as annotated (tight, not square), that box stretched 1.5x along its
width and along its height, and dataset_convert's square 1.3x cut for reference. The same
exported model classifies every cut twice in one run: crops stretched to the input (the
baseline, what every model did before ``fit`` existed) and letterboxed (the hand_landmarks
default now). Prints macro-F1, per-class recall and "no hand found" per cut and fit.
``--contender KEY=VALUE ...`` also trains a second model with those model.hand_landmarks
settings changed, measured the same way in the same run.

    .venv/bin/python bench/crop_fit_bench.py [--epochs N] [--contender KEY=VALUE ...]

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
        "box 1.5x tall": (1.0, 1.5, False), "square 1.3x (training cut)": (1.3, 1.3, True)}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, help="training epochs (default: the spec's)")
    parser.add_argument("--contender", nargs="*", default=[], metavar="KEY=VALUE",
                        help="model.hand_landmarks settings of a second model")
    args = parser.parse_args()
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
        for model_name, model in models.items():
            backend = load_backend(str(model), None, None)
            classes = backend.classes
            names = sorted(classes, key=classes.get)
            truth = np.array([classes[c] for _, _, c in hands])
            for name, (sx, sy, square) in CUTS.items():
                crops = [cut(photos[p], box, sx, sy, square) for p, box, _ in hands]
                aspect = float(np.median([c.shape[1] / c.shape[0] for c in crops]))
                for fit in ("stretch", "letterbox"):
                    prep = dataclasses.replace(backend.preprocessing, fit=fit)
                    batch = np.stack([to_input(c, prep) for c in crops])
                    probs, found = backend.predict_with_hands(batch)
                    metrics = classification_metrics(truth, np.argmax(probs, axis=1), names)
                    row = {"macro_f1": metrics["macro_avg"]["f1"],
                           "recall": {c: metrics["per_class"][c]["recall"] for c in names},
                           "no_hand": int((~np.asarray(found)).sum()),
                           "median_aspect_w_over_h": aspect}
                    figures[f"{model_name}: {name} / {fit}"] = row
                    recalls = " ".join(f"{c} {r:.2f}" for c, r in row["recall"].items())
                    print(f"{model_name:<9} {name:<28} {fit:<9} macro-F1 "
                          f"{row['macro_f1']:.3f}  no hand {row['no_hand']:3d}/{len(hands)}"
                          f"  recall: {recalls}")
    for model_name in models:
        for name in CUTS:
            gain = (figures[f"{model_name}: {name} / letterbox"]["macro_f1"]
                    - figures[f"{model_name}: {name} / stretch"]["macro_f1"])
            print(f"{model_name}: {name}: letterbox - stretch = {gain:+.3f} macro-F1")
    write_results("crop_fit", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
