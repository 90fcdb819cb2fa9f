"""Runs inside the benchmark's throwaway venv (mediapipe==0.10.21 pins numpy < 2, so it never
shares our environment): MediaPipe's own hand solution, in static-image mode, on a list of
images. Reads a JSON job {"images": [...], "max_hands": n} on stdin; writes, per image, the
hands found (21 landmarks in pixels each), the seconds ``process`` took and the seconds
with the image's decoding."""

import json
import sys
import time

import cv2
import mediapipe as mp


def main() -> int:
    job = json.load(sys.stdin)
    out = []
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=job["max_hands"],
                                  model_complexity=1, min_detection_confidence=0.5) as hands:
        for warm in job["images"][:5]:  # graph start-up and allocation, not measured
            hands.process(cv2.cvtColor(cv2.imread(warm), cv2.COLOR_BGR2RGB))
        for path in job["images"]:
            read = time.perf_counter()
            rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            start = time.perf_counter()
            result = hands.process(rgb)
            seconds = time.perf_counter() - start
            wall = time.perf_counter() - read
            found = [[[p.x * w, p.y * h, p.z * w] for p in hand.landmark]
                     for hand in (result.multi_hand_landmarks or [])]
            out.append({"path": path, "hands": found, "seconds": seconds,
                        "wall_seconds": wall})
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
