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
    out = []
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=job["max_hands"],
                                  model_complexity=1, min_detection_confidence=0.5) as hands:
        for warm in job["images"][:5]:  # graph start-up and allocation, not measured
            hands.process(cv2.cvtColor(cv2.imread(warm), cv2.COLOR_BGR2RGB))
        for path in job["images"]:
            read, cpu = time.perf_counter(), time.process_time()
            rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            start = time.perf_counter()
            result = hands.process(rgb)
            done = time.perf_counter()
            out.append({"path": path, "hands": _hands(result, rgb), "seconds": done - start,
                        "wall_seconds": done - read, "cpu_seconds": time.process_time() - cpu})
    return out


def recognized(job: dict) -> list:
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.vision import GestureRecognizer, GestureRecognizerOptions

    options = GestureRecognizerOptions(base_options=BaseOptions(model_asset_path=job["recognizer"]),
                                       num_hands=job["max_hands"])
    out = []
    with GestureRecognizer.create_from_options(options) as recognizer:
        for warm in job["images"][:5]:  # graph start-up and allocation, not measured
            recognizer.recognize(_image(warm))
        for path in job["images"]:
            read, cpu = time.perf_counter(), time.process_time()
            image = _image(path)
            start = time.perf_counter()
            result = recognizer.recognize(image)
            done = time.perf_counter()
            h, w = image.height, image.width
            out.append({"path": path, "seconds": done - start, "wall_seconds": done - read,
                        "cpu_seconds": time.process_time() - cpu,
                        "hands": [[[p.x * w, p.y * h, p.z * w] for p in hand]
                                  for hand in result.hand_landmarks]})
    return out


def _image(path: str):
    rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)


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
            out.append({"hands": _hands(result, rgb), "seconds": done - start,
                        "wall_seconds": done - read})
        capture.release()
    return out


def _hands(result, rgb) -> list:
    h, w = rgb.shape[:2]
    return [[[p.x * w, p.y * h, p.z * w] for p in hand.landmark]
            for hand in (result.multi_hand_landmarks or [])]


def main() -> int:
    job = json.load(sys.stdin)
    run = video if "video" in job else recognized if "recognizer" in job else images
    json.dump(run(job), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
