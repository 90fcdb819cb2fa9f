"""dataset_convert: TAO's original layout -> hand crops, person-disjoint splits, data.json
(and the fold files, the rejects file, the statistics, the TFDS shards), on Apache Beam.

The Beam driver is ``data.dataset_convert``; this task adds the locations: gs:// staged on a
local runner (a managed runner's workers read gs:// themselves), and a pipeline's artifacts
(the raw-data folder linked in as the originals, the dataset folder as the mount)."""

from __future__ import annotations

import os
from dataclasses import replace

from gesturenet_lib import io
from gesturenet_lib.data import dataset_file
from gesturenet_lib.data.dataset_convert import (
    ConvertRequest,
    ConvertResult,
    dataset_convert,
    datasets_of,
    is_local_runner,
)
from gesturenet_lib.specs import DatasetConfig, DatasetExperimentConfig, parse, reconcile
from gesturenet_lib.tasks.local_copies import LocalCopies, run_staged

__all__ = ["ConvertRequest", "ConvertResult", "into_dataset_folder", "run"]


def into_dataset_folder(raw_dir: str, dataset_spec: dict, experiment_spec: dict,
                        k_folds: int, experiment_name: str, dataset_dir: str,
                        beam_args: list[str] | None = None) -> ConvertRequest:
    """The request of a pipeline step: the specs given as parameters, the originals in the
    raw-data artifact, every output (crops, data.json, folds, rejects) in ``dataset_dir``,
    whatever mount_dir_path either spec names."""
    ds = replace(parse(DatasetConfig, dataset_spec), mount_dir_path=os.path.abspath(dataset_dir))
    exp = replace(parse(DatasetExperimentConfig, experiment_spec), mount_dir_path=None)
    ds, exp = reconcile(ds, exp, "dataset_spec", "experiment_spec")
    return ConvertRequest("dataset_spec", "experiment_spec", dataset_file.dataset_json(dataset_dir),
                          experiment_name, k_folds, list(beam_args or []), dataset=ds,
                          experiment=exp,
                          originals=os.path.abspath(io.join(raw_dir, ds.org_data_dir)))


def output_files(data_json: str, k_folds: int) -> list[str]:
    """Every file written beside the crops."""
    return ([data_json, dataset_file.rejects_path(data_json), dataset_file.stats_path(data_json)]
            + [dataset_file.fold_path(data_json, i) for i in range(k_folds)])


def run(request: ConvertRequest) -> ConvertResult:
    req, ds = request, request.dataset
    mount = ds.mount_dir_path if ds else None
    if ds is None or not is_local_runner(req.beam_args):
        return _convert(req)  # a managed runner's workers read and write gs:// themselves

    def on_local(copies: LocalCopies) -> ConvertRequest:
        # The gs:// outputs are probed before the whole job, not at its upload.
        for path, what, folder in ((req.output_filename, "--output_filename", False),
                                   (io.join(mount, ds.post_data_dir),
                                    f"{req.dataset_spec}: mount_dir_path/post_data_dir", True)):
            if io.is_cloud_uri(path):
                io.check_output(path, what, folder)
        for name in datasets_of(req.experiment):
            copies.pull(io.join(mount, ds.org_data_dir, name))
        copies.output(io.join(mount, ds.post_data_dir))
        for path in output_files(req.output_filename, req.k_folds):
            copies.output(path)
        return replace(req, dataset=replace(ds, mount_dir_path=copies.local(mount)),
                       output_filename=copies.local(req.output_filename),
                       originals=copies.pull(req.originals))

    return run_staged(req, (mount, req.output_filename, req.originals), on_local, _convert)


def _convert(req: ConvertRequest) -> ConvertResult:
    if req.originals is None:
        return dataset_convert(req)
    # The originals are linked in for the run only: an artifact must not hold links to another.
    link = io.join(req.dataset.mount_dir_path, req.dataset.org_data_dir)
    io.makedirs(req.dataset.mount_dir_path)
    os.symlink(os.path.abspath(req.originals), link)
    try:
        return dataset_convert(req)
    finally:
        os.unlink(link)
