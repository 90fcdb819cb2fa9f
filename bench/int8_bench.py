"""Benchmark: ONNX Runtime FP32 vs INT8 on this CPU for the model `make demo-cli` trained on the
HaGRID sample: median latency at batch 1, throughput at batch 64, top-1 agreement and kpi
accuracy, in one run. Target: INT8 throughput >= 1.5x FP32 with accuracy within 1 point.

    make demo-cli   # once: imports, converts and trains with the CLI (workspace/)
    .venv/bin/python bench/int8_bench.py [--model workspace/experiments/model/model.tlt]

Calibration uses the train set's crops (never the kpi set). Writes bench/results/int8.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from results_file import write_results
from timing import latencies

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(REPO / "workspace/experiments/model/model.tlt"))
    parser.add_argument("--key", default=os.environ.get("GESTURENET_KEY", "demo-key"))
    parser.add_argument("--data_json", default=str(REPO / "workspace/data.json"))
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--calibrator", default="entropy",
                        choices=["entropy", "percentile", "minmax"])
    args = parser.parse_args()
    if not Path(args.model).exists():
        print(f"{args.model} not found: run `make demo-cli` first", file=sys.stderr)
        return 2

    from gesturenet_lib.export.exporter import ExportRequest, export
    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.models.preprocessing import load_rgb, to_input

    root = Path(args.data_json).parent
    doc = json.loads(Path(args.data_json).read_text())
    with tempfile.TemporaryDirectory(prefix="gesturenet-int8-") as tmp:
        cal_dir = Path(tmp) / "cal"
        for entry in doc["train_set"]["images"][:160]:
            target = cal_dir / Path(entry["bbox_path"]).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((root / entry["bbox_path"]).read_bytes())
        export(ExportRequest(model=args.model, key=args.key, output=f"{tmp}/model.onnx",
                             data_type="int8", cal_image_dir=str(cal_dir),
                             cal_cache_file=f"{tmp}/cal.bin", batch_size=16, batches=10,
                             calibrator=args.calibrator))
        fp32 = load_backend(f"{tmp}/model.onnx", None, None)
        int8 = load_backend(f"{tmp}/model_int8.onnx", None, None)
        classes = fp32.classes
        kpi = doc["kpi_set"]["images"]
        x = np.stack([to_input(load_rgb(str(root / e["bbox_path"])), fp32.preprocessing)
                      for e in kpi])
        truth = np.array([classes[e["label"]] for e in kpi])
        p32, p8 = fp32.predict(x).argmax(1), int8.predict(x).argmax(1)
        one = x[:1]
        many = np.concatenate([x] * (64 // len(x) + 1))[:64]
        figures = {"images": len(kpi), "cores": os.cpu_count(), "calibrator": args.calibrator}
        for name, backend in (("fp32", fp32), ("int8", int8)):
            one_s = statistics.median(latencies(backend.predict, one, args.runs, warmup=5))
            many_s = statistics.median(latencies(backend.predict, many,
                                                 max(5, args.runs // 10), warmup=5))
            figures[name] = {"batch1_median_ms": round(one_s * 1e3, 2),
                             "batch64_images_per_s": round(64 / many_s, 1)}
    figures["top1_agreement"] = round(float(np.mean(p32 == p8)), 4)
    figures["kpi_accuracy_fp32"] = round(float(np.mean(p32 == truth)), 4)
    figures["kpi_accuracy_int8"] = round(float(np.mean(p8 == truth)), 4)
    figures["int8_vs_fp32_throughput"] = round(
        figures["int8"]["batch64_images_per_s"] / figures["fp32"]["batch64_images_per_s"], 2)
    figures["int8_vs_fp32_batch1"] = round(
        figures["fp32"]["batch1_median_ms"] / figures["int8"]["batch1_median_ms"], 2)
    print(json.dumps(figures, indent=1))
    write_results("int8", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
