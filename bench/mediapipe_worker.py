"""Runs inside the benchmark's throwaway venv (mediapipe==0.10.21 pins numpy < 2, so it never
shares our environment): MediaPipe's own hand solution on a list of images in static-image
mode, or on a video in video mode (tracking); or MediaPipe's GestureRecognizer (Tasks API,
image mode) on a list of images. Reads a JSON job on stdin: {"images": [...], "max_hands": n},
{"video": path, "max_hands": n} or {"images": [...], "max_hands": n, "recognizer":
gesture_recognizer.task}; writes, per image or frame, the hands found (21 landmarks in pixels
each), the seconds ``process`` (or ``recognize``) took, the seconds with the decoding, and the
CPU seconds of this process meanwhile (all its threads)."""

import json
import sys
import time

import cv2
import mediapipe as mp


def images(job: dict) -> list:
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=job["max_hands"],
                                  model_complexity=1, min_detection_confidence=0.5) as hands:
        return _timed(job["images"], lambda rgb: rgb, hands.process, _solution_landmarks)


def recognized(job: dict) -> list:
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.vision import GestureRecognizer, GestureRecognizerOptions

    options = GestureRecognizerOptions(base_options=BaseOptions(model_asset_path=job["recognizer"]),
                                       num_hands=job["max_hands"])
    with GestureRecognizer.create_from_options(options) as recognizer:
        return _timed(job["images"],
                      lambda rgb: mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb),
                      recognizer.recognize, lambda result: result.hand_landmarks)


def _timed(paths: list, prepare, detect, landmarks) -> list:
    """``detect`` on each image as ``prepare`` makes it from the RGB pixels, timed; its
    ``landmarks`` (per hand, normalised) in pixels. The first 5 images once more before,
    untimed (graph start-up and allocation)."""
    for warm in paths[:5]:
        detect(prepare(_rgb(warm)))
    out = []
    for path in paths:
        read, cpu = time.perf_counter(), time.process_time()
        rgb = _rgb(path)
        given = prepare(rgb)
        start = time.perf_counter()
        result = detect(given)
        done = time.perf_counter()
        out.append({"path": path, "hands": _pixels(landmarks(result), rgb),
                    "seconds": done - start, "wall_seconds": done - read,
                    "cpu_seconds": time.process_time() - cpu})
    return out


def _rgb(path: str):
    return cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)


def video(job: dict) -> list:
    out = []
    with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=job["max_hands"],
                                  model_complexity=1, min_detection_confidence=0.5,
                                  min_tracking_confidence=0.5) as hands:
        capture = cv2.VideoCapture(job["video"])
        while True:
            read = time.perf_counter()
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            start = time.perf_counter()
            result = hands.process(rgb)
            done = time.perf_counter()
            out.append({"hands": _pixels(_solution_landmarks(result), rgb),
                        "seconds": done - start,
                        "wall_seconds": done - read})
        capture.release()
    return out


def _solution_landmarks(result) -> list:
    """The hand solution's landmarks of each hand found."""
    return [hand.landmark for hand in (result.multi_hand_landmarks or [])]


def _pixels(hands: list, rgb) -> list:
    h, w = rgb.shape[:2]
    return [[[p.x * w, p.y * h, p.z * w] for p in hand] for hand in hands]


def main() -> int:
    job = json.load(sys.stdin)
    run = video if "video" in job else recognized if "recognizer" in job else images
    json.dump(run(job), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
