"""Benchmark: per-backend latency and throughput on ResNet-18 3x160x160 (the example spec's
model; weights do not change the timing): median latency at batch 1 and throughput at batch
64 for Keras (a tf.function) and ONNX Runtime FP32 (CPU), in one run, with the ratio to Keras.
Target: ONNX Runtime FP32 >= 1.8x Keras at batch 1. TensorRT is timed only where TensorRT and a
GPU exist (not on this machine).

    .venv/bin/python bench/inference_bench.py [--runs 200]

Writes bench/results/inference.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np
from results_file import write_results
from timing import latencies

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    from gesturenet_lib.export.onnx_export import keras_to_onnx
    from gesturenet_lib.families import family
    from gesturenet_lib.families.resnet_vanilla.network import build_resnet, input_shape
    from gesturenet_lib.inference.backends import KerasBackend, OnnxBackend
    from gesturenet_lib.specs import load_experiment_spec

    spec = load_experiment_spec(str(REPO / "specs" / "train_spec.json"))
    prep = family(spec.model.base_model).preprocessing(spec.model)
    classes = dict(spec.dataset.classes)
    model = build_resnet(spec.model, spec.dataset.num_classes)
    backends = {"keras": KerasBackend(model, classes, prep),
                "onnxruntime_fp32": OnnxBackend(keras_to_onnx(model, {}), classes, prep,
                                                "bench")}
    rng = np.random.default_rng(0)
    shape = input_shape(spec.model)
    one = rng.random((1, *shape), dtype=np.float32)
    many = rng.random((64, *shape), dtype=np.float32)
    figures = {"model": "resnet18 3x160x160", "cores": os.cpu_count(), "runs": args.runs}
    for name, backend in backends.items():
        lat = statistics.median(latencies(backend.predict, one, args.runs)) * 1000
        thr = 64 / statistics.median(latencies(backend.predict, many, max(5, args.runs // 20)))
        figures[name] = {"batch1_median_ms": round(lat, 2), "batch64_images_per_s": round(thr, 1)}
        print(f"{name:<18} batch 1: {lat:7.2f} ms   batch 64: {thr:7.1f} images/s")
    ratio = figures["keras"]["batch1_median_ms"] / figures["onnxruntime_fp32"]["batch1_median_ms"]
    figures["onnxruntime_vs_keras_batch1"] = round(ratio, 2)
    print(f"ONNX Runtime FP32 vs Keras at batch 1: {ratio:.2f}x  (target >= 1.8)")
    write_results("inference", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
