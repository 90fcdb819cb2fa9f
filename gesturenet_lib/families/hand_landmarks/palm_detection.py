"""MediaPipe's palm detector and the rotated hand box it gives, in NumPy and OpenCV (whole
frames; the crop graph's ONNX version of the same steps is in ``palm_graph``).

    image -> letterbox to 192x192 (zero border, RGB in [0,1])
          -> palm_detection_full (2016 SSD anchors: a box + 7 keypoints each, a score)
          -> decode against the anchors, keep scores >= 0.5, weighted non-maximum suppression
          -> the hand box: the palm box rotated so that wrist -> middle-finger knuckle points
             up, shifted half its height that way, squared on its long side, scaled 2.6x
          -> warp that box to the landmark network's 224x224 input; landmarks mapped back

Every constant below is MediaPipe's, read from its published graphs (mediapipe v0.10):
``modules/palm_detection/palm_detection_cpu.pbtxt`` (SsdAnchorsCalculator,
TensorsToDetectionsCalculator, NonMaxSuppressionCalculator) and
``modules/hand_landmark/palm_detection_detection_to_roi.pbtxt`` (DetectionsToRectsCalculator,
RectTransformationCalculator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# palm_detection_cpu.pbtxt
INPUT_SIZE = 192                    # ImageToTensorCalculator, keep_aspect_ratio, BORDER_ZERO
ANCHOR_STRIDES = (8, 16, 16, 16)    # SsdAnchorsCalculator: num_layers 4, aspect_ratios 1.0,
ANCHOR_OFFSET = 0.5                 # fixed_anchor_size (every anchor is 1 x 1), offsets 0.5
NUM_ANCHORS = 2016
NUM_KEYPOINTS = 7
SCORE_CLIP = 100.0                  # score_clipping_thresh, then a sigmoid
MIN_SCORE = 0.5                     # min_score_thresh
NMS_IOU = 0.3                       # min_suppression_threshold, WEIGHTED, IoU
# palm_detection_detection_to_roi.pbtxt
ROTATION_START, ROTATION_END = 0, 2  # keypoints: centre of the wrist, middle finger's MCP
TARGET_ANGLE = math.pi / 2           # rotation_vector_target_angle_degrees: 90
HAND_SCALE = 2.6                     # scale_x, scale_y
HAND_SHIFT_Y = -0.5                  # shift_y (shift_x 0), square_long: true
# the converted network's tensors (tf2onnx names TFLite's outputs Identity, Identity_1)
NET_INPUT, NET_BOXES, NET_SCORES = "input_1", "Identity", "Identity_1"
LANDMARK_SIZE = 224                  # the landmark network's input side


def anchor_centres() -> np.ndarray:
    """[2016, 2] anchor centres (x, y) in [0, 1], in the network's output order: per layer
    group of one stride, per cell row by row, two anchors per layer (aspect ratio 1 and the
    interpolated scale, both 1 x 1 with a fixed anchor size)."""
    centres = []
    strides = list(ANCHOR_STRIDES)
    while strides:
        stride = strides[0]
        layers = 0
        while strides and strides[0] == stride:
            strides.pop(0)
            layers += 1
        side = math.ceil(INPUT_SIZE / stride)
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        cells = np.stack([(xs + ANCHOR_OFFSET) / side, (ys + ANCHOR_OFFSET) / side], -1)
        centres.append(np.repeat(cells.reshape(-1, 2), 2 * layers, axis=0))
    out = np.concatenate(centres).astype(np.float32)
    assert len(out) == NUM_ANCHORS
    return out


@dataclass(frozen=True)
class Palm:
    """One detected palm, in [0, 1] coordinates of the image it was found in."""
    box: np.ndarray        # x_min, y_min, x_max, y_max
    keypoints: np.ndarray  # [7, 2] x, y
    score: float


@dataclass(frozen=True)
class HandRect:
    """A rotated square around a hand, in pixels: centre, side, rotation (radians, clockwise
    in image coordinates, 0 for an upright hand)."""
    cx: float
    cy: float
    side: float
    rotation: float

    def corners(self) -> np.ndarray:
        """[4, 2]: top-left, top-right, bottom-right, bottom-left of the upright view."""
        unit = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
        return self.to_image(unit)

    def to_image(self, unit: np.ndarray) -> np.ndarray:
        """Points in the rect's own frame ([-0.5, 0.5] across) -> image pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        turn = np.array([[c, s], [-s, c]]) * self.side
        return unit @ turn + np.array([self.cx, self.cy])


def decode(boxes: np.ndarray, scores: np.ndarray, anchors: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's raw outputs ([2016, 18], [2016, 1]) -> (scores [2016], corner boxes
    [2016, 4], keypoints [2016, 7, 2]), all in [0, 1] of the detector's input."""
    raw = boxes.astype(np.float64) / INPUT_SIZE
    centre = raw[:, 0:2] + anchors
    half = raw[:, 2:4] / 2
    corner_boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None]
    score = 1 / (1 + np.exp(-np.clip(scores[:, 0].astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    return score, corner_boxes, keypoints


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one corner box with each of ``boxes``."""
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(score: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray,
                 min_score: float = MIN_SCORE) -> list[Palm]:
    """MediaPipe's WEIGHTED suppression: the best remaining detection takes every other one
    whose IoU with it exceeds 0.3, and becomes their score-weighted mean (box and keypoints),
    keeping its own score."""
    order = [i for i in np.argsort(-score, kind="stable") if score[i] >= min_score]
    palms = []
    while order:
        overlaps = iou(boxes[order[0]], boxes[order])
        taken = [i for i, o in zip(order, overlaps, strict=True) if o > NMS_IOU]
        order = [i for i, o in zip(order, overlaps, strict=True) if o <= NMS_IOU]
        weights = score[taken] / score[taken].sum()
        palms.append(Palm(box=weights @ boxes[taken],
                          keypoints=np.tensordot(weights, keypoints[taken], axes=1),
                          score=float(score[taken[0]])))
    return palms


def letterbox(width: int, height: int) -> tuple[float, float, float]:
    """(scale, pad_x, pad_y): image pixel p -> detector pixel p * scale + pad (the image
    fitted inside the square, centred, as ImageToTensorCalculator does)."""
    scale = INPUT_SIZE / max(width, height)
    return scale, (INPUT_SIZE - width * scale) / 2, (INPUT_SIZE - height * scale) / 2


def detector_input(rgb: np.ndarray) -> np.ndarray:
    """An RGB uint8 image -> the detector's [192, 192, 3] float input (letterboxed)."""
    import cv2

    h, w = rgb.shape[:2]
    scale, pad_x, pad_y = letterbox(w, h)
    matrix = np.array([[scale, 0, pad_x], [0, scale, pad_y]], np.float64)
    # pixel centres: OpenCV maps index to index, our matrix maps corner coordinates
    matrix[:, 2] += 0.5 * scale - 0.5
    out = cv2.warpAffine(rgb, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.astype(np.float32) / 255.0


def moved(boxes: np.ndarray, points: np.ndarray, scale, offset
          ) -> tuple[np.ndarray, np.ndarray]:
    """Corner boxes [..., 4] and points [..., 2] under ``p * scale + offset`` (per axis)."""
    corners = boxes.reshape(*boxes.shape[:-1], 2, 2) * scale + offset
    return corners.reshape(boxes.shape), points * scale + offset


def to_image(boxes: np.ndarray, points: np.ndarray, width: int, height: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Corner boxes [..., 4] and points [..., 2] found in the letterboxed input -> [0, 1]
    coordinates of the ``width`` x ``height`` image."""
    scale, pad_x, pad_y = letterbox(width, height)
    offset = np.array([pad_x, pad_y]) / INPUT_SIZE
    unit = np.array([width, height]) * scale / INPUT_SIZE
    return moved(boxes, points, 1 / unit, -offset / unit)


def hand_rect(palm: Palm, width: int, height: int) -> HandRect:
    """DetectionsToRects + RectTransformation, in pixels of a ``width`` x ``height`` image."""
    x0, y0, x1, y1 = palm.box * np.array([width, height, width, height])
    w, h = x1 - x0, y1 - y0
    start = palm.keypoints[ROTATION_START] * (width, height)
    end = palm.keypoints[ROTATION_END] * (width, height)
    rotation = normalise_angle(TARGET_ANGLE - math.atan2(-(end[1] - start[1]),
                                                         end[0] - start[0]))
    c, s = math.cos(rotation), math.sin(rotation)
    # the shift is along the rect's own y axis, which points from the fingers to the wrist
    cx = (x0 + x1) / 2 - h * HAND_SHIFT_Y * s
    cy = (y0 + y1) / 2 + h * HAND_SHIFT_Y * c
    return HandRect(float(cx), float(cy), float(max(w, h) * HAND_SCALE), rotation)


# MediaPipe's video mode: the next frame's hand box from this frame's landmarks
# (HandLandmarksToRectCalculator on the landmarks below, then RectTransformation).
TRACK_POINTS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)   # wrist, palm and lower finger joints
TRACK_SCALE = 2.0                    # scale_x, scale_y
TRACK_SHIFT_Y = -0.1                 # shift_y, square_long: true


def rect_from_landmarks(points: np.ndarray) -> HandRect:
    """The hand box to read the next video frame in, from [21, >=2] landmarks in pixels:
    turned so the wrist is below the knuckles (wrist to the mean of the index and ring
    knuckles' midpoint and the middle knuckle), the landmarks' extent in that frame, shifted
    towards the fingers, squared and doubled."""
    wrist = points[0, :2]
    knuckles = ((points[5, :2] + points[13, :2]) / 2 + points[9, :2]) / 2
    rotation = normalise_angle(TARGET_ANGLE - math.atan2(-(knuckles[1] - wrist[1]),
                                                         knuckles[0] - wrist[0]))
    xy = points[list(TRACK_POINTS), :2].astype(np.float64)
    centre = (xy.min(axis=0) + xy.max(axis=0)) / 2
    c, s = math.cos(rotation), math.sin(rotation)
    upright = (xy - centre) @ np.array([[c, -s], [s, c]])   # turned by -rotation
    low, high = upright.min(axis=0), upright.max(axis=0)
    mid = (low + high) / 2
    width, height = high - low
    cx = centre[0] + mid[0] * c - mid[1] * s - height * TRACK_SHIFT_Y * s
    cy = centre[1] + mid[0] * s + mid[1] * c + height * TRACK_SHIFT_Y * c
    return HandRect(float(cx), float(cy), float(max(width, height) * TRACK_SCALE), rotation)


def normalise_angle(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def warp_matrix(rect: HandRect, size: int = LANDMARK_SIZE) -> np.ndarray:
    """The 2x3 matrix that maps the landmark input's pixel indices to the image's (for
    ``cv2.warpAffine`` with WARP_INVERSE_MAP)."""
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    k = rect.side / size
    linear = np.array([[c * k, -s * k], [s * k, c * k]])
    # index u has its centre at u + 0.5; the rect's centre is the input's centre
    offset = np.array([rect.cx, rect.cy]) - linear @ np.array([size / 2, size / 2])
    offset += linear @ np.array([0.5, 0.5]) - 0.5
    return np.concatenate([linear, offset[:, None]], axis=1)


def warp_hand(rgb: np.ndarray, rect: HandRect, size: int = LANDMARK_SIZE) -> np.ndarray:
    """The rect's contents, upright, as the landmark network's [size, size, 3] float input
    (edge pixels repeated outside the image, like MediaPipe's landmark ImageToTensor)."""
    import cv2

    out = cv2.warpAffine(rgb, warp_matrix(rect, size), (size, size),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return out.astype(np.float32) / 255.0


def landmarks_to_image(points: np.ndarray, rect: HandRect, size: int = LANDMARK_SIZE
                       ) -> np.ndarray:
    """[21, 3] landmarks in the warped input's pixels -> the image's pixels (z scaled like
    x and y)."""
    unit = points[:, :2] / size - 0.5
    xy = rect.to_image(unit)
    z = points[:, 2:3] * rect.side / size
    return np.concatenate([xy, z], axis=1)
