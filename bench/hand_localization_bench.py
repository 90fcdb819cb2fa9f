"""Benchmark: how the hand is found against how the crop was cut, against the head as it was
before, against MediaPipe's own hand solution and against Google's canned gesture classifier,
in one run.

1. Any cut. The bundled sample is converted with the landmark dataset spec (`--k_folds 5`,
   person-disjoint, no kpi people). For every fold two hand_landmarks models train on the
   other folds' 1.3x crops: the spec as it is ("spec") and the head as it was before
   ("before": the raw landmark features, the palm detector, crops stretched to the input, no
   second look); the fold's people are re-cut from their full images the ways other tools cut
   them: the box as annotated (tight, not square), that box 1.5x wide and 1.5x tall, squares
   of 1.0x, 1.3x (the training cut), 2.0x and 3.0x, and the whole frame given as a crop.
   Pooled over the
   folds, per cut and model: macro-F1, per-class recall and hands found on the gesture crops
   (a crop where no hand is found counts as random, as evaluate counts it). Goals, for the
   spec's model at every cut but the whole frame (which belongs to ``--full_frame``):
   macro-F1 within 0.02 of the 1.3x figure, every gesture's recall >= 0.9.
2. Google's baseline on the same crops: MediaPipe's canned gesture classifier on the spec
   model's own hand embedding of each crop (Thumb_Up, Victory, Open_Palm, Closed_Fist; the
   rest as random), per-class F1 with counts beside ours. Goal: ours >= Google's - 0.01 on
   every class both know, at every cut but the whole frame.
3. Against MediaPipe: the same crop files through `mediapipe==0.10.21`'s `solutions.hands`
   (static images, one hand, model_complexity 1), installed into a throwaway venv here (it
   pins numpy < 2): hands found, the mean landmark distance between its landmarks and the
   spec model's (normalised by the diagonal of its landmarks' extent), and the median
   per-image latency beside ours (the exported ONNX model, crop -> class, batch 1, with
   preprocessing; `bench/crop_latency_bench.py` times it in rounds).
4. Full frames of the sample's kpi people (a model trained on everyone else): hand recall,
   precision and gesture macro-F1 of `evaluate --full_frame`, and MediaPipe's hand recall on
   the same frames (up to 4 hands, boxes by the same rule as ours). Goal: recall >= 0.98,
   precision >= 0.97, macro-F1 >= 0.95.

    .venv/bin/python bench/hand_localization_bench.py [--mediapipe_venv DIR]
                                                      [--contender KEY=VALUE ...]

``--contender`` trains a third model per fold with those model.hand_landmarks settings
changed (e.g. ``second_look_border=0``), measured like the others.

Writes bench/results/hand_localization.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from crop_fit_bench import CUTS as BOX_CUTS
from crop_fit_bench import GOOGLE_TO_OURS, cut, google_classes
from landmark_bench import FOLDS, KEY, prepare
from results_file import write_results

REPO = Path(__file__).resolve().parents[1]

FRAME = "whole frame"
CUTS = (*BOX_CUTS, FRAME)
REFERENCE = "square 1.3x (training cut)"
# model settings of each contender: the spec's own, and the head as it was before
CONTENDERS = {"spec": {},
              "before": {"input_fit": "stretch",
                         "hand_landmarks": {"localization": "palm_detector",
                                            "features": "landmarks",
                                            "second_look_border": 0}}}
MEDIAPIPE = "mediapipe==0.10.21"


def landmark_spec(workspace: Path, data_json: Path, classes: dict[str, int], name: str,
                  model: dict | None = None, seed: int | None = None) -> Path:
    """The project's landmark train spec on ``data_json``, with ``model`` settings changed
    (its "hand_landmarks" entry updates model.hand_landmarks) and ``seed`` as random_seed."""
    spec = json.loads((REPO / "specs" / "landmark_train_spec.json").read_text())
    if seed is not None:
        spec["random_seed"] = seed
    spec["dataset"].update(classes=classes, num_classes=len(classes), data_path=str(data_json),
                           image_root_path=str(workspace))
    spec["evaluator"]["data_path"] = str(data_json)
    changes = dict(model or {})
    spec["model"]["hand_landmarks"].update(changes.pop("hand_landmarks", {}))
    spec["model"].update(changes)
    spec["output_experiments_fld"] = str(workspace / name)
    path = workspace / f"{name}.json"
    path.write_text(json.dumps(spec))
    return path


def cut_fold(workspace: Path, fold: int, out: Path) -> tuple[dict[str, list[str]], list[str]]:
    """The fold's held-out people re-cut from their full images at every cut: {cut: crop
    files}, labels."""
    import cv2

    from gesturenet_lib.data.dataset_file import read_dataset_file
    from gesturenet_lib.models.preprocessing import load_rgb

    entries = read_dataset_file(str(workspace / f"data_fold{fold}.json")).entries(
        "validation_set", crops=False, frames=True)
    files: dict[str, list[str]] = {c: [] for c in CUTS}
    for i, entry in enumerate(entries):
        rgb = load_rgb(str(workspace / entry.full_image_path))
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = entry.hand_box()
        box = [x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h]
        for name in CUTS:
            crop = rgb if name == FRAME else cut(rgb, box, *BOX_CUTS[name])
            path = out / f"cut{CUTS.index(name)}" / f"fold{fold}_{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            files[name].append(str(path))
    return files, [e.label for e in entries]


def predict(model_path: str, files: list[str], classes: dict[str, int]):
    """(predicted index as evaluate counts it, hand found, our landmarks in crop pixels,
    Google's canned class on the model's own embedding of each crop)."""
    from gesturenet_lib.families.hand_landmarks.extractor import hand_found
    from gesturenet_lib.families.hand_landmarks.layout import POINTS_END
    from gesturenet_lib.inference.loading import load_backend
    from gesturenet_lib.models.preprocessing import load_rgb, to_input

    backend = load_backend(model_path, KEY, None)
    prep = backend.preprocessing
    index, found, points, google = [], [], [], []
    for start in range(0, len(files), 32):
        crops = [load_rgb(f) for f in files[start:start + 32]]
        raw = backend.extractor(np.stack([to_input(c, prep) for c in crops]))
        hands = hand_found(raw, backend.threshold)
        pred = np.argmax(backend.head(raw), axis=1)
        index.append(np.where(hands, pred, classes["random"]))
        found.append(hands)
        points += [crop_pixels(r[:POINTS_END].reshape(21, 3), c.shape, prep)
                   for r, c in zip(raw, crops, strict=True)]
        google.append(google_classes(raw, classes))
    return np.concatenate(index), np.concatenate(found), points, np.concatenate(google)


def crop_pixels(points: np.ndarray, shape: tuple[int, ...], prep) -> np.ndarray:
    """Landmarks in the model input's pixels -> in the crop's, as ``prep.fit`` fitted it."""
    h, w = shape[:2]
    H, W = prep.image_height, prep.image_width
    if prep.fit != "letterbox":
        return points * np.array([w / W, h / H, w / W])
    top, left, _, nw = prep.letterbox_place(h, w)
    return (points - np.array([left, top, 0])) * (w / nw)


def exported_timer(model_path: str):
    """A function: crop files -> seconds per crop of the exported graph at batch 1,
    preprocessing included (the graph exported and its session made once)."""
    from gesturenet_lib.export.exporter import ExportRequest, source_onnx
    from gesturenet_lib.models.preprocessing import load_rgb, to_input
    from gesturenet_lib.ort_cpu import cpu_session

    onnx_bytes, _, prep = source_onnx(ExportRequest(model_path, KEY, "unused.onnx"), None)
    session = cpu_session(onnx_bytes)   # as gesturenet inference runs it

    def times(files: list[str]) -> list[float]:
        images = [load_rgb(f) for f in files]
        for rgb in images[:10]:
            session.run(None, {"input_1": to_input(rgb, prep)[None]})
        samples = []
        for rgb in images:
            start = time.perf_counter()
            session.run(None, {"input_1": to_input(rgb, prep)[None]})
            samples.append(time.perf_counter() - start)
        return samples

    return times


def exported_times(model_path: str, files: list[str]) -> list[float]:
    """Seconds per crop of the exported graph at batch 1, preprocessing included."""
    return exported_timer(model_path)(files)


def exported_latency_ms(model_path: str, files: list[str]) -> float:
    """Median milliseconds per crop of the exported graph at batch 1."""
    return round(statistics.median(exported_times(model_path, files)) * 1000, 2)


def mediapipe_venv(folder: Path) -> Path:
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    if subprocess.run([str(python), "-c", "import mediapipe"], capture_output=True).returncode:
        subprocess.run([str(python), "-m", "pip", "install", "-q", MEDIAPIPE], check=True)
    return python


def run_mediapipe(python: Path, files: list[str], max_hands: int,
                  recognizer: Path | None = None) -> list[dict]:
    """MediaPipe Hands on ``files`` in the throwaway venv; with ``recognizer`` (a
    gesture_recognizer.task), MediaPipe's GestureRecognizer instead."""
    job = {"images": files, "max_hands": max_hands,
           **({"recognizer": str(recognizer)} if recognizer else {})}
    done = subprocess.run([str(python), str(REPO / "bench" / "mediapipe_worker.py")],
                          input=json.dumps(job), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def landmark_distance(ours: np.ndarray, theirs: list) -> float:
    theirs = np.array(theirs)[:, :2]
    size = float(np.linalg.norm(theirs.max(axis=0) - theirs.min(axis=0)))
    return float(np.linalg.norm(ours[:, :2] - theirs, axis=1).mean() / max(size, 1e-6))


def robustness(root: Path, python: Path, contenders: dict[str, dict]) -> dict:
    """Part 1-3 of the docstring for ``contenders`` (name -> model settings; "spec" and
    "before" among them)."""
    import gesturenet_lib as gn
    from gesturenet_lib.evaluation.metrics import classification_metrics

    workspace, classes = prepare(root / "cv", None)
    names = sorted(classes, key=classes.get)
    truth, files_by_cut = [], {c: [] for c in CUTS}
    per_fold = {(m, c): [] for m in contenders for c in CUTS}   # predict()'s answers
    models = {}
    for fold in range(FOLDS):
        files, labels = cut_fold(workspace, fold, root / "crops")
        truth += [classes[label] for label in labels]
        for name in CUTS:
            files_by_cut[name] += files[name]
        for model, settings in contenders.items():
            spec = landmark_spec(workspace, workspace / f"data_fold{fold}.json", classes,
                                 f"{model}_fold{fold}", settings)
            models[model] = gn.run(gn.TrainRequest(gn.load_experiment(str(spec)), KEY)
                                   ).model_path
            for name in CUTS:
                per_fold[(model, name)].append(predict(models[model], files[name], classes))
        print(f"fold {fold + 1}/{FOLDS} done", flush=True)
    truth = np.array(truth)
    gesture = truth != classes["random"]
    known = ["random", *GOOGLE_TO_OURS.values()]
    # pooled over the folds: (predicted, found, landmarks, Google's) per model and cut
    pooled = {key: (np.concatenate([f[0] for f in folds]), np.concatenate([f[1] for f in folds]),
                    [p for f in folds for p in f[2]], np.concatenate([f[3] for f in folds]))
              for key, folds in per_fold.items()}

    def row(pred: np.ndarray, found: np.ndarray | None = None) -> dict:
        m = classification_metrics(truth, pred, names)
        return {**({"hands_found_gestures": round(float(found[gesture].mean()), 4)}
                   if found is not None else {}),
                "macro_f1": round(m["macro_avg"]["f1"], 4),
                "recall": {c: round(m["per_class"][c]["recall"], 4) for c in names},
                "f1": {c: round(m["per_class"][c]["f1"], 4) for c in names}}

    figures: dict = {"crops_per_cut": int(len(truth)), "gesture_crops": int(gesture.sum()),
                     "support": {c: int((truth == classes[c]).sum()) for c in names},
                     "google": {}}
    for model in contenders:
        figures[model] = {}
        for name in CUTS:
            pred, found, _, google = pooled[(model, name)]
            figures[model][name] = row(pred, found)
            if model == "spec":
                google_row = row(google)
                figures["google"][name] = {"f1": {c: google_row["f1"][c] for c in known}}
    for name in CUTS:
        spec, google = figures["spec"][name], figures["google"][name]
        print(f"{name:<27} macro-F1 / gesture hands found: " + "  ".join(
            f"{m} {figures[m][name]['macro_f1']:.3f} / "
            f"{figures[m][name]['hands_found_gestures']:.3f}" for m in contenders), flush=True)
        print(f"    recall {' / '.join(contenders)}: " + "  ".join(
            f"{c} " + "/".join(f"{figures[m][name]['recall'][c]:.2f}" for m in contenders)
            for c in names))
        print("    F1 spec / Google's: " + "  ".join(
            f"{c} {spec['f1'][c]:.2f}/{google['f1'][c]:.2f} (n={figures['support'][c]})"
            for c in known))
    figures["mediapipe"] = {}
    for name in CUTS:
        answers = run_mediapipe(python, files_by_cut[name], 1)
        found = np.array([bool(a["hands"]) for a in answers])
        _, ours_found, ours_points, _ = pooled[("spec", name)]
        both = [i for i in range(len(answers)) if found[i] and ours_found[i]]
        distance = [landmark_distance(ours_points[i], answers[i]["hands"][0]) for i in both]
        figures["mediapipe"][name] = {
            "hands_found_gestures": round(float(found[gesture].mean()), 4),
            "landmark_distance_vs_spec": round(float(np.mean(distance)), 4)
            if distance else None,
            "median_latency_ms": round(statistics.median(a["seconds"] for a in answers) * 1000,
                                       2)}
    figures["latency_ms_batch1_1.3x"] = {
        model: exported_latency_ms(models[model], files_by_cut[REFERENCE])
        for model in contenders} | {
        "mediapipe": figures["mediapipe"][REFERENCE]["median_latency_ms"]}
    return figures


def kpi_model(root: Path, settings: dict | None = None, seed: int | None = None):
    """A hand_landmarks model trained on everyone but the sample's kpi people: (experiment,
    model path, dataset_convert's crop rule, classes); ``settings`` change
    model.hand_landmarks (e.g. ``{"localization": "palm_detector"}``; none: the spec's
    model), ``seed`` the spec's random_seed. The sample is converted once; a model already
    trained with the same settings and seed is reused."""
    import gesturenet_lib as gn
    from gesturenet_lib.training.trainer import model_path

    workspace, specs = root / "kpi" / "workspace", root / "kpi" / "specs"
    if not (workspace / "data.json").exists():
        specs.mkdir(parents=True)
        sample = REPO / "data" / "hagrid-sample"
        gn.run(gn.ImportRequest("hagrid", str(sample / "dataset"),
                                str(workspace / "original" / "hagrid"),
                                str(sample / "annotations")))
        for name in ("landmark_dataset_config.json", "dataset_experiment_config.json"):
            (specs / name).write_text((REPO / "specs" / name).read_text())
        gn.run(gn.ConvertRequest.from_files(
            str(specs / "landmark_dataset_config.json"),
            str(specs / "dataset_experiment_config.json"),
            str(workspace / "data.json"), "frames", k_folds=0, write_tfds=False))
    ds_spec = json.loads((REPO / "specs" / "landmark_dataset_config.json").read_text())
    classes = json.loads((workspace / "data.json").read_text())["classes"]
    settings = settings or {}
    name = "model" + "".join(f"_{k}{v}" for k, v in sorted(settings.items()))
    name += "" if seed is None else f"_seed{seed}"
    spec = landmark_spec(workspace, workspace / "data.json", classes, name,
                         {"hand_landmarks": settings}, seed)
    exp = gn.load_experiment(str(spec))
    model = model_path(exp.model_dir)
    if not Path(model).exists():   # the same settings and seed asked again: trained already
        model = gn.run(gn.TrainRequest(exp, KEY)).model_path
    rule = gn.CropRule(ds_spec["convert_bbox_square"], ds_spec["bbox_enlarge_ratio"])
    return exp, model, rule, classes


def mediapipe_boxes(answer: dict) -> list[tuple[int, int, int, int]]:
    """MediaPipe's hands as boxes by our rule (landmarks' extent and BOX_MARGIN)."""
    from gesturenet_lib.families.hand_landmarks.hand_finder import BOX_MARGIN

    boxes = []
    for hand in answer["hands"]:
        xy = np.array(hand)[:, :2]
        margin = BOX_MARGIN * float((xy.max(axis=0) - xy.min(axis=0)).max())
        boxes.append(tuple(int(v) for v in (*(xy.min(axis=0) - margin),
                                            *(xy.max(axis=0) + margin))))
    return boxes


def full_frames(root: Path, python: Path) -> dict:
    """The sample's kpi people as whole frames, the spec's model trained on the rest."""
    import gesturenet_lib as gn
    from gesturenet_lib.evaluation.full_frame import annotated_frames, match

    exp, model, rule, classes = kpi_model(root)
    metrics = gn.run(gn.EvaluateRequest(exp, model, KEY, "kpi_set", rule)).metrics
    frames = annotated_frames(exp, "kpi_set", classes)
    answers = run_mediapipe(python, [str(Path(exp.eval_image_root) / p) for p in frames], 4)
    matched = annotated = found_total = 0
    for wanted, answer in zip(frames.values(), answers, strict=True):
        boxes = mediapipe_boxes(answer)
        matched += len(match([a.box for a in wanted], boxes))
        annotated += len(wanted)
        found_total += len(boxes)
    return {"images": metrics["images_evaluated"], **metrics["full_frame"],
            "gesture_accuracy": round(metrics["accuracy"], 4),
            "gesture_macro_f1": round(metrics["macro_avg"]["f1"], 4),
            "mediapipe": {"hand_recall": round(matched / annotated, 4),
                          "hand_precision": round(matched / max(found_total, 1), 4),
                          "median_latency_ms": round(statistics.median(
                              a["seconds"] for a in answers) * 1000, 2)}}


def start(doc: str, name: str, parser: argparse.ArgumentParser | None = None
          ) -> tuple[Path, Path]:
    """A benchmark against MediaPipe begins: its flags read (``parser``'s own and
    --mediapipe_venv), MediaPipe's venv ready; (the venv's python, a fresh work folder)."""
    parser = parser or argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--mediapipe_venv", type=Path,
                        default=Path(tempfile.gettempdir()) / "gesturenet-mediapipe-venv",
                        help="the throwaway venv MediaPipe is installed into (kept for reruns)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    python = mediapipe_venv(args.mediapipe_venv)
    return python, Path(tempfile.mkdtemp(prefix=f"gesturenet-{name}-bench-"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contender", nargs="*", default=[], metavar="KEY=VALUE",
                        help="model.hand_landmarks settings of a third model, measured the same "
                             "way in the same run")
    parser.add_argument("--without_before", action="store_true",
                        help="leave out the head as it was before (a third of the run's time)")
    python, root = start(__doc__, "localization", parser)
    args = parser.parse_args()
    contender = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args.contender)}
    contenders = {**{k: v for k, v in CONTENDERS.items()
                     if not (k == "before" and args.without_before)},
                  **({"contender": {"hand_landmarks": contender}} if contender else {})}
    figures = {"folds": FOLDS, "cores": os.cpu_count(), "mediapipe": MEDIAPIPE,
               "contenders": contenders, "cuts": robustness(root, python, contenders),
               "full_frames": full_frames(root, python)}
    cuts, frames = figures["cuts"], figures["full_frames"]
    spec = cuts["spec"]
    boxes = [c for c in CUTS if c != FRAME]
    reference = spec[REFERENCE]["macro_f1"]
    gestures = [c for c in figures["cuts"]["support"] if c != "random"]
    known = ["random", *GOOGLE_TO_OURS.values()]
    figures["targets_met"] = {
        "macro-F1 within 0.02 of the 1.3x cut at every cut": all(
            spec[c]["macro_f1"] >= reference - 0.02 for c in boxes),
        "every gesture's recall >= 0.9 at every cut": all(
            spec[c]["recall"][g] >= 0.9 for c in boxes for g in gestures),
        "F1 >= Google's - 0.01 on every class both know, at every cut": all(
            spec[c]["f1"][k] >= cuts["google"][c]["f1"][k] - 0.01 for c in boxes for k in known),
        "more hands found than MediaPipe at every cut": all(
            spec[c]["hands_found_gestures"] > cuts["mediapipe"][c]["hands_found_gestures"]
            for c in boxes),
        "full frames: hand recall >= 0.98": frames["hand_recall"] >= 0.98,
        "full frames: hand precision >= 0.97": frames["hand_precision"] >= 0.97,
        "full frames: macro-F1 >= 0.95": frames["gesture_macro_f1"] >= 0.95,
    }
    print(json.dumps(figures, indent=1))
    write_results("hand_localization", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
