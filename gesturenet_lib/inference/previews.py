"""Pictures of full-frame results: each image with its found hands drawn (the rotated box the
landmarks were read in, the 21 landmarks and their skeleton, the hand box and the gesture)."""

from __future__ import annotations

import os

import numpy as np

from gesturenet_lib import io

# MediaPipe's hand skeleton: wrist to each finger, finger joints in order
BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10),
         (10, 11), (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17),
         (17, 18), (18, 19), (19, 20))


def draw(rgb: np.ndarray, hands, names: list[str], tags: list[str] | None = None
         ) -> np.ndarray:
    """A BGR copy of ``rgb`` with ``hands`` (FrameHand) drawn; ``tags``: a word before each
    hand's label (a video's track id)."""
    import cv2

    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    scale = max(1, round(max(rgb.shape[:2]) / 500))
    for k, hand in enumerate(hands):
        corners = hand.hand.rect.corners().round().astype(np.int32)
        cv2.polylines(out, [corners], True, (255, 160, 0), scale)
        x0, y0, x1, y1 = hand.box
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 200, 0), scale)
        points = hand.hand.landmarks[:, :2].round().astype(np.int32)
        for a, b in BONES:
            cv2.line(out, tuple(points[a]), tuple(points[b]), (255, 255, 255), scale)
        for p in points:
            cv2.circle(out, tuple(p), 2 * scale, (0, 0, 255), -1)
        label = f"{tags[k] + ' ' if tags else ''}{names[hand.index]} {hand.confidence:.2f}"
        origin = (x0, max(12 * scale, y0 - 4 * scale))
        cv2.putText(out, label, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 0, 0),
                    3 * scale, cv2.LINE_AA)
        cv2.putText(out, label, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale,
                    (0, 255, 255), scale, cv2.LINE_AA)
    if not hands:
        cv2.putText(out, "no hand found", (8, 24 * scale), cv2.FONT_HERSHEY_SIMPLEX,
                    0.7 * scale, (0, 0, 255), 2 * scale, cv2.LINE_AA)
    return out


def write_preview(folder: str, shown_as: str, rgb: np.ndarray, hands, names: list[str]) -> str:
    """``<folder>/<shown_as without its suffix>.jpg``; the path written."""
    import cv2

    ok, data = cv2.imencode(".jpg", draw(rgb, hands, names), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError(f"{shown_as}: the preview could not be encoded")
    relative = os.path.splitext(shown_as.lstrip("/").replace("..", "_"))[0] + ".jpg"
    path = io.join(folder, relative)
    io.write_bytes(path, data.tobytes())
    return path
