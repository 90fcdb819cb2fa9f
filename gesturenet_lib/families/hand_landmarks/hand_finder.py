"""Every hand in a whole image: palm detector -> rotated hand boxes -> landmark network on
each box, warped upright -> landmarks back in the image's pixels (MediaPipe's two stages, in
static-image mode: no tracking between frames). Each found hand carries the landmark
network's whole row (the layout of ``layout.py``), so a model that reads landmarks classifies
it without running the networks again."""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from gesturenet_lib.families.hand_landmarks import palm_detection as pd
from gesturenet_lib.families.hand_landmarks.assets import (
    NET_HANDEDNESS,
    NET_INPUT,
    NET_LANDMARKS,
    NET_PRESENCE,
    NET_WORLD,
)
from gesturenet_lib.families.hand_landmarks.layout import (
    HANDEDNESS,
    NET_ROW,
    POINTS_END,
    PRESENCE,
)
from gesturenet_lib.ort_cpu import cpu_session, quiet_between_runs

SAME_HAND_IOU = 0.5   # two boxes overlapping this much are one hand (the surer one is kept)
# Landmarks sit at the joints' centres, inside the hand's outline. On the bundled sample's
# train-set frames, annotated boxes were a median 1.33x wider and 1.18x taller than the
# landmarks' extent: growing each side by 0.09 of the extent's long side gives both.
BOX_MARGIN = 0.09
WINDOW_ASPECT = 1.2   # an image longer than this (long side / short side) gets square windows
# A hand whose box is under this fraction of the image's long side is about 23 px in the
# detector's 192x192 letterbox, near the smallest it finds. On the sample's kpi photos,
# windows on every photo found 4 more of 89 hands than the letterbox alone; windows only
# after no hand or a hand this small found the same 4, on 19 of 77 photos. One square centred
# on the small hand instead (half the windows, 12 % less CPU a photo) lost 1 of those 4 and 2
# of 545 hands on the whole sample: the detector finds less near a window's edge.
SMALL_HAND = 0.12
# A hand only a window finds (the letterbox did not) is kept when the landmark network is this
# sure of it. On the sample, the 4 real hands found that way had presence 0.94-0.997; on its
# 464 photos with every annotated hand blurred away, 5 of the 6 "hands" found that way had
# 0.54-0.85 (the sixth, 0.97, a real hand nobody annotated): windows otherwise doubled the
# false hands there (12 against MediaPipe's 6).
WINDOW_PRESENCE = 0.9
# Where the letterbox and the windows found no hand at all, the detector looks once more,
# closer: squares of ZOOM_SIDE of the short side (a hand 1.33x the pixels a window gives it),
# neighbours overlapping by 1 - ZOOM_STRIDE of their side, over the whole image; a hand found
# there must reach WINDOW_PRESENCE too. On the sample's 464 photos this ran on 12 and found 4
# more of 545 hands (one of the kpi photos' 89: a 40x55 px thumbs-down in a 512x683 photo;
# MediaPipe misses it too), no false hand among them; on the 464 photos with every annotated
# hand blurred away it ran on 457, added 1 false hand to 7, and took a photo's CPU from 19 to
# 44 ms (4 more detector images on a 3:4 photo). Looking closer still (squares of 0.6 of the
# short side) found 3 more real hands and 3 more false ones. A video does not zoom: its
# tracker meets the hand again in a later frame.
ZOOM_SIDE = 0.75
ZOOM_STRIDE = 0.8
# Both networks were trained on well-lit hands: an image whose mean value (0-255, black values
# left out) is under DARK_MEAN is seen through a gamma curve that brings its mean to about
# LIFTED_MEAN of white.
# On the sample's kpi photos darkened to 0.2 / 0.12 / 0.07 of their exposure (sensor noise
# added) the finder found 0.67 / 0.20 / 0.02 of the hands as they were, 0.79 / 0.65 / 0.42
# lifted; at full exposure one more (a hand in a photo of mean 17.5), and on the sample's 17
# darkest photos (means 17-69) no hand lost and no false hand added.
DARK_MEAN = 80
LIFTED_MEAN = 0.4
# The palm detector finds few hands in grayscale photos (an infrared or night camera, a black-
# and-white photo): on the sample's 464 photos made gray the finder found 0.50 of the hands
# (MediaPipe 0.31 of the kpi photos'); with the detector seeing them through a skin-like tint
# (these factors per channel, R G B) 0.77 (0.65-0.78 for tints from (1, .7, .5) to
# (1, .4, .2)). An image is gray when its channels differ by under GRAY_SPREAD on average.
GRAY_TINT = (1.0, 0.5, 0.3)
GRAY_SPREAD = 1.0


@dataclass(frozen=True)
class FoundHand:
    rect: pd.HandRect     # the rotated box the landmarks were read in
    palm_score: float
    raw: np.ndarray       # [NET_ROW]: 21 x (x, y, z) in image pixels, presence, handedness,
                          # 21 world landmarks turned like the image

    @property
    def presence(self) -> float:
        return float(self.raw[PRESENCE])

    @property
    def handedness(self) -> float:
        return float(self.raw[HANDEDNESS])

    @property
    def landmarks(self) -> np.ndarray:
        return self.raw[:POINTS_END].reshape(21, 3)

    def scaled(self, factor: float) -> FoundHand:
        """The same hand in an image ``factor`` times as large (a reduced decode's hand in the
        full image's pixels; world landmarks are in metres and stay)."""
        raw = self.raw.copy()
        raw[:POINTS_END] *= factor
        rect = replace(self.rect, cx=self.rect.cx * factor, cy=self.rect.cy * factor,
                       side=self.rect.side * factor)
        return FoundHand(rect, self.palm_score, raw)

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


def square_windows(width: int, height: int, aspect: float = WINDOW_ASPECT
                   ) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height): the whole image, then, for an image more than ``aspect`` times
    longer than wide (or the reverse), squares of its short side spaced evenly from end to
    end."""
    long, short = max(width, height), min(width, height)
    windows = [(0, 0, width, height)]
    if long <= aspect * short:
        return windows
    count = int(np.ceil(long / short))
    for k in range(count + (count == 1)):
        start = round(k * (long - short) / max(1, count - 1 + (count == 1)))
        windows.append((start, 0, short, short) if width > height else (0, start, short, short))
    return windows


def zoom_tiles(width: int, height: int, side: float = ZOOM_SIDE, stride: float = ZOOM_STRIDE
               ) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height): squares of ``side`` times the image's short side, spaced evenly
    from edge to edge along both axes, at most ``stride`` of their side apart."""
    tile = max(1, round(side * min(width, height)))

    def starts(length: int) -> list[int]:
        count = int(np.ceil((length - tile) / (stride * tile))) + 1 if length > tile else 1
        return [round(k * (length - tile) / max(count - 1, 1)) for k in range(count)]

    return [(x, y, tile, tile) for y in starts(height) for x in starts(width)]


class HandFinder:
    """Runs both networks with ONNX Runtime on CPU, ``threads`` per run (0: one per core); a
    finder may search several images at once from several threads."""

    def __init__(self, detector_onnx: bytes, landmark_onnx: bytes,
                 presence_threshold: float = 0.5, max_hands: int = 8,
                 window_aspect: float = WINDOW_ASPECT, zoom_side: float = ZOOM_SIDE,
                 threads: int = 0):
        self.detector = cpu_session(detector_onnx, quiet_between_runs(threads))
        self.landmarks = cpu_session(landmark_onnx, quiet_between_runs(threads))
        self.anchors = pd.anchor_centres()
        self.threshold = presence_threshold
        self.max_hands = max_hands
        self.window_aspect = window_aspect
        self.zoom_side = zoom_side   # 0: never zoom

    def palms(self, rgb: np.ndarray, windows: list[tuple[int, int, int, int]]
              ) -> list[pd.Palm]:
        """The palms the detector finds in ``windows`` (x, y, width, height) of an RGB uint8
        image as the detector sees it (``network_views``), each letterboxed to its input, in
        [0, 1] of the image, surest first; one weighted suppression merges the windows'."""
        h, w = rgb.shape[:2]
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
        """The landmark network on each rect of an RGB uint8 image as it reads it
        (``network_views``): rows [len(rects), NET_ROW], landmarks in image pixels; the world
        landmarks through the same map, as the crop graph carries them (turned like the image;
        the embedder's normalisation removes the scale and offset)."""
        if not rects:
            return np.zeros((0, NET_ROW), np.float32)
        batch = np.stack([pd.warp_hand(rgb, r) for r in rects])
        points, presence, handedness, world = self.landmarks.run(
            [NET_LANDMARKS, NET_PRESENCE, NET_HANDEDNESS, NET_WORLD], {NET_INPUT: batch})
        mapped = [pd.landmarks_to_image(p.reshape(21, 3), r).reshape(-1)
                  for p, r in zip(points, rects, strict=True)]
        world_mapped = [pd.landmarks_to_image(p.reshape(21, 3), r).reshape(-1)
                        for p, r in zip(world, rects, strict=True)]
        return np.concatenate([np.stack(mapped), presence, handedness, np.stack(world_mapped)],
                              axis=1).astype(np.float32)

    def find(self, rgb: np.ndarray, with_windows: bool = True, zoom: bool = True
             ) -> list[FoundHand]:
        """Every hand whose presence score reaches the threshold, surest first; where two
        found hands are the same hand, only the surer one. The detector sees the whole image
        letterboxed (as MediaPipe does); an image longer than ``window_aspect`` is also seen
        in square windows along its long side (a hand there gets up to that ratio more
        pixels), but only where they can find what the letterbox missed: when it found no
        hand, or a hand as small as ``SMALL_HAND`` (its neighbours may be smaller still).
        Where they found no hand either, ``zoom`` looks closer (``zoom_tiles`` of
        ``zoom_side``). A hand only the windows or the zoom find must reach
        ``WINDOW_PRESENCE``. A video's tracker runs the windows less often
        (``with_windows=False`` in between) and never zooms."""
        h, w = rgb.shape[:2]
        shown, detected = network_views(rgb)
        hands = self._hands(shown, self.palms(detected, [(0, 0, w, h)]))
        windows = square_windows(w, h, self.window_aspect)[1:] if with_windows else []
        if windows and (not hands or min(_long_side(f.box(w, h)) for f in hands)
                        < SMALL_HAND * max(w, h)):
            hands += self._more_hands(shown, detected, windows, hands)
        if zoom and self.zoom_side and not hands:
            hands = self._more_hands(shown, detected, zoom_tiles(w, h, self.zoom_side), hands)
        return self.distinct(hands, w, h)

    def _more_hands(self, shown: np.ndarray, detected: np.ndarray,
                    windows: list[tuple[int, int, int, int]], hands: list[FoundHand]
                    ) -> list[FoundHand]:
        """The hands the detector finds in ``windows`` that are not among ``hands``, each
        at least WINDOW_PRESENCE sure."""
        h, w = shown.shape[:2]
        boxes = [f.box(w, h) for f in hands]
        new = [p for p in self.palms(detected, windows)
               if not any(_inside(p.box * (w, h, w, h), b) for b in boxes)]
        return [hand for hand in self._hands(shown, new)
                if hand.presence >= max(self.threshold, WINDOW_PRESENCE)]

    def _hands(self, shown: np.ndarray, palms: list[pd.Palm]) -> list[FoundHand]:
        """The landmark network on each palm's hand box (``shown``: the image as it reads
        it); the hands present."""
        h, w = shown.shape[:2]
        rects = [pd.hand_rect(p, w, h) for p in palms]
        found = self._present(rects, [p.score for p in palms], self.read(shown, rects))
        return [hand for hand in found if hand is not None]

    def hands_at(self, rgb: np.ndarray, rects: list[pd.HandRect], palm_scores: list[float]
                 ) -> list[FoundHand | None]:
        """The hand in each rect, None where the presence score is below the threshold (a
        tracked hand lost)."""
        return self._present(rects, palm_scores, self.read(lifted(rgb), rects))

    def _present(self, rects: list[pd.HandRect], palm_scores: list[float], raws: np.ndarray
                 ) -> list[FoundHand | None]:
        return [FoundHand(r, score, raw) if raw[PRESENCE] >= self.threshold else None
                for r, score, raw in zip(rects, palm_scores, raws, strict=True)]

    @staticmethod
    def distinct(hands: list[FoundHand], w: int, h: int) -> list[FoundHand]:
        """Surest first; a hand whose box overlaps a surer one's by SAME_HAND_IOU is dropped."""
        kept: list[FoundHand] = []
        kept_boxes: list[tuple[int, int, int, int]] = []
        for hand in sorted(hands, key=lambda f: -f.presence):
            box = hand.box(w, h)
            if not kept_boxes or pd.iou(np.array(box, np.float64),
                                        np.array(kept_boxes, np.float64)).max() <= SAME_HAND_IOU:
                kept.append(hand)
                kept_boxes.append(box)
        return kept


def network_views(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` as (the landmark network reads it: a dark image lifted; the palm detector sees
    it: a gray image tinted, then a dark one lifted), each made once. The landmark network
    reads untinted: on gray crops it found 0.97 of the kpi hands as they were, 0.96 tinted."""
    shown, tint = lifted(rgb), tinted(rgb)
    return shown, (shown if tint is rgb else lifted(tint))


def tinted(rgb: np.ndarray) -> np.ndarray:
    """A gray image (``GRAY_SPREAD``) in ``GRAY_TINT``; any other as it is."""
    sample = rgb[::4, ::4].astype(np.int16)
    spread = (np.abs(sample[..., 0] - sample[..., 1]).mean()
              + np.abs(sample[..., 1] - sample[..., 2]).mean())
    if spread >= GRAY_SPREAD:
        return rgb
    gray = rgb[..., 1:2].astype(np.float32)
    return np.round(gray * np.array(GRAY_TINT, np.float32)).astype(np.uint8)


def lifted(rgb: np.ndarray) -> np.ndarray:
    """A dark image brightened (``DARK_MEAN``); any other as it is. The mean is of the values
    that are not black: a letterbox's border (or a camera's) does not make a lit image dark."""
    sample = rgb[::4, ::4]
    mean = float(sample.sum()) / max(int(np.count_nonzero(sample)), 1)
    if mean >= DARK_MEAN:
        return rgb
    gamma = np.log(LIFTED_MEAN) / np.log(max(mean, 1.0) / 255)
    curve = np.round(255 * (np.arange(256) / 255) ** gamma).astype(np.uint8)
    return cv2.LUT(rgb, curve)


def _long_side(box: tuple[int, int, int, int]) -> int:
    return max(box[2] - box[0], box[3] - box[1])


def _inside(palm_box: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the palm box's centre lies in ``box`` (a hand already read)."""
    cx, cy = (palm_box[0] + palm_box[2]) / 2, (palm_box[1] + palm_box[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]
