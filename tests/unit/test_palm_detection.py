"""MediaPipe's palm-detection geometry in NumPy: anchors, decoding, weighted suppression, the
rotated hand box, the warp to the landmark input and back, the detector's windows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gesturenet_lib.families.hand_landmarks import palm_detection as pd
from gesturenet_lib.families.hand_landmarks.hand_finder import square_windows, zoom_tiles


def test_anchors_follow_the_ssd_layout_of_the_graph():
    anchors = pd.anchor_centres()
    assert anchors.shape == (2016, 2)
    # stride 8: a 24 x 24 grid, 2 anchors per cell, row by row
    np.testing.assert_allclose(anchors[0], anchors[1])
    np.testing.assert_allclose(anchors[0], [0.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(anchors[2], [1.5 / 24, 0.5 / 24])
    # three stride-16 layers merged: a 12 x 12 grid, 6 anchors per cell
    first16 = 24 * 24 * 2
    np.testing.assert_allclose(anchors[first16:first16 + 6], [[0.5 / 12, 0.5 / 12]] * 6)
    np.testing.assert_allclose(anchors[-1], [11.5 / 12, 11.5 / 12])


def test_decode_places_offsets_on_the_anchors_and_squashes_scores():
    anchors = pd.anchor_centres()
    raw = np.zeros((2016, 18), np.float32)
    raw[5, 0:4] = [19.2, -9.6, 38.4, 57.6]   # pixels of the 192 input
    raw[5, 4:6] = [9.6, 0.0]
    logits = np.full((2016, 1), -500.0, np.float32)
    logits[5] = 0.0
    score, boxes, points = pd.decode(raw, logits, anchors)
    cx, cy = anchors[5] + [0.1, -0.05]
    np.testing.assert_allclose(boxes[5], [cx - 0.1, cy - 0.15, cx + 0.1, cy + 0.15], atol=1e-6)
    np.testing.assert_allclose(points[5, 0], anchors[5] + [0.05, 0.0], atol=1e-6)
    np.testing.assert_allclose(points[7], np.repeat(anchors[7][None], 7, axis=0), atol=1e-6)
    assert score[5] == pytest.approx(0.5)
    assert score[0] == pytest.approx(1 / (1 + math.exp(100)))  # clipped at -100


def test_weighted_suppression_merges_overlaps_and_keeps_the_top_score():
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8],
                      [0.6, 0.1, 0.7, 0.2]])
    points = np.stack([np.full((7, 2), v) for v in (0.2, 0.3, 0.7, 0.65)])
    scores = np.array([0.9, 0.6, 0.7, 0.4])
    palms = pd.weighted_nms(scores, boxes, points)
    assert [p.score for p in palms] == [0.9, 0.7]       # the 0.4 one is under MIN_SCORE
    w = np.array([0.9, 0.6]) / 1.5
    np.testing.assert_allclose(palms[0].box, w @ boxes[:2])
    np.testing.assert_allclose(palms[0].keypoints, np.full((7, 2), w @ [0.2, 0.3]))
    np.testing.assert_allclose(palms[1].box, boxes[2])


def _palm(box, wrist, knuckle) -> pd.Palm:
    points = np.zeros((7, 2))
    points[pd.ROTATION_START] = wrist
    points[pd.ROTATION_END] = knuckle
    return pd.Palm(np.array(box, float), points, 0.9)


def test_hand_rect_is_mediapipes_rotation_shift_and_scale():
    # upright: knuckle straight above the wrist; a 100 x 200 image
    upright = pd.hand_rect(_palm([0.4, 0.4, 0.6, 0.5], [0.5, 0.5], [0.5, 0.4]), 100, 200)
    assert upright.rotation == pytest.approx(0.0)
    assert upright.cx == pytest.approx(50.0)
    assert upright.cy == pytest.approx(90.0 - 0.5 * 20)      # half the palm's height upwards
    assert upright.side == pytest.approx(2.6 * 20)           # the long side in pixels
    # fingers pointing right: rotated 90 degrees, shifted towards the fingers
    right = pd.hand_rect(_palm([0.4, 0.4, 0.6, 0.5], [0.45, 0.45], [0.55, 0.45]), 100, 200)
    assert right.rotation == pytest.approx(math.pi / 2)
    assert right.cx == pytest.approx(50.0 + 0.5 * 20)
    assert right.cy == pytest.approx(90.0)


def test_the_warp_and_the_way_back_are_inverse():
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[120:124, 250:254] = 255                   # a bright spot at (252, 122)
    rect = pd.HandRect(252.0, 122.0, 90.0, math.radians(30))
    warped = pd.warp_hand(rgb, rect)
    assert warped.shape == (224, 224, 3) and warped.dtype == np.float32
    ys, xs = np.nonzero(warped[..., 0] > 0.5)
    centre = np.array([[xs.mean() + 0.5, ys.mean() + 0.5, 10.0]])   # pixel centres
    back = pd.landmarks_to_image(centre, rect)
    np.testing.assert_allclose(back[0, :2], [252.0, 122.0], atol=1.0)
    assert back[0, 2] == pytest.approx(10.0 * 90 / 224)
    # a point right of the centre in the upright view lies 30 degrees down-right in the image
    off = pd.landmarks_to_image(np.array([[112 + 112.0, 112.0, 0.0]]), rect)[0]
    np.testing.assert_allclose(off[:2], [252 + 45 * math.cos(math.radians(30)),
                                         122 + 45 * math.sin(math.radians(30))], atol=1e-6)


def test_letterbox_and_back():
    w, h = 640, 480
    scale, pad_x, pad_y = pd.letterbox(w, h)
    assert (scale, pad_x) == (192 / 640, 0.0) and pad_y == pytest.approx(24.0)
    box = np.array([100, 50, 300, 250]) * np.array([scale, scale, scale, scale]) + \
        np.array([pad_x, pad_y, pad_x, pad_y])
    boxes, points = pd.to_image(box[None] / 192,
                                np.zeros((1, 7, 2)) + [pad_x / 192, pad_y / 192], w, h)
    np.testing.assert_allclose(boxes[0], [100 / w, 50 / h, 300 / w, 250 / h], atol=1e-9)
    np.testing.assert_allclose(points[0, 0], [0, 0], atol=1e-9)


def test_the_detector_sees_square_windows_along_a_long_image():
    assert square_windows(512, 512) == [(0, 0, 512, 512)]
    assert square_windows(560, 512) == [(0, 0, 560, 512)]
    assert square_windows(512, 683) == [(0, 0, 512, 683), (0, 0, 512, 512), (0, 171, 512, 512)]
    wide = square_windows(1280, 400)
    assert wide[0] == (0, 0, 1280, 400) and len(wide) == 5
    assert wide[1] == (0, 0, 400, 400) and wide[-1] == (880, 0, 400, 400)


@pytest.mark.parametrize("width, height", [(512, 683), (1280, 720), (512, 512), (300, 4000)])
def test_the_closer_look_covers_the_whole_image_in_overlapping_squares(width, height):
    tiles = zoom_tiles(width, height)
    side = round(0.75 * min(width, height))
    assert all(t[2:] == (side, side) for t in tiles)
    covered = np.zeros((height, width), bool)
    for x, y, s, _ in tiles:
        assert 0 <= x <= width - s and 0 <= y <= height - s
        covered[y:y + s, x:x + s] = True
    assert covered.all()
    for axis in (0, 1):   # neighbours at most 0.8 of a side apart: a hand of 1/5 fits in one
        starts = sorted({t[axis] for t in tiles})
        assert all(b - a <= 0.8 * side for a, b in zip(starts, starts[1:], strict=False))
    assert zoom_tiles(512, 683) == [(0, 0, 384, 384), (128, 0, 384, 384), (0, 299, 384, 384),
                                    (128, 299, 384, 384)]


def test_full_frame_matching_uses_the_annotated_box_or_a_tao_cut(tmp_path):
    """evaluate --full_frame scores against bbox_original where data.json has it, else the
    cut's corners (a TAO data.json); matching pairs each hand once, best IoU first."""
    import json

    from gesturenet_lib.data.dataset_file import read_dataset_file
    from gesturenet_lib.evaluation.full_frame import match

    ours = {"full_image_path": "a.jpg", "bbox_path": "c.png", "label": "stop",
            "bbox_coordinates": [[0, 0], [100, 0], [0, 100], [100, 100]],
            "bbox_original": [[20, 30], [70, 30], [20, 90], [70, 90]]}
    tao = {k: v for k, v in ours.items() if k != "bbox_original"}
    doc = {"classes": {"stop": 0}, "kpi_set": {"images": [ours, tao]}}
    (tmp_path / "data.json").write_text(json.dumps(doc))
    first, second = read_dataset_file(str(tmp_path / "data.json")).entries(
        "kpi_set", crops=False, frames=True)
    assert first.hand_box() == (20, 30, 70, 90)
    assert second.hand_box() == (0, 0, 100, 100)
    annotated = [(0, 0, 10, 10), (100, 100, 150, 150)]
    found = [(101, 99, 149, 151), (1, 0, 11, 10), (300, 300, 310, 310), (2, 1, 12, 11)]
    assert match(annotated, found) == [(0, 1), (1, 0)]
    assert match(annotated, []) == [] and match([], found) == []


def test_a_dark_image_is_lifted_before_the_networks_see_it():
    from gesturenet_lib.families.hand_landmarks.hand_finder import DARK_MEAN, LIFTED_MEAN, lifted

    rng = np.random.default_rng(0)
    dark = rng.integers(0, 40, (60, 80, 3), dtype=np.uint8)
    seen = lifted(dark)
    assert seen.shape == dark.shape and seen.dtype == np.uint8
    assert seen.mean() > dark.mean() + 40
    flat = lifted(np.full((8, 8, 3), 20, np.uint8))
    assert abs(flat.mean() / 255 - LIFTED_MEAN) < 0.01          # a flat image lands on the mean
    order = np.argsort(dark.reshape(-1), kind="stable")
    assert np.all(np.diff(seen.reshape(-1)[order].astype(int)) >= 0)   # darker stays darker
    lit = rng.integers(DARK_MEAN - 20, 255, (60, 80, 3), dtype=np.uint8)
    assert lifted(lit) is lit
    assert lifted(np.zeros((4, 4, 3), np.uint8)).max() == 0     # black stays black


def test_the_detector_sees_a_gray_photo_tinted_and_a_colour_one_as_it_is():
    import cv2

    from gesturenet_lib.families.hand_landmarks.hand_finder import (
        GRAY_TINT,
        network_views,
        tinted,
    )

    rng = np.random.default_rng(0)
    colour = rng.integers(90, 255, (64, 48, 3), dtype=np.uint8)
    shown, detected = network_views(colour)
    assert tinted(colour) is colour and shown is colour and detected is colour
    gray = np.repeat(rng.integers(90, 255, (64, 48, 1), dtype=np.uint8), 3, axis=2)
    ok, jpeg = cv2.imencode(".jpg", gray)   # a gray photo stored as colour JPEG: chroma noise
    assert network_views(gray)[0] is gray   # the landmark network reads it untinted
    for image in (gray, cv2.imdecode(jpeg, cv2.IMREAD_COLOR)):
        shown = tinted(image)
        np.testing.assert_allclose(shown.mean(axis=(0, 1)) / image[..., 1].mean(), GRAY_TINT,
                                   atol=0.02)
