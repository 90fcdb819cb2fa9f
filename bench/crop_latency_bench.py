"""Benchmark: one crop at a time (batch 1), the exported crop -> class graph against MediaPipe
Hands on the same crop files, in one run.

hand_landmarks models are trained on everyone but the sample's kpi people, one per
`localization` (`palm_detector`, the default; `landmarks_first`; `upright_first`), and
exported; the kpi people's 89 hands are cut from their photos at 1.3x (dataset_convert's cut)
and 2.0x. Per cut, the median and mean milliseconds per crop with preprocessing (ONNX Runtime,
batch 1), the share of crops `landmarks_first` reads in the lite network's box and the share
`upright_first` reads as they are, beside MediaPipe Hands 0.10.21 (static images, 1 hand,
model_complexity 1; its `process` time; the throwaway venv of hand_localization_bench), which
has the same two networks but no gesture embedder. Goal: <= 0.7 of MediaPipe's time.

    .venv/bin/python bench/crop_latency_bench.py [--mediapipe_venv DIR]

Writes bench/results/crop_latency.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np
from hand_localization_bench import (
    KEY,
    MEDIAPIPE,
    exported_times,
    kpi_model,
    run_mediapipe,
    start,
)
from results_file import write_results

from gesturenet_lib.families.hand_landmarks.palm_graph import REREAD_OK, UPRIGHT_OK

CUTS = (1.3, 2.0)
LOCALIZATIONS = ("palm_detector", "landmarks_first", "upright_first")


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


def summary(seconds: list[float]) -> dict:
    return {"median_ms": round(statistics.median(seconds) * 1000, 2),
            "mean_ms": round(float(np.mean(seconds)) * 1000, 2)}


def main() -> int:
    python, root = start(__doc__, "crop-latency")
    figures: dict = {"cores": os.cpu_count(), "mediapipe": MEDIAPIPE, "cuts": {}}
    models = {}
    for localization in LOCALIZATIONS:
        exp, models[localization], _, classes = kpi_model(root, localization)
    for ratio in CUTS:
        files = cut_crops(exp, classes, ratio, root / f"crops_{ratio}")
        row: dict = {"crops": len(files)}
        for localization in LOCALIZATIONS:
            row[localization] = summary(exported_times(models[localization], files))
        row["landmarks_first"]["read_in_the_lite_box"] = taken_share(
            models["landmarks_first"], files, REREAD_OK)
        row["upright_first"]["read_as_they_are"] = taken_share(models["upright_first"], files,
                                                               UPRIGHT_OK)
        row["mediapipe_hands"] = summary([a["seconds"] for a in run_mediapipe(python, files, 1)])
        for localization in LOCALIZATIONS:
            row[localization]["ratio_vs_mediapipe_median"] = round(
                row[localization]["median_ms"] / row["mediapipe_hands"]["median_ms"], 3)
            row[localization]["ratio_vs_mediapipe_mean"] = round(
                row[localization]["mean_ms"] / row["mediapipe_hands"]["mean_ms"], 3)
        figures["cuts"][str(ratio)] = row
        print(ratio, json.dumps(row), flush=True)
    print(json.dumps(figures, indent=1))
    write_results("crop_latency", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
