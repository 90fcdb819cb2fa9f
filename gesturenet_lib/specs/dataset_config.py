"""`dataset_config.json`: where the original data lives and how hand crops are cut (TAO's
"Dataset Extraction Config")."""

from __future__ import annotations

from dataclasses import dataclass

from gesturenet_lib.specs.base import spec_field


@dataclass(frozen=True)
class AnnotationConfig:
    annotation_path: str = spec_field(
        "annotation", help="folder of Label Studio JSON files, relative to the dataset folder")


@dataclass(frozen=True)
class DatasetConfig:
    org_dataset: str = spec_field(help="name of the dataset (a folder under org_data_dir)")
    mount_dir_path: str = spec_field(
        help="root that every other path is relative to; a relative value is taken relative "
             "to the spec file's folder")
    org_data_dir: str = spec_field("original", help="original images, relative to mount_dir_path")
    post_data_dir: str = spec_field(
        "extracted", help="where crops are written, relative to mount_dir_path")
    kpi_users: list[str] = spec_field(
        default_factory=list, help="user ids set aside for the kpi (test) set")
    sampling_rate: int = spec_field(
        1, min=1, help="keep every N-th frame of each session (1 when the data are not video)")
    convert_bbox_square: bool = spec_field(
        True, help="grow the short side of each box to make it square")
    bbox_enlarge_ratio: float = spec_field(
        1.1, min=1.0, max=5.0, help="scale each box about its centre before cropping")
    annotation_config: AnnotationConfig = spec_field(default_factory=AnnotationConfig)
