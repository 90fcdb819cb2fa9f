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


# TAO's own forms, as NVIDIA's tutorial train spec writes them: each is
# applied to every image, with TAO's (Keras ImageDataGenerator's) range.

def _tao(block: dict) -> Augmentation:
    return parse(Augmentation, block)


def _bright_spot(size=41, dx=15):
    x = np.zeros((size, size, 3), "float32")
    c = size // 2
    x[c - 1:c + 2, c + dx - 1:c + dx + 2] = 255.0
    return tf.constant(x), c


def _spot_angle(image, c) -> float:
    weight = image[:, :, 0]
    ys, xs = np.nonzero(weight > 1.0)
    w = weight[ys, xs]
    return float(np.degrees(np.arctan2(-(np.average(ys, weights=w) - c),
                                       np.average(xs, weights=w) - c)))


def test_tao_rotation_range_number_rotates_every_image_within_its_degrees():
    tf.random.set_seed(3)
    aug = _tao({"rotation_range": 5})
    assert aug.rotation_range.enable and aug.rotation_range.probability == 1.0
    x, c = _bright_spot()
    angles = [_spot_angle(A.augment(x, aug).numpy(), c) for _ in range(40)]
    assert max(abs(a) for a in angles) <= 5.5
    assert max(angles) > 2.0 and min(angles) < -2.0  # the whole range is drawn, both ways
    assert not _tao({"rotation_range": 0}).rotation_range.enable


def test_tao_shear_range_number_is_a_horizontal_shear_angle_in_degrees():
    tf.random.set_seed(4)
    aug = _tao({"shear_range": 20})
    assert aug.shear_range.max_shear_x == pytest.approx(np.tan(np.radians(20)))
    assert aug.shear_range.max_shear_y == 0.0 and aug.shear_range.probability == 1.0
    x = np.zeros((41, 41, 3), "float32")
    x[:, 20] = 255.0  # a vertical line through the centre: a shear tilts it
    tilts = []
    for _ in range(30):
        out = A.augment(tf.constant(x), aug).numpy()[:, :, 0]
        top, bottom = np.argmax(out[2]), np.argmax(out[38])
        tilts.append(np.degrees(np.arctan2(abs(int(top) - int(bottom)), 36)))
        assert np.argmax(out[20]) == 20  # the centre row does not move
    assert max(tilts) <= 20 + 2 and max(tilts) > 8
    assert not _tao({"shear_range": 0.0}).shear_range.enable  # the tutorial's value


def test_tao_brightness_range_list_is_min_max_for_every_image():
    tf.random.set_seed(5)
    aug = _tao({"brightness_range": [0.5, 1.5]})
    x = tf.fill((4, 4, 3), 100.0)
    levels = [float(A.augment(x, aug).numpy()[0, 0, 0]) for _ in range(60)]
    assert min(levels) >= 50.0 - 1e-3 and max(levels) <= 150.0 + 1e-3
    assert min(levels) < 70 and max(levels) > 130


def test_tao_gamma_lower_and_upper_limit():
    tf.random.set_seed(6)
    aug = _tao({"gamma_aug": {"enable": True, "probability": 1.0, "lower_limit": 0.5,
                              "upper_limit": 2.0}})
    assert (aug.gamma_aug.min_gamma, aug.gamma_aug.max_gamma) == (0.5, 2.0)
    x = tf.fill((2, 2, 3), 127.5)
    levels = [float(A.augment(x, aug).numpy()[0, 0, 0]) for _ in range(60)]
    low, high = 255 * 0.5 ** 2.0, 255 * 0.5 ** 0.5  # gamma 2 darkens, 0.5 brightens
    assert min(levels) >= low - 0.01 and max(levels) <= high + 0.01
    assert min(levels) < 90 and max(levels) > 160


@pytest.mark.parametrize("pixel_level", [True, False])
def test_tao_occlusion_fills_within_min_and_max_pixel(pixel_level):
    tf.random.set_seed(7)
    aug = _tao({"occlusion_aug": {"enable": True, "probability": 1.0, "min_area": 0.2,
                                  "max_area": 0.3, "min_pixel": 100, "max_pixel": 110,
                                  "pixel_level": pixel_level}})
    for _ in range(10):
        out = A.augment(tf.fill((40, 40, 3), 0.0), aug).numpy()
        filled = out[out != 0.0]
        assert filled.size and filled.min() >= 100 and filled.max() <= 110
        assert (len(np.unique(filled)) > 10) == pixel_level  # one value per patch otherwise


def test_tao_horizontal_flip_true_flips_half_the_images():
    tf.random.set_seed(8)
    aug = _tao({"horizontal_flip": True})
    x = _image()
    flipped = sum(not np.array_equal(A.augment(x, aug).numpy(), x.numpy()) for _ in range(200))
    assert 70 <= flipped <= 130


def test_tutorial_train_spec_loads_and_its_written_back_form_loads_again():
    """NVIDIA's forms in, our object forms out (what train writes to model/train_spec.json)."""
    import json

    from gesturenet_lib.specs import ExperimentSpec, dumps
    from tests.conftest import REPO

    raw = json.loads((REPO / "tests/data/tao_docs/train_spec.json").read_text())
    spec = parse(ExperimentSpec, raw)
    assert spec.model.kernel_regularization_factor == 0.001
    again = parse(ExperimentSpec, json.loads(dumps(spec)))
    assert again == spec


@pytest.mark.parametrize("block, message", [
    ({"rotation_range": 200}, "rotation_range = 200: a rotation limit in degrees must be in"),
    ({"shear_range": 60}, "shear_range = 60: a shear angle in degrees must be in [0, 45)"),
    ({"brightness_range": [0.5]}, "brightness_range = [0.5]: must be [min, max]"),
    ({"brightness_range": [1.5, 0.5]}, "brightness_range.min_factor = 1.5: must be <="),
    ({"rotation_range": "5"}, "rotation_range = \"5\": must be a JSON object"),
])
def test_tao_forms_out_of_range_name_the_key_and_value(block, message):
    from gesturenet_lib.specs import SpecError

    with pytest.raises(SpecError) as err:
        parse(Augmentation, block)
    assert message in str(err.value)
