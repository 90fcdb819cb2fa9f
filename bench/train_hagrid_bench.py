"""Benchmark: accuracy on real photos. The bundled HaGRID sample is imported and converted with
the example specs (kpi users held out, never trained on), ResNet-18 at 160x160 is trained from
scratch with the example train spec, and the kpi set is scored: accuracy, macro-F1 and per-class
F1 beside the majority-class baseline, and the wall time. No threshold.

    .venv/bin/python bench/train_hagrid_bench.py [--epochs 30]

Writes bench/results/train_hagrid.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results_file import write_results

REPO = Path(__file__).resolve().parents[1]


def f1_scores(truth: np.ndarray, pred: np.ndarray, n: int) -> list[float]:
    scores = []
    for c in range(n):
        tp = np.sum((pred == c) & (truth == c))
        fp, fn = np.sum((pred == c) & (truth != c)), np.sum((pred != c) & (truth == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    import gesturenet_lib as gn
    from gesturenet_lib.models.model_file import load_model_file
    from gesturenet_lib.training.data import make_dataset, read_sets

    root = Path(tempfile.mkdtemp(prefix="gesturenet-hagrid-bench-"))
    specs = root / "specs"
    shutil.copytree(REPO / "specs", specs)
    sample = REPO / "data" / "hagrid-sample"
    gn.run(gn.ImportRequest("hagrid", str(sample / "dataset"),
                            str(root / "workspace" / "original" / "hagrid"),
                            str(sample / "annotations")))
    gn.run(gn.ConvertRequest.from_files(str(specs / "dataset_config.json"),
                                              str(specs / "dataset_experiment_config.json"),
                                              str(root / "workspace" / "data.json"), "v1"))
    spec = json.loads((specs / "train_spec.json").read_text())
    spec["trainer"]["finetuning"]["train_epochs"] = args.epochs
    (specs / "train_spec.json").write_text(json.dumps(spec))

    start = time.perf_counter()
    result = gn.run(gn.TrainRequest(gn.load_experiment(str(specs / "train_spec.json")),
                                    "bench-key"))
    wall = time.perf_counter() - start

    loaded = load_model_file(result.model_path, "bench-key")
    classes = loaded.classes
    names = sorted(classes, key=classes.get)
    kpi = read_sets(str(root / "workspace" / "data.json"), str(root / "workspace"), classes,
                    ("kpi_set",))["kpi_set"]
    ds = make_dataset(kpi, loaded.preprocessing, len(classes), 32, None, shuffle=False, seed=0)
    probs = loaded.model.predict(ds, verbose=0)
    truth, pred = np.array(kpi.labels), probs.argmax(1)
    f1 = f1_scores(truth, pred, len(names))
    majority = np.bincount(np.array(read_sets(
        str(root / "workspace" / "data.json"), str(root / "workspace"), classes,
        ("train_set",))["train_set"].labels), minlength=len(names)).argmax()
    base_f1 = f1_scores(truth, np.full_like(truth, majority), len(names))
    figures = {
        "model": "resnet18, 3x160x160, from scratch", "epochs": args.epochs,
        "kpi_images": int(len(truth)), "cores": os.cpu_count(),
        "kpi_accuracy": round(float(np.mean(truth == pred)), 4),
        "kpi_macro_f1": round(float(np.mean(f1)), 4),
        "per_class_f1": {n: round(v, 4) for n, v in zip(names, f1, strict=True)},
        "majority_class": names[majority],
        "majority_accuracy": round(float(np.mean(truth == majority)), 4),
        "majority_macro_f1": round(float(np.mean(base_f1)), 4),
        "train_wall_s": round(wall, 1),
        "final_val_accuracy": result.history[-1]["val_accuracy"],
    }
    print(json.dumps(figures, indent=1))
    write_results("train_hagrid", figures)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
