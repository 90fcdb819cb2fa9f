"""The converted crops as a TFDS dataset: sharded TFRecords written by the Beam pipeline, then
TFDS's metadata (dataset_info.json, features.json) so that
``tfds.builder_from_directory(<tfds_dir>)`` opens it. Training at scale reads a few large shards
instead of many small crop files from cloud storage.
"""

from __future__ import annotations

import io as _bytes_io

import apache_beam as beam

from gesturenet_lib import io

DATASET_NAME = "gesturenet"
FILENAME_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"


def features(classes: tuple[str, ...]):
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
        "label": tfds.features.ClassLabel(names=list(classes)),
        "user_id": tfds.features.Text(),
        "bbox_path": tfds.features.Text(),
        "full_image_path": tfds.features.Text(),
    })


class SerializeExampleFn(beam.DoFn):
    """(split, data.json entry) -> (split, serialized tf.train.Example with the crop's PNG)."""

    def __init__(self, classes: tuple[str, ...], mount_dir: str):
        self.classes = classes
        self.mount_dir = mount_dir

    def setup(self):
        self.features = features(self.classes)

    def process(self, item):
        split, entry = item
        png = io.read_bytes(io.join(self.mount_dir, entry["bbox_path"]))
        yield split, self.features.serialize_example({
            "image": _bytes_io.BytesIO(png),
            "label": entry["label"],
            "user_id": entry["user_id"],
            "bbox_path": entry["bbox_path"],
            "full_image_path": entry["full_image_path"],
        })


class WriteTfdsShards(beam.PTransform):
    """Write one sharded TFRecord file set per split name."""

    def __init__(self, tfds_dir: str, split_names: list[str], classes: tuple[str, ...],
                 mount_dir: str):
        super().__init__()
        self.tfds_dir = tfds_dir
        self.split_names = split_names
        self.classes = classes
        self.mount_dir = mount_dir

    def expand(self, pairs):
        serialized = pairs | "Serialize" >> beam.ParDo(
            SerializeExampleFn(self.classes, self.mount_dir))
        index = {name: i for i, name in enumerate(self.split_names)}
        parts = serialized | "BySplit" >> beam.Partition(
            lambda item, n: index[item[0]], len(self.split_names))
        for name, part in zip(self.split_names, parts, strict=True):
            (part
             | f"Values_{name}" >> beam.Values()
             | f"Write_{name}" >> beam.io.WriteToTFRecord(
                 io.join(self.tfds_dir, f"{DATASET_NAME}-{name}.tfrecord"),
                 shard_name_template="-SSSSS-of-NNNNN"))
        return pairs.pipeline


def write_metadata(tfds_dir: str, classes: tuple[str, ...], description: str) -> list[str]:
    """After the shards exist: compute split sizes and write TFDS's metadata. Returns the
    split names found."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core import naming

    template = naming.ShardedFileTemplate(data_dir=tfds_dir, template=FILENAME_TEMPLATE,
                                          dataset_name=DATASET_NAME, filetype_suffix="tfrecord")
    split_infos = tfds.folder_dataset.compute_split_info(filename_template=template)
    tfds.folder_dataset.write_metadata(
        data_dir=tfds_dir, features=features(classes), split_infos=split_infos,
        filename_template=template, check_data=False, description=description)
    return [info.name for info in split_infos]
