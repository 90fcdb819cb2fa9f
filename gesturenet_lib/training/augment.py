"""TAO's augmentations as TensorFlow ops on one image (float32, H x W x C, values 0-255, after
resizing to the model's size). Each runs with its own probability when enabled.

- shear_range: affine shear, factors uniform in [-max_shear_x, max_shear_x] (and y), about the
  centre, edges repeated;
- rotation_range: rotation by an angle uniform in [-max_angle, max_angle] degrees, about the
  centre, edges repeated;
- horizontal_flip: mirror left-right;
- brightness_range: multiply by a factor uniform in [min_factor, max_factor];
- gamma_aug: 255 * (x / 255) ** gamma, gamma uniform in [min_gamma, max_gamma];
- color_pca_aug: AlexNet's PCA lighting noise: add eigvec @ (alpha * eigval) * 255 to every
  pixel, alpha ~ N(0, alpha_std) per component (RGB only);
- occlusion_aug: random erasing: a rectangle of area share uniform in [min_area, max_area] and
  aspect ratio log-uniform in [min_aspect_ratio, max_aspect_ratio], filled with values uniform
  in [min_pixel, max_pixel]: one per pixel (pixel_level), else one for the whole rectangle
  (fill_value, when given, instead of that one random value).

TAO's short forms (``"rotation_range": 5``, ``"brightness_range": [0.5, 1.5]``, ...) are turned
into these settings by the spec classes (``specs/experiment.py``).
"""

from __future__ import annotations

import math

import tensorflow as tf

from gesturenet_lib.specs.experiment import Augmentation

# ImageNet RGB covariance eigen-decomposition (Krizhevsky et al. 2012), values for [0, 1] pixels.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009),
              (-0.5808, -0.0045, -0.8140),
              (-0.5836, -0.6948, 0.4203))


def _maybe(probability: float, fn, image):
    if probability <= 0:
        return image
    if probability >= 1:
        return fn(image)
    return tf.cond(tf.random.uniform([]) < probability, lambda: fn(image), lambda: image)


def _transform(image, a0, a1, a2, b0, b1, b2):
    """Apply the output->input affine map with bilinear sampling; edges are repeated."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    transform = tf.cast(tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])[None], tf.float32)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.stack([height, width]),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
    return out[0]


def _centre(image):
    shape = tf.cast(tf.shape(image), tf.float32)
    return (shape[1] - 1) / 2, (shape[0] - 1) / 2


def rotate(image, max_angle: float):
    theta = tf.random.uniform([], -max_angle, max_angle) * math.pi / 180
    cx, cy = _centre(image)
    c, s = tf.cos(theta), tf.sin(theta)
    return _transform(image, c, s, cx - c * cx - s * cy, -s, c, cy + s * cx - c * cy)


def shear(image, max_x: float, max_y: float):
    sx = tf.random.uniform([], -max_x, max_x)
    sy = tf.random.uniform([], -max_y, max_y)
    cx, cy = _centre(image)
    return _transform(image, 1.0, sx, -sx * cy, sy, 1.0, -sy * cx)


def brightness(image, low: float, high: float):
    return image * tf.random.uniform([], low, high)


def gamma(image, low: float, high: float):
    g = tf.random.uniform([], low, high)
    return 255.0 * tf.pow(tf.clip_by_value(image, 0.0, 255.0) / 255.0, g)


def color_pca(image, alpha_std: float):
    if image.shape[-1] != 3:
        return image
    alpha = tf.random.normal([3], stddev=alpha_std)
    offset = tf.linalg.matvec(tf.constant(PCA_EIGVEC), alpha * tf.constant(PCA_EIGVAL))
    return image + 255.0 * offset


def occlude(image, min_area: float, max_area: float, min_ratio: float, max_ratio: float,
            pixel_level: bool, fill_range: tuple[int, int]):
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    area = tf.random.uniform([], min_area, max_area) * height * width
    ratio = tf.exp(tf.random.uniform([], math.log(min_ratio), math.log(max_ratio)))
    h = tf.cast(tf.clip_by_value(tf.round(tf.sqrt(area / ratio)), 1.0, height), tf.int32)
    w = tf.cast(tf.clip_by_value(tf.round(tf.sqrt(area * ratio)), 1.0, width), tf.int32)
    y0 = tf.random.uniform([], 0, shape[0] - h + 1, dtype=tf.int32)
    x0 = tf.random.uniform([], 0, shape[1] - w + 1, dtype=tf.int32)
    rows = tf.range(shape[0])[:, None]
    cols = tf.range(shape[1])[None, :]
    mask = (rows >= y0) & (rows < y0 + h) & (cols >= x0) & (cols < x0 + w)
    low, high = float(fill_range[0]), float(fill_range[1])
    if pixel_level:
        fill = low + tf.random.uniform(tf.shape(image)) * (high - low)
    else:
        fill = tf.fill(tf.shape(image), low + tf.random.uniform([]) * (high - low))
    return tf.where(mask[:, :, None], fill, image)


def augment(image, aug: Augmentation):
    """All enabled augmentations, geometric first, then photometric, then occlusion."""
    if aug.shear_range.enable:
        image = _maybe(aug.shear_range.probability,
                       lambda x: shear(x, aug.shear_range.max_shear_x,
                                       aug.shear_range.max_shear_y), image)
    if aug.rotation_range.enable:
        image = _maybe(aug.rotation_range.probability,
                       lambda x: rotate(x, aug.rotation_range.max_angle), image)
    if aug.horizontal_flip.enable:
        image = _maybe(aug.horizontal_flip.probability, tf.image.flip_left_right, image)
    if aug.brightness_range.enable:
        b = aug.brightness_range
        image = _maybe(b.probability, lambda x: brightness(x, b.min_factor, b.max_factor), image)
    if aug.gamma_aug.enable:
        g = aug.gamma_aug
        image = _maybe(g.probability, lambda x: gamma(x, g.min_gamma, g.max_gamma), image)
    if aug.color_pca_aug.enable:
        c = aug.color_pca_aug
        image = _maybe(c.probability, lambda x: color_pca(x, c.alpha_std), image)
    if aug.occlusion_aug.enable:
        o = aug.occlusion_aug
        image = _maybe(o.probability, lambda x: occlude(
            x, o.min_area, o.max_area, o.min_aspect_ratio, o.max_aspect_ratio, o.pixel_level,
            o.fill_range), image)
    return tf.clip_by_value(image, 0.0, 255.0)
