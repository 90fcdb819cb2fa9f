"""Crop geometry: squaring, enlarging, the border rule (shift when it fits, else clip)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gesturenet_lib.data.geometry import PercentBox, box_problem, crop_box, original_box


def test_square_and_enlarge_about_the_centre():
    # 20x10 px box centred at (50, 50) in a 100x100 image
    box = crop_box(PercentBox(40, 45, 20, 10), 100, 100, square=True, enlarge_ratio=1.5)
    assert (box.x0, box.y0, box.x1, box.y1) == (35, 35, 65, 65)


def test_without_square_the_aspect_is_kept():
    box = crop_box(PercentBox(40, 45, 20, 10), 100, 100, square=False, enlarge_ratio=1.0)
    assert (box.width, box.height) == (20, 10)


def test_box_at_the_border_is_shifted_inside_when_it_fits():
    # a 10x10 box in the top-left corner, enlarged to 20x20: shifted, not clipped
    box = crop_box(PercentBox(0, 0, 10, 10), 100, 100, square=True, enlarge_ratio=2.0)
    assert (box.x0, box.y0, box.x1, box.y1) == (0, 0, 20, 20)
    box = crop_box(PercentBox(90, 90, 10, 10), 100, 100, square=True, enlarge_ratio=2.0)
    assert (box.x0, box.y0, box.x1, box.y1) == (80, 80, 100, 100)


def test_box_larger_than_the_image_is_clipped():
    # 80% of a 100x50 image, squared to 80x80 then enlarged: taller than the image -> clipped
    box = crop_box(PercentBox(10, 10, 80, 80), 100, 50, square=True, enlarge_ratio=1.2)
    assert (box.y0, box.y1) == (0, 50)
    assert box.width == 96


def test_corners_are_tao_order():
    box = crop_box(PercentBox(10, 20, 30, 40), 100, 100, square=False, enlarge_ratio=1.0)
    assert box.corners() == [[10, 20], [40, 20], [10, 60], [40, 60]]


def test_box_problems():
    assert box_problem(PercentBox(10, 10, 0, 5)) == "box has zero area"
    assert box_problem(PercentBox(95, 10, 10, 5)) == "box outside the image"
    assert box_problem(PercentBox(-3, 10, 10, 5)) == "box outside the image"
    assert box_problem(PercentBox(90, 90, 10.005, 10)) is None  # Label Studio rounding
    assert box_problem(PercentBox(float("nan"), 1, 1, 1)) == "box has a non-finite coordinate"


boxes = st.tuples(st.floats(0, 99), st.floats(0, 99), st.floats(0.01, 100),
                  st.floats(0.01, 100)).filter(lambda b: b[0] + b[2] <= 100 and b[1] + b[3] <= 100)


@given(boxes, st.integers(1, 4000), st.integers(1, 4000), st.booleans(), st.floats(1.0, 5.0))
def test_crop_always_lies_inside_the_image_and_is_not_empty(b, w, h, square, ratio):
    box = crop_box(PercentBox(*b), w, h, square, ratio)
    assert 0 <= box.x0 < box.x1 <= w
    assert 0 <= box.y0 < box.y1 <= h


@given(boxes, st.integers(50, 4000), st.integers(50, 4000), st.floats(1.0, 3.0))
def test_a_square_crop_that_fits_stays_square(b, w, h, ratio):
    box = crop_box(PercentBox(*b), w, h, True, ratio)
    side = max(b[2] / 100 * w, b[3] / 100 * h) * ratio
    if side + 1 < min(w, h):
        assert abs(box.width - box.height) <= 1
        assert abs(box.width - side) <= 1


@given(boxes, st.integers(1, 4000), st.integers(1, 4000), st.floats(1.0, 5.0))
def test_the_crop_contains_the_annotated_box(b, w, h, ratio):
    crop = crop_box(PercentBox(*b), w, h, True, ratio)
    orig = original_box(PercentBox(*b), w, h)
    assert crop.x0 <= orig.x0 + 1 and crop.y0 <= orig.y0 + 1
    assert crop.x1 >= orig.x1 - 1 and crop.y1 >= orig.y1 - 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_box_on_the_stored_grid_lands_where_pillow_displays_it(orientation):
    """``displayed_box`` against Pillow's own EXIF transpose, for all eight orientations."""
    from PIL import Image, ImageOps

    from gesturenet_lib.data.geometry import displayed_box

    stored = np.zeros((40, 100), np.uint8)
    stored[4:14, 10:40] = 255  # x 10-40 %, y 10-35 % of the stored grid
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.info["exif"] = exif.tobytes()
    image.getexif()[0x0112] = orientation
    shown = np.asarray(ImageOps.exif_transpose(image))
    ys, xs = np.nonzero(shown)
    h, w = shown.shape
    expected = (100 * xs.min() / w, 100 * ys.min() / h, 100 * (xs.max() + 1 - xs.min()) / w,
                100 * (ys.max() + 1 - ys.min()) / h)
    got = displayed_box(PercentBox(10.0, 10.0, 30.0, 25.0), orientation)
    assert (got.x, got.y, got.width, got.height) == pytest.approx(expected)
