"""The two spec files of `dataset_convert`, read together.

TAO's sample `dataset_experiment_config.json` repeats `mount_dir_path`, `org_data_dir` and
`post_data_dir` of `dataset_config.json`. They mean the same in both files: a value given in
one file only applies; values given in both must agree (a relative `mount_dir_path` is taken
relative to its own file's folder before the two are compared). The result is one
`DatasetConfig` holding the effective values and a `DatasetExperimentConfig` without them, so
no later step has two places to look.
"""

from __future__ import annotations

import os
from dataclasses import replace

from gesturenet_lib import io, tao_mounts
from gesturenet_lib.specs.base import SpecError, format_value, load
from gesturenet_lib.specs.dataset_config import (
    DEFAULT_ORG_DATA_DIR,
    DEFAULT_POST_DATA_DIR,
    DatasetConfig,
)
from gesturenet_lib.specs.dataset_experiment_config import DatasetExperimentConfig

SHARED_KEYS = {"mount_dir_path": None, "org_data_dir": DEFAULT_ORG_DATA_DIR,
               "post_data_dir": DEFAULT_POST_DATA_DIR}  # key -> default when neither gives it


def _comparable(path: str) -> str:
    return path.rstrip("/") if io.is_cloud_uri(path) else os.path.normpath(path)


def reconcile(ds: DatasetConfig, exp: DatasetExperimentConfig, ds_file: str, exp_file: str,
              ds_base: str | None = None, exp_base: str | None = None
              ) -> tuple[DatasetConfig, DatasetExperimentConfig]:
    """Merge the keys both files may give; ``*_base``: the folder each file's relative
    mount_dir_path is relative to (None: leave it as written)."""
    effective = {}
    for key, default in SHARED_KEYS.items():
        mine, theirs = getattr(ds, key), getattr(exp, key)
        if key == "mount_dir_path":
            mine = mine if mine is None else tao_mounts.resolve(mine, ds_base)
            theirs = theirs if theirs is None else tao_mounts.resolve(theirs, exp_base)
        if mine is not None and theirs is not None and _comparable(mine) != _comparable(theirs):
            raise SpecError("", None, f"{key} = {format_value(getattr(ds, key))}, but "
                            f"{exp_file}: {key} = {format_value(getattr(exp, key))}; the two "
                            "spec files must give the same value (or give it in one only)",
                            ds_file)
        value = mine if mine is not None else theirs if theirs is not None else default
        if value is None:
            raise SpecError(key, None, f"missing required key (string), in this file or in "
                            f"{exp_file}", ds_file, show_value=False)
        effective[key] = value
    written = _written_mount(ds, exp, ds_base, exp_base)
    if written is not None:
        effective.update(_nested_mounts(written, effective, ds_file))
    return replace(ds, **effective), replace(exp, **dict.fromkeys(SHARED_KEYS))


def _written_mount(ds: DatasetConfig, exp: DatasetExperimentConfig, ds_base: str | None,
                   exp_base: str | None) -> str | None:
    """mount_dir_path as the spec wrote it (absolute, before the TAO mounts map it); None
    when it is a URI or was left relative."""
    for value, base in ((ds.mount_dir_path, ds_base), (exp.mount_dir_path, exp_base)):
        if value is None or io.is_cloud_uri(value) or (base and io.is_cloud_uri(base)):
            continue
        if os.path.isabs(value) or base is not None:
            return tao_mounts.absolute(value, base) if base is not None else value
    return None


def _nested_mounts(written: str, effective: dict, ds_file: str) -> dict:
    """org_data_dir as the host path a nested TAO mount gives it (data is read from there);
    post_data_dir may not sit on another mount than mount_dir_path, since data.json records
    crops relative to mount_dir_path."""
    mount = effective["mount_dir_path"]
    org = tao_mounts.map_joined(written, effective["org_data_dir"])
    changed = {}
    if org != os.path.normpath(os.path.join(mount, effective["org_data_dir"])):
        changed["org_data_dir"] = org  # absolute: io.join(mount, org) is org itself
    post = tao_mounts.map_joined(written, effective["post_data_dir"].strip("/"))
    if post != os.path.normpath(os.path.join(mount, effective["post_data_dir"].strip("/"))):
        raise SpecError("post_data_dir", effective["post_data_dir"],
                        f"lies on another TAO mount ({post}) than mount_dir_path ({mount}); "
                        "crops are recorded relative to mount_dir_path", ds_file)
    return changed


def load_convert_specs(dataset_spec: str, experiment_spec: str
                       ) -> tuple[DatasetConfig, DatasetExperimentConfig]:
    """Read, validate and reconcile dataset_convert's two spec files; ``mount_dir_path`` comes
    back resolved (absolute, or a gs:// URI)."""
    ds = load(DatasetConfig, dataset_spec)
    exp = load(DatasetExperimentConfig, experiment_spec)
    # io.resolve against each file's folder gives absolute paths: nothing left to make so
    return reconcile(ds, exp, dataset_spec, experiment_spec, io.parent(dataset_spec),
                     io.parent(experiment_spec))
