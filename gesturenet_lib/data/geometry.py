"""Crop geometry: from a Label Studio percent box to the pixel box that is actually cropped.

Steps (dataset_config): percent -> pixels; ``convert_bbox_square`` grows the short side about
the centre; ``bbox_enlarge_ratio`` scales both sides about the centre. The border rule: when the
grown box fits inside the image it is *shifted* inside (it keeps its size and squareness);
when it is larger than the image along an axis it is *clipped* to the image along that axis.
Pixel boxes are half-open: ``x0 <= x < x1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PixelBox:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def corners(self) -> list[list[int]]:
        """TAO's ``bbox_coordinates``: top-left, top-right, bottom-left, bottom-right."""
        return [[self.x0, self.y0], [self.x1, self.y0], [self.x0, self.y1], [self.x1, self.y1]]


@dataclass(frozen=True)
class PercentBox:
    """A Label Studio rectangle: top-left corner and size, in percent of the image."""
    x: float
    y: float
    width: float
    height: float


# EXIF orientations that swap the image's axes when it is displayed (5: transpose, 6: 90 degrees
# clockwise, 7: transverse, 8: 90 degrees counter-clockwise).
SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


def displayed_box(box: PercentBox, orientation: int) -> PercentBox:
    """``box``, drawn on an image's stored pixel grid, on the grid it is displayed with once
    its EXIF ``orientation`` (1-8) is applied."""
    x, y, w, h = box.x, box.y, box.width, box.height
    return {
        2: lambda: PercentBox(100 - x - w, y, w, h),
        3: lambda: PercentBox(100 - x - w, 100 - y - h, w, h),
        4: lambda: PercentBox(x, 100 - y - h, w, h),
        5: lambda: PercentBox(y, x, h, w),
        6: lambda: PercentBox(100 - y - h, x, h, w),
        7: lambda: PercentBox(100 - y - h, 100 - x - w, h, w),
        8: lambda: PercentBox(y, 100 - x - w, h, w),
    }.get(orientation, lambda: box)()


# Label Studio may store 100.0000001 for a box touching the border; tolerate that much.
PERCENT_TOLERANCE = 0.01


def box_problem(box: PercentBox) -> str | None:
    """Why a percent box cannot be cropped, or None when it can."""
    values = (box.x, box.y, box.width, box.height)
    if not all(math.isfinite(v) for v in values):
        return "box has a non-finite coordinate"
    if box.width <= 0 or box.height <= 0:
        return "box has zero area"
    low, high = -PERCENT_TOLERANCE, 100 + PERCENT_TOLERANCE
    if box.x < low or box.y < low or box.x + box.width > high or box.y + box.height > high:
        return "box outside the image"
    return None


def _fit_axis(start: float, size: float, limit: int) -> tuple[int, int]:
    """Place [start, start+size) inside [0, limit): shift when it fits, else clip."""
    if size <= limit:
        start = min(max(start, 0.0), limit - size)
        lo = int(round(start))
        hi = lo + max(1, int(round(size)))
        if hi > limit:  # rounding pushed it past the edge
            lo, hi = limit - (hi - lo), limit
        return lo, hi
    return 0, limit


def crop_box(box: PercentBox, image_width: int, image_height: int, square: bool,
             enlarge_ratio: float) -> PixelBox:
    """The pixel box to crop for ``box`` in an image of the given size."""
    w = box.width / 100.0 * image_width
    h = box.height / 100.0 * image_height
    cx = box.x / 100.0 * image_width + w / 2
    cy = box.y / 100.0 * image_height + h / 2
    if square:
        w = h = max(w, h)
    w, h = w * enlarge_ratio, h * enlarge_ratio
    x0, x1 = _fit_axis(cx - w / 2, w, image_width)
    y0, y1 = _fit_axis(cy - h / 2, h, image_height)
    return PixelBox(x0, y0, x1, y1)


def original_box(box: PercentBox, image_width: int, image_height: int) -> PixelBox:
    """The annotated box in pixels (clipped to the image), as recorded in ``bbox_original``."""
    x0 = max(0, int(round(box.x / 100.0 * image_width)))
    y0 = max(0, int(round(box.y / 100.0 * image_height)))
    x1 = min(image_width, max(x0 + 1, int(round((box.x + box.width) / 100.0 * image_width))))
    y1 = min(image_height, max(y0 + 1, int(round((box.y + box.height) / 100.0 * image_height))))
    return PixelBox(x0, y0, x1, y1)
