"""A small, clearly separable image dataset written as crops + a hand-made data.json, and a
train spec for it: enough for training tests to learn in seconds on a CPU."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

COLOURS = {"red": (40, 40, 220), "green": (40, 200, 40), "blue": (220, 60, 40)}  # BGR


def write_dataset(root: Path, per_class: int = 16, size: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    sets = {"train_set": [], "validation_set": [], "kpi_set": []}
    for label, bgr in COLOURS.items():
        for i in range(per_class):
            noise = rng.normal(0, 20, (size, size, 3))
            image = np.clip(np.array(bgr, float) + noise, 0, 255).astype(np.uint8)
            rel = f"crops/{label}/{i:03d}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / rel), image)
            split = "validation_set" if i % 4 == 0 else "train_set"
            sets[split].append({"bbox_path": rel, "label": label, "user_id": f"u{i}",
                                "full_image_path": rel,
                                "bbox_coordinates": [[0, 0], [size, 0], [0, size],
                                                     [size, size]]})
    doc = {name: {"images": images} for name, images in sets.items()}
    doc["classes"] = {name: i for i, name in enumerate(COLOURS)}
    path = root / "data.json"
    path.write_text(json.dumps(doc))
    return path


def train_spec(root: Path, epochs=(0, 6), num_layers: int = 6, data_format="channels_first",
               checkpointing: bool = True, **model) -> dict:
    stage = {"loss_fn": "categorical_crossentropy", "optimizer": "adam", "initial_lrate": 0.003,
             "decay_step_size": 50, "lr_drop_rate": 0.5, "num_layers_unfreeze": 0,
             "enable_checkpointing": checkpointing}
    return {
        "random_seed": 7, "batch_size": 8, "output_experiments_fld": str(root / "out"),
        "save_weights_path": "model",
        "trainer": {"top_training": {**stage, "stage_order": 1, "train_epochs": epochs[0]},
                    "finetuning": {**stage, "stage_order": 2, "train_epochs": epochs[1]}},
        "model": {"image_height": 32, "image_width": 32, "num_layers": num_layers,
                  "data_format": data_format, **model},
        "dataset": {"image_root_path": str(root), "data_path": str(root / "data.json"),
                    "classes": {name: i for i, name in enumerate(COLOURS)},
                    "num_classes": len(COLOURS),
                    "augmentation": {"horizontal_flip": True,
                                     "brightness_range": {"enable": True, "probability": 0.3,
                                                          "min_factor": 0.9, "max_factor": 1.1}}},
    }


def write_spec(root: Path, spec: dict, name: str = "train_spec.json") -> str:
    path = root / name
    path.write_text(json.dumps(spec))
    return str(path)


def train_colour_model(root: Path, key: str, per_class: int, epochs: int) -> tuple[str, str]:
    """Train on the colour dataset through the CLI; returns (spec file, model.tlt)."""
    from gesturenet_lib import cli

    write_dataset(root, per_class=per_class)
    spec = write_spec(root, train_spec(root, epochs=(0, epochs)))
    assert cli.main(["train", "-e", spec, "-k", key]) == 0
    return spec, str(root / "out/model/model.tlt")


def train_on_two_workers(spec: str, key: str, timeout: int = 400) -> tuple[list[int], list[str]]:
    """``gesturenet train`` as two workers on 127.0.0.1 (TF_CONFIG, as Kubeflow sets it):
    their exit codes and outputs."""
    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    hosts = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "gesturenet_lib", "train", "-e", spec, "-k", key],
        env=dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for index in range(2)]
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    return [p.returncode for p in procs], outputs
