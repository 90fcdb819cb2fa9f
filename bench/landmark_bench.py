"""Benchmark: hand_landmarks vs resnet_vanilla 18 on the bundled HaGRID sample, person-disjoint
5-fold cross-validation, for GestureNet's 6 classes and for all 18 HaGRID gestures (HaGRID's
`no_gesture` hands become `random`, so the 18-class run has 19 classes).

Per class map: the sample is imported, converted once with the landmark dataset spec's crops
(bbox_enlarge_ratio 1.3, no kpi users, `--k_folds 5`), and for every fold each family trains on
the other folds' people and predicts the fold's people with the same backends evaluate uses.
Pooled over the folds: accuracy, macro-F1, the majority-class baseline (the training folds'
most frequent class), the hand-detection rate (all crops, and crops showing a gesture), then
the batch-1 latency of the merged ONNX model on this CPU. Targets: hand_landmarks macro-F1
>= 0.95 (6 classes), >= 0.93 (18), latency <= 15 ms.

    .venv/bin/python bench/landmark_bench.py [--resnet_epochs 10 --resnet_size 128]
                                             [--skip_resnet] [--contender KEY=VALUE ...]
                                             [--class_maps 6 18] [--sampling JSON]

--contender trains a second hand_landmarks model per fold in the same run, with those
`model.hand_landmarks` settings changed (e.g. `augment_rotation=20 augment_jitter=0.02`), so a
setting is judged against the spec's as it is, on the same folds. --sampling replaces the
dataset experiment spec's `sampling` object (e.g. '{"use_class_weights": true, "class_weights":
{...}}'), so class resampling is judged on the same folds as well (one run per setting: the
conversion differs). --class_maps runs only the named class maps.

Writes bench/results/landmark.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results_file import write_results
from timing import latencies

REPO = Path(__file__).resolve().parents[1]

KEY = "bench-key"
FOLDS = 5
HAGRID_GESTURES = ("call", "dislike", "fist", "four", "like", "mute", "ok", "one", "palm",
                   "peace", "peace_inverted", "rock", "stop", "stop_inverted", "three", "three2",
                   "two_up", "two_up_inverted")
CLASS_MAPS = {
    "6": None,  # the importer's default: GestureNet's six classes
    "18": {**{g: g for g in HAGRID_GESTURES}, "no_gesture": "random"},
}


def prepare(root: Path, class_map: dict | None, sampling: dict | None = None
            ) -> tuple[Path, dict[str, int]]:
    """Import + convert with k folds; returns the workspace and the class map."""
    import gesturenet_lib as gn

    specs = root / "specs"
    specs.mkdir(parents=True)
    map_file = None
    if class_map is not None:
        map_file = specs / "class_map.json"
        map_file.write_text(json.dumps(class_map))
    sample = REPO / "data" / "hagrid-sample"
    gn.run(gn.ImportRequest("hagrid", str(sample / "dataset"),
                            str(root / "workspace" / "original" / "hagrid"),
                            str(sample / "annotations"), str(map_file) if map_file else None))
    dataset = json.loads((REPO / "specs" / "landmark_dataset_config.json").read_text())
    dataset["kpi_users"] = []
    (specs / "dataset_config.json").write_text(json.dumps(dataset))
    experiment = json.loads((REPO / "specs" / "dataset_experiment_config.json").read_text())
    experiment["set_list"]["kpi"] = []
    if class_map is not None:
        experiment["classes"] = sorted(set(class_map.values()))
        experiment["sampling"]["class_weights"] = {}
    if sampling is not None:
        experiment["sampling"] = sampling
    (specs / "dataset_experiment_config.json").write_text(json.dumps(experiment))
    gn.run(gn.ConvertRequest.from_files(str(specs / "dataset_config.json"),
                                              str(specs / "dataset_experiment_config.json"),
                                              str(root / "workspace" / "data.json"), "cv",
                                              k_folds=FOLDS, write_tfds=False))
    doc = json.loads((root / "workspace" / "data.json").read_text())
    return root / "workspace", doc["classes"]


CONTENDER = "hand_landmarks_contender"


def train_spec(workspace: Path, family: str, classes: dict[str, int], fold: int,
               args) -> Path:
    source = "train_spec.json" if family == "resnet_vanilla" else "landmark_train_spec.json"
    spec = json.loads((REPO / "specs" / source).read_text())
    if family == CONTENDER:
        spec["model"].setdefault("hand_landmarks", {}).update(args.contender)
    data = str(workspace / f"data_fold{fold}.json")
    spec["dataset"].update(classes=classes, num_classes=len(classes), data_path=data,
                           image_root_path=str(workspace))
    spec["evaluator"]["data_path"] = data
    spec["output_experiments_fld"] = str(workspace / f"{family}_fold{fold}")
    if family == "resnet_vanilla":
        spec["model"].update(image_height=args.resnet_size, image_width=args.resnet_size)
        spec["trainer"]["finetuning"]["train_epochs"] = args.resnet_epochs
    path = workspace / f"{family}_fold{fold}.json"
    path.write_text(json.dumps(spec))
    return path


def predict_fold(model_path: str, workspace: Path, fold: int, classes: dict[str, int]):
    """(truth, predicted index as evaluate counts it, hand found or None) on the fold's
    held-out people."""
    from gesturenet_lib.evaluation.evaluate import counted_index
    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.inference.run import Source, predict_sources

    doc = json.loads((workspace / f"data_fold{fold}.json").read_text())
    entries = doc["validation_set"]["images"]
    backend = load_backend(model_path, KEY, None)
    sources = [Source(str(workspace / e["bbox_path"]), e["bbox_path"]) for e in entries]
    predictions = predict_sources(backend, sources, 64)
    truth = np.array([classes[e["label"]] for e in entries])
    pred = np.array([counted_index(p, classes) for p in predictions])
    hands = [p.hand_found for p in predictions]
    return truth, pred, (None if hands[0] is None else np.array(hands, bool))


def majority_of_training(workspace: Path, fold: int, classes: dict[str, int]) -> int:
    doc = json.loads((workspace / f"data_fold{fold}.json").read_text())
    labels = [classes[e["label"]] for e in doc["train_set"]["images"]]
    return int(np.bincount(labels, minlength=len(classes)).argmax())


def scores(truth, pred, names) -> dict:
    from gesturenet_lib.evaluation.metrics import classification_metrics

    m = classification_metrics(truth, pred, names)
    return {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_avg"]["f1"], 4)}


def merged_latency_ms(model_path: str) -> float:
    from gesturenet_lib.export.exporter import ExportRequest, source_onnx
    from gesturenet_lib.ort_cpu import cpu_session

    onnx_bytes, _, prep = source_onnx(ExportRequest(model_path, KEY, "unused.onnx"), None)
    session = cpu_session(onnx_bytes)   # as gesturenet inference runs it
    batch = np.random.default_rng(0).random((1, 3, prep.image_height, prep.image_width),
                                            dtype=np.float32)
    samples = latencies(lambda x: session.run(None, {"input_1": x}), batch, runs=200)
    return round(statistics.median(samples) * 1000, 2)


def run_map(name: str, class_map, args, root: Path) -> tuple[dict, str]:
    import gesturenet_lib as gn

    workspace, classes = prepare(root / f"classes{name}", class_map, args.sampling)
    names = sorted(classes, key=classes.get)
    families = (["hand_landmarks"] + ([CONTENDER] if args.contender else [])
                + ([] if args.skip_resnet else ["resnet_vanilla"]))
    pooled = {f: ([], [], []) for f in families}
    baseline = ([], [])
    walls = {f: 0.0 for f in families}
    model_path = ""
    for fold in range(FOLDS):
        for family in families:
            start = time.perf_counter()
            exp = gn.load_experiment(str(train_spec(workspace, family, classes, fold, args)))
            result = gn.run(gn.TrainRequest(exp, KEY))
            truth, pred, hands = predict_fold(result.model_path, workspace, fold, classes)
            walls[family] += time.perf_counter() - start
            pooled[family][0].append(truth)
            pooled[family][1].append(pred)
            if hands is not None:
                pooled[family][2].append(hands)
            if family == "hand_landmarks":
                model_path = result.model_path
        majority = majority_of_training(workspace, fold, classes)
        baseline[0].append(truth)
        baseline[1].append(np.full_like(truth, majority))
        print(f"classes {name}: fold {fold + 1}/{FOLDS} done", flush=True)
    figures = {"classes": len(names), "crops": int(sum(len(t) for t in baseline[0]))}
    for family in families:
        truth, pred = np.concatenate(pooled[family][0]), np.concatenate(pooled[family][1])
        figures[family] = {**scores(truth, pred, names), "train_and_predict_s":
                           round(walls[family], 1)}
        if pooled[family][2]:
            hands = np.concatenate(pooled[family][2])
            gesture = truth != classes.get("random", -1)
            figures[family]["hand_detection_rate"] = round(float(hands.mean()), 4)
            figures[family]["hand_detection_rate_gestures"] = round(
                float(hands[gesture].mean()), 4)
    figures["majority_baseline"] = scores(np.concatenate(baseline[0]),
                                          np.concatenate(baseline[1]), names)
    return figures, model_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resnet_epochs", type=int, default=10)
    parser.add_argument("--resnet_size", type=int, default=128)
    parser.add_argument("--skip_resnet", action="store_true")
    parser.add_argument("--contender", nargs="*", default=[], metavar="KEY=VALUE",
                        help="model.hand_landmarks settings of a second hand_landmarks model")
    parser.add_argument("--class_maps", nargs="*", choices=sorted(CLASS_MAPS),
                        default=list(CLASS_MAPS))
    parser.add_argument("--sampling", type=json.loads, default=None,
                        help="the dataset experiment spec's sampling object, as JSON")
    args = parser.parse_args()
    args.contender = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args.contender)}
    logging.basicConfig(level=logging.WARNING)

    root = Path(tempfile.mkdtemp(prefix="gesturenet-landmark-bench-"))
    figures: dict = {"folds": FOLDS, "cores": os.cpu_count(), "contender": args.contender,
                     "sampling": args.sampling,
                     "resnet": None if args.skip_resnet else
                     f"resnet18 from scratch, {args.resnet_size}px, {args.resnet_epochs} epochs"}
    model_path = ""
    for name in args.class_maps:
        figures[f"classes_{name}"], model_path = run_map(name, CLASS_MAPS[name], args, root)
    figures["merged_onnx_latency_ms_batch1"] = merged_latency_ms(model_path)
    goals = {"6": 0.95, "18": 0.93}
    figures["targets_met"] = {
        **{f"macro_f1_{n} >= {goals[n]}": figures[f"classes_{n}"]["hand_landmarks"]["macro_f1"]
           >= goals[n] for n in args.class_maps},
        "latency <= 15 ms": figures["merged_onnx_latency_ms_batch1"] <= 15,
    }
    print(json.dumps(figures, indent=1))
    write_results("landmark", figures)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
