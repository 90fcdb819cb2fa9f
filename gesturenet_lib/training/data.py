"""Training input on tf.data: the sets of a data.json, read from the TFDS shards that
dataset_convert wrote (when present) or from the crop files, resized, augmented, batched and
prefetched in parallel so that the input never waits on Python."""

from __future__ import annotations

import json
from dataclasses import dataclass

from gesturenet_lib import io
from gesturenet_lib.data.dataset_file import SETS, DatasetFile
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.models.preprocessing import Preprocessing
from gesturenet_lib.specs.experiment import Augmentation


@dataclass(frozen=True)
class ImageSet:
    """One set of a data.json: crop files (absolute) and class indices; optionally its TFDS
    split."""
    name: str
    paths: list[str]
    labels: list[int]
    tfds_dir: str | None = None
    tfds_split: str | None = None
    tfds_remap: tuple[int, ...] = ()   # TFDS label index -> spec class index

    def __len__(self) -> int:
        return len(self.paths)


def read_class_weights(data: DatasetFile, classes: dict[str, int]) -> list[float] | None:
    """Per-class loss weights, when data.json gives them as ``"class_weights": {name: w}``
    (classes it does not name weigh 1)."""
    given = data.class_weights
    if given is None:
        return None
    if not isinstance(given, dict):
        raise UserInputError(f"{data.path}: class_weights = {json.dumps(given)[:60]}: must be "
                             "an object of class name -> weight")
    weights = [1.0] * len(classes)
    for name, weight in given.items():
        if name not in classes or not isinstance(weight, (int, float)) or weight < 0:
            raise UserInputError(f"{data.path}: class_weights.{name} = {json.dumps(weight)}: "
                                 "must be a weight >= 0 of a class in dataset.classes")
        weights[classes[name]] = float(weight)
    return weights


def read_sets(data: DatasetFile, image_root: str, classes: dict[str, int],
              names: tuple[str, ...] = SETS, use_tfds: bool = True) -> dict[str, ImageSet]:
    """The sets of a data.json with labels mapped by the spec's ``classes``."""
    tfds_path = io.join(image_root, data.tfds_dir) if (use_tfds and data.tfds_dir) else None
    if tfds_path and not io.exists(io.join(tfds_path, "dataset_info.json")):
        tfds_path = None
    # TFDS stores dataset_convert's class indices; map them to the spec's by name (classes
    # the spec lacks map to -1 and are refused below through the per-image labels).
    convert_classes = sorted(data.classes, key=data.classes.get)
    remap = tuple(classes.get(name, -1) for name in convert_classes)
    sets = {}
    for name in names:
        entries = data.entries(name, classes)
        split = data.tfds_splits.get(name)
        sets[name] = ImageSet(name, [io.join(image_root, e.bbox_path) for e in entries],
                              [classes[e.label] for e in entries],
                              tfds_path if split else None, split, remap)
    return sets


def _decode_file(path):
    import tensorflow as tf

    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def make_dataset(images: ImageSet, prep: Preprocessing, num_classes: int, batch_size: int,
                 augmentation: Augmentation | None, shuffle: bool, seed: int,
                 cache: bool = True, repeat: bool = False):
    """(input tensor, one-hot label) batches; training sets shuffle and augment. ``repeat``
    repeats whole passes (batching comes first, so each pass ends with its partial batch)."""
    import tensorflow as tf

    from gesturenet_lib.training.augment import augment

    autotune = tf.data.AUTOTUNE
    if images.tfds_dir and images.tfds_split:
        import tensorflow_datasets as tfds

        builder = tfds.builder_from_directory(images.tfds_dir)
        ds = builder.as_dataset(split=images.tfds_split, shuffle_files=False)
        remap = tf.constant(images.tfds_remap, tf.int64)
        ds = ds.map(lambda ex: (ex["image"], tf.gather(remap, ex["label"])),
                    num_parallel_calls=autotune)
    else:
        ds = tf.data.Dataset.from_tensor_slices((images.paths, images.labels))
        ds = ds.map(lambda p, y: (_decode_file(p), tf.cast(y, tf.int64)),
                    num_parallel_calls=autotune)
    ds = ds.map(lambda x, y: (prep.tf_resize(x), y), num_parallel_calls=autotune)
    if cache:
        ds = ds.cache()  # resized crops are small; decoding once per run is enough
    if shuffle:
        ds = ds.shuffle(max(1, len(images)), seed=seed, reshuffle_each_iteration=True)
    if augmentation is not None:
        ds = ds.map(lambda x, y: (augment(x, augmentation), y), num_parallel_calls=autotune)
    ds = ds.map(lambda x, y: (prep.tf_normalize(x), tf.one_hot(y, num_classes)),
                num_parallel_calls=autotune)
    ds = ds.batch(batch_size)
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(autotune)
