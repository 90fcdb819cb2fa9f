"""Every hand in a whole image: palm detector -> rotated hand boxes -> landmark network on
each box, warped upright -> landmarks back in the image's pixels (MediaPipe's two stages, in
static-image mode: no tracking between frames)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gesturenet_lib.families.hand_landmarks import palm_detection as pd
from gesturenet_lib.families.hand_landmarks.assets import (
    NET_HANDEDNESS,
    NET_INPUT,
    NET_LANDMARKS,
    NET_PRESENCE,
)
from gesturenet_lib.families.hand_landmarks.layout import HANDEDNESS, PRESENCE

SAME_HAND_IOU = 0.5   # two boxes overlapping this much are one hand (the surer one is kept)
# Landmarks sit at the joints' centres, inside the hand's outline. On the bundled sample's
# train-set frames, annotated boxes were a median 1.33x wider and 1.18x taller than the
# landmarks' extent: growing each side by 0.09 of the extent's long side gives both.
BOX_MARGIN = 0.09


@dataclass(frozen=True)
class FoundHand:
    rect: pd.HandRect     # the rotated box the landmarks were read in
    palm_score: float
    raw: np.ndarray       # [65]: 21 x (x, y, z) in image pixels, presence, handedness

    @property
    def presence(self) -> float:
        return float(self.raw[PRESENCE])

    @property
    def handedness(self) -> float:
        return float(self.raw[HANDEDNESS])

    @property
    def landmarks(self) -> np.ndarray:
        return self.raw[:63].reshape(21, 3)

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The hand's axis-aligned box as hands are annotated (its landmarks' extent and a
        margin, ``BOX_MARGIN``), clipped to the image: x_min, y_min, x_max, y_max in
        pixels."""
        xy = self.landmarks[:, :2]
        low, high = xy.min(axis=0), xy.max(axis=0)
        margin = BOX_MARGIN * float(np.max(high - low))
        x0, y0 = np.floor(low - margin)
        x1, y1 = np.ceil(high + margin)
        return (int(max(0, x0)), int(max(0, y0)), int(min(width, x1)), int(min(height, y1)))


def square_windows(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height): the whole image, then, for an image more than 1.2x longer than
    wide (or the reverse), squares of its short side spaced evenly from end to end."""
    long, short = max(width, height), min(width, height)
    windows = [(0, 0, width, height)]
    if long <= 1.2 * short:
        return windows
    count = int(np.ceil(long / short))
    for k in range(count + (count == 1)):
        start = round(k * (long - short) / max(1, count - 1 + (count == 1)))
        windows.append((start, 0, short, short) if width > height else (0, start, short, short))
    return windows


class HandFinder:
    """Runs both networks with ONNX Runtime on CPU."""

    def __init__(self, detector_onnx: bytes, landmark_onnx: bytes,
                 presence_threshold: float = 0.5, max_hands: int = 8):
        import onnxruntime as ort

        def session(data: bytes):
            return ort.InferenceSession(data, providers=["CPUExecutionProvider"])

        self.detector = session(detector_onnx)
        self.landmarks = session(landmark_onnx)
        self.anchors = pd.anchor_centres()
        self.threshold = presence_threshold
        self.max_hands = max_hands

    def palms(self, rgb: np.ndarray) -> list[pd.Palm]:
        """The palms in an RGB uint8 image, in [0, 1] of the image, surest first. The
        detector sees the whole image letterboxed (as MediaPipe does) and, when the image is
        not square, also square windows along its long side (a hand there is seen at up to
        its aspect ratio more pixels); one weighted suppression merges them."""
        h, w = rgb.shape[:2]
        windows = square_windows(w, h)
        batch = np.stack([pd.detector_input(rgb[y:y + wh, x:x + ww])
                          for x, y, ww, wh in windows])
        boxes, scores = self.detector.run([pd.NET_BOXES, pd.NET_SCORES], {pd.NET_INPUT: batch})
        all_scores, all_boxes, all_points = [], [], []
        for (x, y, ww, wh), b, s in zip(windows, boxes, scores, strict=True):
            score, corner_boxes, keypoints = pd.decode(b, s, self.anchors)
            keep = score >= pd.MIN_SCORE
            in_window = pd.to_image(corner_boxes[keep], keypoints[keep], ww, wh)
            in_image = pd.moved(*in_window, np.array([ww / w, wh / h]), np.array([x / w, y / h]))
            all_scores.append(score[keep])
            all_boxes.append(in_image[0])
            all_points.append(in_image[1])
        found = pd.weighted_nms(np.concatenate(all_scores), np.concatenate(all_boxes),
                                np.concatenate(all_points))
        return found[:self.max_hands]

    def read(self, rgb: np.ndarray, rects: list[pd.HandRect]) -> np.ndarray:
        """The landmark network on each rect: [len(rects), 65], landmarks in image pixels."""
        if not rects:
            return np.zeros((0, HANDEDNESS + 1), np.float32)
        batch = np.stack([pd.warp_hand(rgb, r) for r in rects])
        points, presence, handedness = self.landmarks.run(
            [NET_LANDMARKS, NET_PRESENCE, NET_HANDEDNESS], {NET_INPUT: batch})
        mapped = [pd.landmarks_to_image(p.reshape(21, 3), r).reshape(-1)
                  for p, r in zip(points, rects, strict=True)]
        return np.concatenate([np.stack(mapped), presence, handedness], axis=1).astype(
            np.float32)

    def find(self, rgb: np.ndarray) -> list[FoundHand]:
        """Every hand whose presence score reaches the threshold, surest first; where two
        found hands are the same hand, only the surer one."""
        h, w = rgb.shape[:2]
        palms = self.palms(rgb)
        rects = [pd.hand_rect(p, w, h) for p in palms]
        raws = self.read(rgb, rects)
        found = (FoundHand(r, p.score, raw)
                 for p, r, raw in zip(palms, rects, raws, strict=True)
                 if raw[PRESENCE] >= self.threshold)
        kept: list[FoundHand] = []
        kept_boxes: list[tuple[int, int, int, int]] = []
        for hand in sorted(found, key=lambda f: -f.presence):
            box = hand.box(w, h)
            if not kept_boxes or pd.iou(np.array(box, np.float64),
                                        np.array(kept_boxes, np.float64)).max() <= SAME_HAND_IOU:
                kept.append(hand)
                kept_boxes.append(box)
        return kept
