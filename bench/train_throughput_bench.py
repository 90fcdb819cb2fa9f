"""Benchmark: training throughput of `gesturenet train` (images/s, steady state) beside the
pure compute bound measured in the same run: the same model, batch size and training loop on
in-memory tensors (no decoding, resizing or augmentation).

    .venv/bin/python bench/train_throughput_bench.py [--images 384] [--epochs 3] [--size 160]

The data are generated crops (PNG files of varied sizes and a data.json), trained with the
example spec's model (ResNet-18, channels_first) and every augmentation enabled. Steady state:
the epochs after the first (which includes tracing and filling the cache). Target: ratio >= 0.90.
Writes bench/results/train_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from results_file import write_results

REPO = Path(__file__).resolve().parents[1]


def write_crops(root: Path, n: int, classes: list[str]) -> Path:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    images = []
    for i in range(n):
        side = int(rng.integers(90, 260))
        pixels = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
        rel = f"crops/{i:05d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), pixels)
        images.append({"bbox_path": rel, "label": classes[i % len(classes)], "user_id": str(i)})
    doc = {"train_set": {"images": images}, "validation_set": {"images": []},
           "kpi_set": {"images": []}, "classes": {c: i for i, c in enumerate(classes)}}
    (root / "data.json").write_text(json.dumps(doc))
    return root / "data.json"


def compute_bound(spec, steps: int, repeats: int) -> float:
    """Images/s of the same loop on one in-memory batch (no input pipeline)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from gesturenet_lib.families.resnet_vanilla.network import build_resnet, input_shape
    from gesturenet_lib.training.loop import run_stage
    from gesturenet_lib.training.trainer import make_loss, make_optimizer, set_trainable

    stage = spec.trainer.finetuning
    model = build_resnet(spec.model, spec.dataset.num_classes)
    set_trainable(model, stage.num_layers_unfreeze)
    model.compile(optimizer=make_optimizer(stage, steps * repeats),
                  loss=make_loss(stage), metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((spec.batch_size, *input_shape(spec.model)), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, spec.dataset.num_classes, spec.batch_size),
                                   spec.dataset.num_classes)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    rates = []
    run_stage(model, tf.distribute.get_strategy(), ds, None, steps, 0, spec.batch_size,
              stage.loss_fn, 0, repeats, lambda r: rates.append(r.images_per_s))
    return statistics.median(rates[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args()

    import gesturenet_lib as gn
    from gesturenet_lib.specs import dumps, load_experiment, load_experiment_spec, parse
    from gesturenet_lib.specs.experiment import ExperimentSpec

    root = Path(tempfile.mkdtemp(prefix="gesturenet-train-bench-"))
    example = json.loads((REPO / "specs" / "train_spec.json").read_text())
    classes = sorted(example["dataset"]["classes"], key=example["dataset"]["classes"].get)
    write_crops(root, args.images, classes)
    example["output_experiments_fld"] = str(root / "out")
    example["dataset"].update(data_path=str(root / "data.json"), image_root_path=str(root))
    example["model"].update(image_height=args.size, image_width=args.size)
    example["trainer"]["top_training"]["train_epochs"] = 0
    example["trainer"]["finetuning"].update(train_epochs=args.epochs, num_layers_unfreeze=0,
                                            enable_checkpointing=False)
    spec = parse(ExperimentSpec, example)
    spec_file = root / "train_spec.json"
    spec_file.write_text(dumps(spec))

    start = time.perf_counter()
    result = gn.run(gn.TrainRequest(load_experiment(str(spec_file)), "bench-key"))
    wall = time.perf_counter() - start
    pipeline = statistics.median(r["images_per_s"] for r in result.history[1:])
    steps = -(-args.images // spec.batch_size)
    bound = compute_bound(load_experiment_spec(str(spec_file)), steps, args.epochs)
    figures = {
        "model": f"resnet{spec.model.num_layers}", "input": [3, args.size, args.size],
        "batch_size": spec.batch_size, "images": args.images, "epochs": args.epochs,
        "augmentations": "all enabled (example spec)", "cores": os.cpu_count(),
        "machine": platform.machine(),
        "train_images_per_s": round(pipeline, 1), "compute_bound_images_per_s": round(bound, 1),
        "ratio": round(pipeline / bound, 3), "train_wall_s": round(wall, 1),
        "per_epoch_images_per_s": [r["images_per_s"] for r in result.history],
    }
    print(f"gesturenet train    {pipeline:7.1f} images/s (steady state)")
    print(f"compute bound       {bound:7.1f} images/s (same model, batch, loop; in memory)")
    print(f"ratio               {pipeline / bound:7.3f}  (target >= 0.90)")
    write_results("train_throughput", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
