"""Benchmark: video, ours with tracking against MediaPipe Hands' video mode, in one run.

Clips: the two labelled real videos (`../shared/data/videos/`, else the one bundled in
`data/videos/`), a clip built here from a bundled kpi photo (a slow pan and zoom, written
with OpenCV, labelled with the photo's gesture throughout), and the same clip with the photo's
hands blurred away (a stream where nobody shows a hand: a webcam waiting for a user). The
model: hand_landmarks (the landmark spec's), trained on everyone but the sample's kpi people.

Per clip, frames per second *with decoding* and frames with a hand for:
- ours, tracking (`inference --video`: the palm detector only when no hand is tracked, or
  every 30 frames);
- ours, static (the palm detector on every frame, as `--full_frame` on each frame; the
  baseline before tracking);
- MediaPipe Hands 0.10.21, video mode (`static_image_mode=False`, 2 hands, model_complexity
  1; the throwaway venv of hand_localization_bench).
Also the agreement of our landmarks with MediaPipe's on frames where both found a hand (mean
distance over the diagonal of MediaPipe's landmarks' extent) and, inside the labelled spans,
the share of frames whose surest hand we call by the span's gesture ("other": called
random). Goal: >= MediaPipe's fps at its hands-found rate (on the hand-free clip: hands in
no more frames than MediaPipe's).

``--seeds N`` trains the model N times (random_seed 108, 109, ...) and gives the labelled
spans' shares for each and their mean (one model's figures move by a few frames a span);
``--contender KEY=VALUE ...`` trains a second model the same way with those
model.hand_landmarks settings changed and gives its shares beside (tracking, the spans only).

    .venv/bin/python bench/video_bench.py [--mediapipe_venv DIR] [--seeds N]
                                          [--contender KEY=VALUE ...]

Writes bench/results/video.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from full_frame_bench import blur_boxes
from hand_localization_bench import (
    KEY,
    MEDIAPIPE,
    REPO,
    kpi_model,
    landmark_distance,
    start,
)
from results_file import write_results

SHARED_VIDEOS = REPO.parent / "shared" / "data" / "videos"
BUNDLED_VIDEOS = REPO / "data" / "videos"


def pan_clip(exp, classes: dict[str, int], out: Path, hands_blurred: bool = False
             ) -> tuple[Path, str]:
    """A 120-frame 640x480 clip: a slow pan and zoom over the first kpi photo with a gesture;
    (its path, the gesture). ``hands_blurred``: the same clip with the photo's hands blurred
    away (as full_frame_bench's hand-free photos), a stream where nobody shows a hand."""
    import cv2

    from gesturenet_lib.evaluation.full_frame import annotated_frames

    path, hands = next((p, h) for p, h in annotated_frames(exp, "kpi_set", classes).items()
                       if len(h) == 1 and h[0].label != "random")
    image = cv2.imread(str(Path(exp.eval_image_root) / path))
    if hands_blurred:
        image = blur_boxes(image, [hand.box for hand in hands])
    h, w = image.shape[:2]
    x0, y0, x1, y1 = hands[0].box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    for k in range(120):
        t = k / 119
        zoom = 1.0 + 0.6 * t                         # the window shrinks to 1/1.6
        ww, wh = min(w, h * 4 / 3) / zoom, min(h, w * 3 / 4) / zoom
        left = np.clip(cx - ww / 2 + (t - 0.5) * 0.3 * ww, 0, w - ww)
        top = np.clip(cy - wh / 2, 0, h - wh)
        window = image[int(top):int(top + wh), int(left):int(left + ww)]
        writer.write(cv2.resize(window, (640, 480), interpolation=cv2.INTER_AREA))
    writer.release()
    return out, hands[0].label


def ours(clip: Path, backend, rule, detect_every: int) -> list[dict]:
    """Per frame: the hands (landmarks, class), and the wall seconds with decoding."""
    from gesturenet_lib.inference.full_frame import hand_finder
    from gesturenet_lib.inference.video import HandTracker, Tracking, video_frames

    frames, _ = video_frames(str(clip), None)
    tracker = HandTracker(hand_finder(), backend, rule, Tracking(detect_every=detect_every))
    out, start = [], time.perf_counter()
    for frame in frames:
        result = tracker.step(frame)
        now = time.perf_counter()
        out.append({"hands": [(t.hand.hand.landmarks, t.hand.index, t.hand.confidence)
                              for t in result.hands], "wall_seconds": now - start})
        start = time.perf_counter()
    return out


def mediapipe(python: Path, clip: Path) -> list[dict]:
    done = subprocess.run([str(python), str(REPO / "bench" / "mediapipe_worker.py")],
                          input=json.dumps({"video": str(clip), "max_hands": 2}),
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def summary(frames: list[dict]) -> dict:
    return {"fps": round(len(frames) / sum(f["wall_seconds"] for f in frames), 1),
            "frames_with_a_hand": round(float(np.mean([bool(f["hands"]) for f in frames])), 4)}


def gesture_share(frames: list[dict], spans: list[dict], fps: float, names: list[str]) -> dict:
    """Inside each label's spans: frames whose surest hand we call that label ("other" ->
    random), over the span's frames."""
    per_label: dict[str, list[bool]] = {}
    for k, frame in enumerate(frames):
        t = k / fps
        span = next((s for s in spans if s["start_s"] <= t <= s["end_s"]), None)
        if span is None:
            continue
        wanted = "random" if span["label"] == "other" else span["label"]
        if wanted not in names:
            continue
        best = max(frame["hands"], key=lambda h: h[2], default=None)
        per_label.setdefault(span["label"], []).append(best is not None
                                                       and names[best[1]] == wanted)
    return {label: {"frames": len(v), "called_right": round(float(np.mean(v)), 4)}
            for label, v in per_label.items()}


def agreement(mine: list[dict], theirs: list[dict]) -> float | None:
    """Mean landmark distance (over MediaPipe's hand size) of the nearest hands, on frames
    where both found one."""
    distances = []
    for a, b in zip(mine, theirs, strict=True):
        if a["hands"] and b["hands"]:
            for hand in b["hands"]:
                wrist = np.array(hand[0][:2])
                nearest = min(a["hands"], key=lambda h: np.linalg.norm(h[0][0, :2] - wrist))
                distances.append(landmark_distance(nearest[0], hand))
    return round(float(np.mean(distances)), 4) if distances else None


def span_shares(root: Path, clips: list, settings: dict, seeds: int) -> dict:
    """Per clip and label: the share of the span's frames called right by a model with
    ``settings`` trained with each of ``seeds`` seeds (tracking), and their mean."""
    from gesturenet_lib.inference.loading import load_backend

    shares: dict = {}
    for seed in range(108, 108 + seeds):
        _, model, rule, classes = kpi_model(root, settings=settings, seed=seed)
        backend, names = load_backend(model, KEY, None), sorted(classes, key=classes.get)
        for clip, spans, fps in clips:
            share = gesture_share(ours(clip, backend, rule, 30), spans, fps, names)
            for label, row in share.items():
                shares.setdefault(clip.name, {}).setdefault(label, []).append(
                    row["called_right"])
    return {clip: {label: {"per_seed": v, "mean": round(float(np.mean(v)), 4)}
                   for label, v in labels.items()} for clip, labels in shares.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1,
                        help="train the model this many times (random_seed 108, 109, ...)")
    parser.add_argument("--contender", nargs="*", default=[], metavar="KEY=VALUE",
                        help="model.hand_landmarks settings of a second model, measured on "
                             "the labelled spans in the same run")
    python, root = start(__doc__, "video", parser)
    args = parser.parse_args()
    contender = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args.contender)}
    from gesturenet_lib.inference.loading import load_backend

    exp, model, rule, classes = kpi_model(root, seed=108)
    backend = load_backend(model, KEY, None)
    names = sorted(classes, key=classes.get)
    folder = SHARED_VIDEOS if SHARED_VIDEOS.is_dir() else BUNDLED_VIDEOS
    labels = json.loads((folder / "labels.json").read_text())
    clips = [(folder / name, meta["gestures"], meta["fps"]) for name, meta in labels.items()
             if (folder / name).exists()]
    pan, gesture = pan_clip(exp, classes, root / "pan_zoom.mp4")
    clips.append((pan, [{"label": gesture, "start_s": 0.0, "end_s": 4.0}], 30.0))
    clips.append((pan_clip(exp, classes, root / "no_hands.mp4", hands_blurred=True)[0], [], 30.0))
    figures: dict = {"cores": os.cpu_count(), "mediapipe": MEDIAPIPE, "clips": {}}
    for clip, spans, fps in clips:
        tracked, static = ours(clip, backend, rule, 30), ours(clip, backend, rule, 1)
        theirs = mediapipe(python, clip)
        row = {"frames": len(tracked), "ours_tracking": summary(tracked),
               "ours_static": summary(static), "mediapipe_video_mode": summary(theirs),
               "landmark_distance_to_mediapipe": agreement(tracked, theirs),
               "gesture_in_labelled_spans": gesture_share(tracked, spans, fps, names)}
        row["fps_ratio_vs_mediapipe"] = round(row["ours_tracking"]["fps"]
                                              / row["mediapipe_video_mode"]["fps"], 3)
        figures["clips"][clip.name] = row
        print(clip.name, json.dumps(row), flush=True)
    figures["targets_met"] = {
        f"{name}: fps >= MediaPipe's at its hands-found rate":
            row["fps_ratio_vs_mediapipe"] >= 1.0
            and row["ours_tracking"]["frames_with_a_hand"]
            >= row["mediapipe_video_mode"]["frames_with_a_hand"]
        for name, row in figures["clips"].items() if name != "no_hands.mp4"}
    labelled = [c for c in clips if c[1]]
    if args.seeds > 1 or contender:
        figures["spans_over_seeds"] = {"spec": span_shares(root, labelled, {}, args.seeds)}
    if contender:
        figures["spans_over_seeds"]["contender"] = span_shares(root, labelled, contender,
                                                               args.seeds)
        figures["contender"] = contender
    for name, shares in figures.get("spans_over_seeds", {}).items():
        print(name, json.dumps({clip: {label: row["mean"] for label, row in labels.items()}
                                for clip, labels in shares.items()}), flush=True)
    hand_free = figures["clips"]["no_hands.mp4"]
    figures["targets_met"]["no_hands.mp4: fps >= MediaPipe's, hands in no more frames"] = (
        hand_free["fps_ratio_vs_mediapipe"] >= 1.0
        and hand_free["ours_tracking"]["frames_with_a_hand"]
        <= hand_free["mediapipe_video_mode"]["frames_with_a_hand"])
    print(json.dumps(figures, indent=1))
    write_results("video", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
