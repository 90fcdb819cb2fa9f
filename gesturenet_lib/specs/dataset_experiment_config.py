"""`dataset_experiment_config.json`: which datasets and users form train/validation/kpi,
metadata filters, and class sampling (TAO's "Dataset Experiment Config")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gesturenet_lib.specs.base import fail, join_path, spec_field

# One metadata filter: an image is discarded when its metadata matches every key/value of it.
MetadataFilter = dict[str, str | int | float | bool]


@dataclass(frozen=True)
class SetList:
    train_val: list[str] = spec_field(
        default_factory=list, help="datasets whose users (other than kpi users) train and validate")
    kpi: list[str] = spec_field(
        default_factory=list, help="datasets whose listed kpi users form the kpi set")

    def check(self, at: str) -> None:
        if not self.train_val:
            fail(join_path(at, "train_val"), self.train_val, "must list at least one dataset")


@dataclass(frozen=True)
class ImageFeatureFilter:
    train_val: dict[str, list[MetadataFilter]] = spec_field(
        default_factory=dict,
        help='per dataset name ("*" for all): filters applied to train/validation images')
    kpi: dict[str, list[MetadataFilter]] = spec_field(
        default_factory=dict, help='per dataset name ("*" for all): filters applied to kpi images')


@dataclass(frozen=True)
class Sampling:
    sampling_mode: Literal["average"] = spec_field(
        "average", help="how the training set is resampled when use_class_weights is on")
    use_class_weights: bool = spec_field(
        False, help="resample the training set so class proportions follow class_weights")
    class_weights: dict[str, float] = spec_field(
        default_factory=dict, min=0.0, help="target share of each class (normalised to sum 1)")

    def check(self, at: str) -> None:
        for name, weight in self.class_weights.items():
            if weight < 0:
                fail(join_path(join_path(at, "class_weights"), name), weight, "must be >= 0")
        if self.use_class_weights:
            if not self.class_weights:
                fail(join_path(at, "class_weights"), self.class_weights,
                     "must name at least one class when use_class_weights is true")
            if sum(self.class_weights.values()) <= 0:
                fail(join_path(at, "class_weights"), self.class_weights,
                     "must have a positive sum when use_class_weights is true")


@dataclass(frozen=True)
class UidList:
    uid_name: str = spec_field(
        "user_id",
        help="the metadata field (set file or annotation) whose value identifies each person; "
             "every split and fold keeps a person in one split. Without that field, the "
             "user's folder name is the id")
    predefined_val_users: bool = spec_field(
        False, help="take validation users from `validation` instead of drawing val_fraction")
    val_fraction: float = spec_field(
        0.25, min=0.0, max=1.0, min_exclusive=True,
        help="share of train/val users drawn (by a stable hash) for validation")
    validation: list[str] = spec_field(default_factory=list, help="predefined validation users")
    kpi: list[str] = spec_field(default_factory=list, help="more kpi users (with kpi_users)")

    def check(self, at: str) -> None:
        if self.predefined_val_users and not self.validation:
            fail(join_path(at, "validation"), self.validation,
                 "must list users when predefined_val_users is true")
        overlap = sorted(set(self.validation) & set(self.kpi))
        if overlap:
            fail(join_path(at, "validation"), overlap,
                 "users cannot be in both validation and kpi")


GESTURENET_CLASSES = ["thumbs_up", "fist", "stop", "ok", "two", "random"]


@dataclass(frozen=True)
class DatasetExperimentConfig:
    mount_dir_path: str | None = spec_field(
        None, help="as in dataset_config (TAO's sample gives it in both files; values that "
                   "differ are an error)")
    org_data_dir: str | None = spec_field(None, help="as in dataset_config")
    post_data_dir: str | None = spec_field(None, help="as in dataset_config")
    classes: list[str] = spec_field(
        default_factory=lambda: list(GESTURENET_CLASSES),
        help="gesture labels accepted in annotations, in class-index order (our addition; "
             "TAO's six by default)")
    set_list: SetList = spec_field(default_factory=lambda: SetList(train_val=["data"]))
    image_feature_filter: ImageFeatureFilter = spec_field(default_factory=ImageFeatureFilter)
    sampling: Sampling = spec_field(default_factory=Sampling)
    uid_list: UidList = spec_field(default_factory=UidList)

    def check(self, at: str) -> None:
        if not self.classes:
            fail(join_path(at, "classes"), self.classes, "must list at least one class")
        seen = set()
        for i, name in enumerate(self.classes):
            if name in seen:
                fail(join_path(join_path(at, "classes"), i), name, "is listed twice")
            seen.add(name)

    @property
    def weighted_classes_not_in_classes(self) -> list[str]:
        """Classes ``sampling.class_weights`` names that no record can have (TAO's sample names
        ``v``): accepted, their weights act on nothing, and the summary says so."""
        return sorted(set(self.sampling.class_weights) - set(self.classes))
