"""The converted crops as a TFDS dataset: sharded TFRecords written by the Beam pipeline, then
TFDS's metadata (dataset_info.json, features.json) so that
``tfds.builder_from_directory(<tfds_dir>)`` opens it. Training at scale reads a few large shards
instead of many small crop files from cloud storage.
"""

from __future__ import annotations

import io as _bytes_io
import math
import os

import apache_beam as beam

from gesturenet_lib import io

DATASET_NAME = "gesturenet"
FILENAME_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
SHARD_EXAMPLES = 1000  # examples per shard file: a few MB to tens of MB of PNG crops


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
        from tensorflow.core.example.example_pb2 import Example

        self.features = features(self.classes)
        self.example = Example

    def _deterministic(self, serialized: bytes) -> bytes:
        """The same bytes in every process: a protobuf map (the example's features) is
        written in an order of its own per process unless asked otherwise."""
        return self.example.FromString(serialized).SerializeToString(deterministic=True)

    def process(self, item):
        split, entry = item
        png = io.read_bytes(io.join(self.mount_dir, entry["bbox_path"]))
        yield split, (entry["bbox_path"], self._deterministic(self.features.serialize_example({
            "image": _bytes_io.BytesIO(png),
            "label": entry["label"],
            "user_id": entry["user_id"],
            "bbox_path": entry["bbox_path"],
            "full_image_path": entry["full_image_path"],
        })))


class WriteSplitShardsFn(beam.DoFn):
    """(split name, [(bbox_path, serialized example)]) -> that split's shard files, in
    bbox_path order (the same inputs give the same files), each written whole (atomically)."""

    def __init__(self, tfds_dir: str):
        self.tfds_dir = tfds_dir

    def process(self, item):
        import tempfile

        import tensorflow as tf

        name, examples = item
        examples = sorted(examples)
        count = max(1, math.ceil(len(examples) / SHARD_EXAMPLES))
        for shard in range(count):
            target = io.join(self.tfds_dir, f"{DATASET_NAME}-{name}.tfrecord-"
                                            f"{shard:05d}-of-{count:05d}")
            with tempfile.TemporaryDirectory(prefix="gesturenet-tfds-") as tmp:
                local = os.path.join(tmp, "shard.tfrecord")
                with tf.io.TFRecordWriter(local) as writer:
                    for _, example in examples[shard * SHARD_EXAMPLES:
                                               (shard + 1) * SHARD_EXAMPLES]:
                        writer.write(example)
                with open(local, "rb") as handle:
                    io.write_bytes(target, handle.read())
            yield target


class WriteTfdsShards(beam.PTransform):
    """Write one sharded TFRecord file set per split name: examples grouped by split, one
    writer per split (no Partition: a multi-output step, which Beam's DaskRunner does not
    route)."""

    def __init__(self, tfds_dir: str, classes: tuple[str, ...], mount_dir: str):
        super().__init__()
        self.tfds_dir = tfds_dir
        self.classes = classes
        self.mount_dir = mount_dir

    def expand(self, pairs):
        return (pairs
                | "Serialize" >> beam.ParDo(SerializeExampleFn(self.classes, self.mount_dir))
                | "BySplit" >> beam.GroupByKey()
                | "WriteShards" >> beam.ParDo(WriteSplitShardsFn(self.tfds_dir)))


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
