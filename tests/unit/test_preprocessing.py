"""How a crop meets the model's input: stretched (TAO's classifiers) or letterboxed (aspect
kept, centred on a black border, as DeepStream pads), the same in OpenCV and TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from gesturenet_lib.models.preprocessing import Preprocessing, fitted, to_input

LETTERBOX = Preprocessing(224, 224, 3, "channels_last", fit="letterbox")
STRETCH = Preprocessing(224, 224, 3, "channels_last")


def test_a_model_stored_without_a_fit_reads_as_stretch():
    stored = STRETCH.to_dict()
    del stored["fit"]
    assert Preprocessing.from_dict(stored).fit == "stretch"


def test_letterbox_keeps_a_tall_crops_aspect_centred_on_black():
    crop = np.full((118, 62, 3), 255, np.uint8)   # a 62 x 118 hand box, as a tracker cuts
    out = fitted(crop, LETTERBOX)
    assert out.shape == (224, 224, 3)
    nh, nw = LETTERBOX.letterbox_size(118, 62)
    assert (nh, nw) == (224, 118)                   # 62 * 224 / 118 = 117.7
    left = (224 - nw) // 2
    assert (out[:, :left] == 0).all() and (out[:, left + nw:] == 0).all()
    assert (out[:, left:left + nw] == 255).all()
    wide = fitted(np.full((40, 200, 3), 255, np.uint8), LETTERBOX)
    rows = np.flatnonzero(wide[:, 112, 0])
    assert len(rows) == 45 and rows[0] == (224 - 45) // 2   # 40 * 224 / 200 = 44.8
    assert (fitted(crop, STRETCH) == 255).all()     # stretch fills the input, as before


def test_a_square_crop_is_the_same_under_both_fits():
    crop = np.random.default_rng(0).integers(0, 255, (90, 90, 3), dtype=np.uint8)
    assert np.array_equal(to_input(crop, LETTERBOX), to_input(crop, STRETCH))


@pytest.mark.parametrize("shape", [(118, 62), (40, 200), (300, 299), (224, 224)])
def test_tensorflow_fits_as_opencv_does(shape):
    """Training (tf.data) and every other path (OpenCV) give the model the same pixels."""
    rng = np.random.default_rng(1)
    crop = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    crop = np.ascontiguousarray(np.repeat(np.repeat(crop[::4, ::4], 4, 0), 4, 1)[:shape[0],
                                                                              :shape[1]])
    ours = fitted(crop, LETTERBOX).astype(np.float32)
    theirs = LETTERBOX.tf_resize(crop).numpy()
    border = (ours == 0).all(axis=2)
    assert np.array_equal(border, (theirs == 0).all(axis=2)) or \
        np.mean(border != (theirs == 0).all(axis=2)) < 0.001
    assert np.abs(ours - theirs).mean() < 2.0
