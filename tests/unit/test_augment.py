"""Each augmentation does what it says, within its limits, with its probability."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gesturenet_lib.specs import parse
from gesturenet_lib.specs.experiment import Augmentation
from gesturenet_lib.training import augment as A


def _image(seed=0, h=24, w=32):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.uniform(20, 235, (h, w, 3)).astype("float32"))


def _only(name, **block):
    return parse(Augmentation, {name: {"enable": True, "probability": 1.0, **block}})


def test_nothing_enabled_is_identity():
    x = _image()
    np.testing.assert_array_equal(A.augment(x, Augmentation()).numpy(), x.numpy())


def test_probability_zero_is_identity():
    x = _image()
    aug = parse(Augmentation, {"rotation_range": {"enable": True, "probability": 0.0}})
    np.testing.assert_array_equal(A.augment(x, aug).numpy(), x.numpy())


def test_horizontal_flip():
    x = _image()
    out = A.augment(x, _only("horizontal_flip")).numpy()
    np.testing.assert_array_equal(out, x.numpy()[:, ::-1])


def test_flip_probability_is_respected():
    tf.random.set_seed(1)
    x = _image()
    aug = parse(Augmentation, {"horizontal_flip": {"enable": True, "probability": 0.3}})
    flipped = sum(not np.array_equal(A.augment(x, aug).numpy(), x.numpy()) for _ in range(200))
    assert 40 <= flipped <= 80


def test_brightness_scales_within_limits():
    x = tf.fill((8, 8, 3), 100.0)
    for _ in range(20):
        out = A.augment(x, _only("brightness_range", min_factor=0.5, max_factor=0.8)).numpy()
        assert np.allclose(out, out[0, 0, 0]) and 50.0 <= out[0, 0, 0] <= 80.0


def test_gamma_keeps_the_extremes_and_bends_the_middle():
    x = tf.constant(np.array([[[0.0] * 3, [127.5] * 3, [255.0] * 3]], "float32"))
    out = A.augment(x, _only("gamma_aug", min_gamma=2.0, max_gamma=2.0)).numpy()
    assert out[0, 0, 0] == 0.0 and out[0, 2, 0] == pytest.approx(255.0)
    assert out[0, 1, 0] == pytest.approx(63.75, abs=0.01)


def test_color_pca_adds_one_offset_per_channel():
    x = tf.fill((6, 6, 3), 128.0)
    out = A.augment(x, _only("color_pca_aug", alpha_std=0.5)).numpy()
    offsets = out - 128.0
    assert np.allclose(offsets, offsets[0, 0])  # the same offset at every pixel
    assert np.abs(offsets[0, 0]).max() > 0


def test_rotation_keeps_the_centre_and_changes_the_rest():
    x = _image(h=31, w=31)
    out = A.augment(x, _only("rotation_range", max_angle=30)).numpy()
    assert out.shape == (31, 31, 3)
    np.testing.assert_allclose(out[15, 15], x.numpy()[15, 15], atol=1e-3)
    assert not np.allclose(out, x.numpy())


def test_shear_moves_rows_and_keeps_the_centre():
    x = _image(h=31, w=31)
    out = A.augment(x, _only("shear_range", max_shear_x=0.5, max_shear_y=0.0)).numpy()
    np.testing.assert_allclose(out[15], x.numpy()[15], atol=1e-3)  # centre row: no shift
    assert not np.allclose(out[0], x.numpy()[0])


def test_occlusion_constant_fill_covers_the_asked_area():
    x = tf.fill((40, 40, 3), 200.0)
    for _ in range(10):
        out = A.augment(x, _only("occlusion_aug", min_area=0.1, max_area=0.2, pixel_level=False,
                                 fill_value=7)).numpy()
        share = (out[:, :, 0] == 7).mean()
        assert 0.07 <= share <= 0.23
        ys, xs = np.where(out[:, :, 0] == 7)
        assert (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1) == (out[:, :, 0] == 7).sum()


def test_occlusion_pixel_level_fills_with_noise():
    x = tf.fill((40, 40, 3), 200.0)
    out = A.augment(x, _only("occlusion_aug", min_area=0.2, max_area=0.2)).numpy()
    changed = out != 200.0
    assert changed.any() and len(np.unique(out[changed])) > 10
