"""`dataset_config.json`: where the original data lives and how hand crops are cut (TAO's
"Dataset Extraction Config")."""

from __future__ import annotations

from dataclasses import dataclass

from gesturenet_lib.specs.base import spec_field

# Defaults of the folders both spec files may name (see specs.convert_specs).
DEFAULT_ORG_DATA_DIR = "original"
DEFAULT_POST_DATA_DIR = "extracted"


@dataclass(frozen=True)
class AnnotationConfig:
    annotation_path: str = spec_field(
        "annotation", help="folder of Label Studio JSON files, relative to the dataset folder")


@dataclass(frozen=True)
class DatasetConfig:
    org_dataset: str = spec_field(help="name of the dataset (a folder under org_data_dir)")
    mount_dir_path: str | None = spec_field(
        None, help="root that every other path is relative to; a relative value is taken "
                   "relative to the spec file's folder (required here or in "
                   "dataset_experiment_config)")
    org_data_dir: str | None = spec_field(
        None, help=f"original images, relative to mount_dir_path (default "
                   f"\"{DEFAULT_ORG_DATA_DIR}\")")
    post_data_dir: str | None = spec_field(
        None, help=f"where crops are written, relative to mount_dir_path (default "
                   f"\"{DEFAULT_POST_DATA_DIR}\")")
    kpi_users: list[str] = spec_field(
        default_factory=list, help="user ids set aside for the kpi (test) set")
    sampling_rate: int = spec_field(
        1, min=1, help="keep every N-th frame of each session (1 when the data are not video)")
    convert_bbox_square: bool = spec_field(
        True, help="grow the short side of each box to make it square")
    bbox_enlarge_ratio: float = spec_field(
        1.1, min=1.0, max=5.0, help="scale each box about its centre before cropping")
    annotation_config: AnnotationConfig = spec_field(default_factory=AnnotationConfig)
