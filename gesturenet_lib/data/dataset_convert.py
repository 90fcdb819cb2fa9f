"""`dataset_convert`: read TAO's original layout, cut hand crops, split by person, write data.json.

The driver below resolves the specs, lists the datasets, users and annotation files, plans the
person-disjoint splits, then runs the Beam pipeline of ``convert_pipeline``. Beam options pass
through unchanged (``--runner DataflowRunner --project ...``); without ``--runner`` the local
runner uses every core.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from gesturenet_lib import io
from gesturenet_lib.data import stored_tables
from gesturenet_lib.data.annotations import DatasetLayout, read_users, subject_id
from gesturenet_lib.data.images import DEFAULT_MAX_PIXELS
from gesturenet_lib.data.splits import SplitPlan, plan_splits
from gesturenet_lib.errors import RecordError, UserInputError
from gesturenet_lib.specs import DatasetConfig, DatasetExperimentConfig, load_convert_specs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvertRequest:
    dataset_spec: str          # the spec files' names, for messages
    experiment_spec: str
    output_filename: str
    experiment_name: str
    k_folds: int = 0
    beam_args: list[str] = field(default_factory=list)
    write_tfds: bool = True
    crop_processes: int = 0  # processes per Beam worker for the crop step; 0: see below
    max_image_pixels: int = DEFAULT_MAX_PIXELS  # larger images are rejected before decoding
    # The two specs, validated and reconciled (mount_dir_path resolved): parsed once, at the
    # edge (``from_files``, or a pipeline step from its parameters).
    dataset: DatasetConfig | None = None
    experiment: DatasetExperimentConfig | None = None
    # The <org_data_dir> folder when it lies outside the mount (a pipeline's raw-data
    # artifact): the task links it in as <mount_dir_path>/<org_data_dir> for the run.
    originals: str | None = None

    @classmethod
    def from_files(cls, dataset_spec: str, experiment_spec: str, output_filename: str,
                   experiment_name: str, **options) -> ConvertRequest:
        ds, exp = load_convert_specs(dataset_spec, experiment_spec)  # errors name the files
        return cls(dataset_spec, experiment_spec, output_filename, experiment_name,
                   dataset=ds, experiment=exp, **options)


@dataclass(frozen=True)
class ConvertResult:
    data_json: str
    rejects_file: str
    fold_files: list[str]
    tfds_dir: str | None
    stats: dict
    summary: str
    classes: list[str]

    @property
    def left_out(self) -> int:
        """Boxes in the rejects file: rejected, filtered or sampled out."""
        return sum(self.stats[k] for k in ("rejected", "filtered", "sampled_out"))

    @property
    def counts(self) -> dict[str, int]:
        """Every box read, where it went, and the images of each set."""
        stats = self.stats
        return {**{name: stats[name] for name in ("boxes_read", "crops", "rejected", "filtered",
                                                  "sampled_out")},
                **{f"{split}_images": sum(per_class.values())
                   for split, per_class in stats["per_split"].items()}}


# Beam's in-process portable runner, named directly: DirectRunner would first try to download
# the Prism runner binary from the internet (a failed attempt costs ~0.3 s here, and may hang on
# a cluster node without egress) and then fall back to this same runner.
LOCAL_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"
# Runners that can run the pipeline inside this process (with --direct_running_mode=in_memory)
IN_PROCESS_RUNNERS = ("DirectRunner", "FnApiRunner", LOCAL_RUNNER)
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
LOCAL_RUNNER_NAMES = (*IN_PROCESS_RUNNERS, "BundleBasedDirectRunner", "SwitchingDirectRunner",
                      "PrismRunner")


def _flag_value(args: list[str], flag: str) -> str | None:
    """The value of ``flag`` in Beam arguments, given as ``flag=value`` or ``flag value``."""
    value = next((a.split("=", 1)[1] for a in args if a.startswith(f"{flag}=")), None)
    if value is None and flag in args[:-1]:
        value = args[args.index(flag) + 1]
    return value


def _runner_of(args: list[str]) -> str | None:
    return _flag_value(args, "--runner")


DASK_PARTITIONS = 32  # parts of the work on Dask, without --dask_npartitions nor a known cluster
# Parts of the work per worker thread of a known cluster: a few, so that the last ones end
# together. More parts cost more: each is a task of every step, and the write's gathering
# shuffle grows with their square (measured on 2 threads, 3,000 images: 32 parts took
# 1.2-1.4x as long as 8 or 4).
DASK_PARTITIONS_PER_THREAD = 4
# Listing shards per part of the work: a few each, so that parts of unequal size even out.
SHARDS_PER_PARTITION = 4
# Listing shards on another distributed runner (Dataflow, Flink), which spreads them over
# its workers.
DISTRIBUTED_SHARDS = 256


def dask_partitions(beam_args: list[str]) -> int:
    """On the DaskRunner, the Dask partitions the listing shards (and so all the work) are cut
    into: the only parallelism Beam's DaskRunner has. 1 elsewhere."""
    args = default_beam_args(beam_args)
    if _runner_of(args) != DASK_RUNNER:
        return 1
    given = _flag_value(args, "--dask_npartitions")
    return int(given) if given and given.isdigit() else DASK_PARTITIONS


def _partitioning_given(args: list[str]) -> bool:
    """True when Beam's arguments say how to cut the work into Dask partitions."""
    return any(a.startswith(("--dask_npartitions", "--dask_partition_size")) for a in args)


def listing_shards(beam_args: list[str]) -> int:
    """How many listing shards a runner that is not this process should get (about)."""
    if _runner_of(default_beam_args(beam_args)) == DASK_RUNNER:
        return SHARDS_PER_PARTITION * dask_partitions(beam_args)
    return DISTRIBUTED_SHARDS


def default_beam_args(beam_args: list[str]) -> list[str]:
    """Without --runner: the local runner in one process, whose crop step (the heavy one) runs
    a process pool over every core. Measured on 2 cores (bench/dataset_convert_bench.py), this
    beat ``--direct_running_mode multi_processing`` (worker start-up and cross-process traffic
    for every step, which stays available by flag) and a thread pool (OpenCV in threads
    scaled poorly).

    ``--runner DaskRunner`` names Beam's runner for a Dask cluster (Beam knows it only by its
    module path)."""
    runner = _runner_of(beam_args)
    if runner == "DaskRunner":
        args = [DASK_RUNNER if a == "DaskRunner" else
                f"--runner={DASK_RUNNER}" if a == "--runner=DaskRunner" else a
                for a in beam_args]
        if not _partitioning_given(args):
            args.append(f"--dask_npartitions={DASK_PARTITIONS}")
        return args
    if runner is not None:
        return list(beam_args)
    extra = [f"--runner={LOCAL_RUNNER}"]
    if not any(a.startswith("--direct_running_mode") for a in beam_args):
        extra.append("--direct_running_mode=in_memory")
    if not any(a.startswith("--direct_num_workers") for a in beam_args):
        extra.append("--direct_num_workers=1")
    return extra + list(beam_args)


def runs_in_process(req: ConvertRequest) -> bool:
    """True when the whole pipeline runs in this process, as one Beam worker that keeps the
    order of the elements it is given."""
    args = default_beam_args(req.beam_args)
    return _runner_of(args) in IN_PROCESS_RUNNERS and "--direct_running_mode=in_memory" in args


def crop_processes(req: ConvertRequest) -> int:
    """Processes for the crop step: as asked; else every core on the default local runner
    (one Beam worker), and 1 elsewhere (managed runners already run a worker per core)."""
    if req.crop_processes > 0:
        return req.crop_processes
    return (os.cpu_count() or 1) if runs_in_process(req) else 1


def _absolute(path: str) -> str:
    return path if io.is_cloud_uri(path) else os.path.abspath(path)


def is_local_runner(beam_args: list[str]) -> bool:
    """True when the Beam runner runs on this machine (it can read a local staging cache)."""
    runner = _runner_of(default_beam_args(beam_args))
    return runner is None or runner in LOCAL_RUNNER_NAMES


def datasets_of(exp: DatasetExperimentConfig) -> list[str]:
    return list(dict.fromkeys(exp.set_list.train_val + exp.set_list.kpi))


def _layouts(ds: DatasetConfig, mount: str, exp: DatasetExperimentConfig,
             spec_file: str) -> list[DatasetLayout]:
    layouts = []
    for name in datasets_of(exp):
        dataset_dir = io.join(mount, ds.org_data_dir, name)
        if not io.is_dir(dataset_dir):
            raise UserInputError(f"{spec_file}: dataset folder {dataset_dir} "
                                 f"(mount_dir_path/org_data_dir/{name}) not found")
        try:
            users = read_users(dataset_dir, name, ds.annotation_config.annotation_path)
        except RecordError as err:
            raise UserInputError(str(err)) from None
        layout = DatasetLayout(mount, ds.org_data_dir, name, ds.annotation_config.annotation_path,
                               tuple(exp.classes), users, exp.uid_list.uid_name)
        if not io.is_dir(layout.annotation_dir):
            raise UserInputError(f"{spec_file}: annotation_config.annotation_path = "
                                 f"{json.dumps(ds.annotation_config.annotation_path)}: folder "
                                 f"{layout.annotation_dir} not found")
        layouts.append(layout)
    return layouts


def _plan(ds: DatasetConfig, exp: DatasetExperimentConfig, layouts: list[DatasetLayout],
          req: ConvertRequest) -> SplitPlan:
    def people(lay: DatasetLayout) -> set[str]:
        return {subject_id(u, meta, lay.uid_name) for u, meta in lay.users.items()}

    train_val = {p for lay in layouts if lay.dataset in exp.set_list.train_val
                 for p in people(lay)}
    everyone = {p for lay in layouts for p in people(lay)}
    kpi = set(ds.kpi_users) | set(exp.uid_list.kpi)
    missing = sorted(kpi - everyone)
    if missing:
        log.warning("%d kpi users are in no dataset (e.g. %s)", len(missing), missing[0])
    return plan_splits(train_val, kpi, req.experiment_name, exp.uid_list.val_fraction,
                       exp.uid_list.validation if exp.uid_list.predefined_val_users else None,
                       req.k_folds)


def _guard_settings(folder: str, record: str, experiment_name: str) -> None:
    """Refuse to mix crops made with other settings under the same experiment name."""
    path = io.join(folder, "convert_settings.json")
    if io.exists(path) and io.read_text(path) != record:
        raise UserInputError(
            f"--experiment_name {experiment_name}: {path} holds crops made with other settings; "
            "choose a new experiment name or delete that folder")
    io.write_text(path, record)


@dataclass
class ConvertJob:
    """Everything a conversion needs, resolved and checked before Beam starts."""
    req: ConvertRequest
    ds: DatasetConfig
    exp: DatasetExperimentConfig
    mount: str
    layouts: list
    crop_settings: object
    out_settings: object
    data_json: str
    tfds_dir: str | None
    tables_file: str  # the plan and the users, which the steps read instead of carrying


def prepare(req: ConvertRequest) -> ConvertJob:
    """Validate the request and specs, list the data, plan the splits (no Beam yet)."""
    from gesturenet_lib.data.cropping import CropSettings
    from gesturenet_lib.data.write_step import OutputSettings

    if req.max_image_pixels < 1:
        raise UserInputError(f"--max_image_pixels {req.max_image_pixels}: must be >= 1")
    if req.k_folds < 0:
        raise UserInputError(f"--k_folds {req.k_folds}: must be 0 (no folds) or >= 2")
    if not req.experiment_name or "/" in req.experiment_name:
        raise UserInputError(f"--experiment_name {req.experiment_name!r}: must be a non-empty "
                             "name without '/'")
    ds, exp = req.dataset, req.experiment
    if ds is None or exp is None:
        raise ValueError("ConvertRequest: parse the specs first (ConvertRequest.from_files)")
    mount = ds.mount_dir_path
    io.check_output(req.output_filename, "--output_filename")  # before the work, not after
    io.check_output(io.join(mount, ds.post_data_dir),
                    f"{req.dataset_spec}: mount_dir_path/post_data_dir", folder=True)
    layouts = _layouts(ds, mount, exp, req.dataset_spec)
    plan = _plan(ds, exp, layouts, req)
    # The pipeline lists the files itself; here one is enough to fail early on an empty tree.
    if not any(path.endswith(".json") for lay in layouts for path in io.list_files(
            lay.annotation_dir)):
        raise UserInputError(f"{req.dataset_spec}: no annotation files (*.json) under "
                             + ", ".join(lay.annotation_dir for lay in layouts))
    if exp.weighted_classes_not_in_classes:
        log.warning("dataset_convert: %s: sampling.class_weights names %s, not in the class "
                    "list; those weights act on nothing", req.experiment_spec,
                    ", ".join(exp.weighted_classes_not_in_classes))
    log.info("dataset_convert: %d dataset(s); users: %d train, %d validation, %d kpi",
             len(layouts), len(plan.train_users), len(plan.validation_users),
             len(plan.kpi_users))
    crop_settings = CropSettings(mount, ds.post_data_dir, req.experiment_name,
                                    ds.convert_bbox_square, ds.bbox_enlarge_ratio,
                                    org_data_dir=ds.org_data_dir,
                                    max_pixels=req.max_image_pixels)
    record = settings_record(crop_settings, list(exp.classes))
    for lay in layouts:
        _guard_settings(io.join(mount, ds.post_data_dir, lay.dataset, req.experiment_name),
                        record, req.experiment_name)
    tfds_rel = f"{ds.post_data_dir.strip('/')}/{layouts[0].dataset}/{req.experiment_name}/tfds"
    tfds_dir = io.join(mount, tfds_rel) if req.write_tfds else None
    tables_file = io.join(mount, ds.post_data_dir, layouts[0].dataset, req.experiment_name,
                          stored_tables.FILE_NAME)
    stored_tables.write_tables(tables_file, plan, {lay.dataset: lay.users for lay in layouts})
    data_json = _absolute(req.output_filename)
    out_settings = OutputSettings(
        data_json=data_json, classes=tuple(exp.classes), k_folds=req.k_folds,
        experiment_name=req.experiment_name, use_class_weights=exp.sampling.use_class_weights,
        class_weights={c: w for c, w in exp.sampling.class_weights.items() if c in exp.classes},
        tfds_dir=tfds_rel if req.write_tfds else None,
        unused_class_weights=tuple(exp.weighted_classes_not_in_classes))
    return ConvertJob(req, ds, exp, mount, layouts, crop_settings, out_settings,
                      data_json, tfds_dir, tables_file)


def settings_record(*parts: Any) -> str:
    """A stable JSON of the settings that determine the crops (for safe resumption)."""
    def plain(part: Any) -> Any:
        if not hasattr(part, "__dataclass_fields__"):
            return part
        fields = asdict(part)
        for name in getattr(part, "NOT_RECORDED", ()):
            fields.pop(name)
        return fields

    return json.dumps([plain(p) for p in parts], sort_keys=True, indent=1, default=str) + "\n"


def build_pipeline(job: ConvertJob, p) -> None:
    """Add the conversion's transforms to Beam pipeline ``p`` (any runner)."""
    import apache_beam as beam

    from gesturenet_lib.data import convert_pipeline as cp
    from gesturenet_lib.data import tfds_writer
    from gesturenet_lib.data.crop_step import CropHands
    from gesturenet_lib.data.dead_letters import DROPPED, REJECTED, SAMPLED_OUT
    from gesturenet_lib.data.write_step import WriteDatasetJson

    exp = job.exp
    # The steps get the plan and the users as references to the tables file (see there).
    plan = stored_tables.StoredPlan(job.tables_file)
    layouts = [replace(lay, users=stored_tables.StoredUsers(job.tables_file,
                                                                        lay.dataset))
               for lay in job.layouts]
    in_process = runs_in_process(job.req)
    # One worker in this process reads each annotation tree in sorted order, and crops
    # stream as files are parsed; elsewhere the trees are cut into shards by folder.
    shards = (cp.whole_trees(job.layouts) if in_process else
              cp.plan_listing(job.layouts, listing_shards(job.req.beam_args)))
    read = p | "ReadHands" >> cp.ReadHands(
        shards, cp.ParseAnnotation(layouts),
        cp.AssignSplit(plan, exp.set_list.kpi, exp.set_list.train_val),
        cp.FilterByMetadata(exp.image_feature_filter.train_val, exp.image_feature_filter.kpi),
        spread=not in_process)
    sampled = read["groups"] | "SampleFrames" >> cp.SampleFrames(job.ds.sampling_rate)
    # Forked crop processes would share the parent's open GCS connections: gs:// data get one
    # process per Beam worker.
    processes = 1 if io.is_cloud_uri(job.mount) else crop_processes(job.req)
    crops = sampled["kept"] | "CropHands" >> CropHands(job.crop_settings, processes)
    # At sampling rate 1 nothing is sampled out: that step has no dead letters.
    dead_letters = (read[DROPPED], sampled.get(SAMPLED_OUT), crops[REJECTED])
    dropped = (tuple(d for d in dead_letters if d is not None)
               | "AllDropped" >> beam.Flatten())
    final = (crops["entries"], dropped) | "WriteDatasetJson" >> WriteDatasetJson(
        job.out_settings, plan, emit_entries=bool(job.tfds_dir))
    if job.tfds_dir:
        _ = final | "WriteTfdsShards" >> tfds_writer.WriteTfdsShards(
            job.tfds_dir, tuple(exp.classes), job.mount)


def dataset_convert(req: ConvertRequest) -> ConvertResult:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.runner import PipelineState

    from gesturenet_lib.data import dask_cluster, dataset_file, tfds_writer

    args = default_beam_args(req.beam_args)
    on_dask = _runner_of(args) == DASK_RUNNER
    address = _flag_value(args, dask_cluster.ADDRESS_FLAG) if on_dask else None
    if address:
        threads = dask_cluster.check_cluster(address)  # before anything is submitted
        if not _partitioning_given(req.beam_args):
            req = replace(req, beam_args=[*req.beam_args, "--dask_npartitions="
                                          f"{DASK_PARTITIONS_PER_THREAD * threads}"])
            args = default_beam_args(req.beam_args)
    job = prepare(req)
    if job.tfds_dir and io.exists(job.tfds_dir):
        for stale in io.list_files(job.tfds_dir):  # shard counts may differ from the last run
            io.delete(stale)
    log.info("dataset_convert: running Beam pipeline (%s)", " ".join(args))
    p = beam.Pipeline(options=PipelineOptions(args))
    build_pipeline(job, p)
    result = p.run()
    if on_dask:
        dask_cluster.wait(result, address)
    else:
        state = result.wait_until_finish()
        if state != PipelineState.DONE:
            raise UserInputError(f"dataset_convert: the Beam pipeline ended {state}, not "
                                 "DONE; no output was written")

    exp, data_json, tfds_dir = job.exp, job.data_json, job.tfds_dir
    # data.json's statistics, from their own file: data.json is not parsed again
    stats = json.loads(io.read_text(dataset_file.stats_path(data_json)))
    rejects_file = dataset_file.rejects_path(data_json)
    if stats["crops"] == 0:  # before the TFDS metadata: there are no shards to describe
        raise UserInputError(
            f"dataset_convert: no crop was written ({stats['boxes_read']} boxes read: "
            f"{stats['rejected']} rejected, {stats['filtered']} filtered, "
            f"{stats['sampled_out']} sampled out); see {rejects_file}")
    if tfds_dir:
        tfds_writer.write_metadata(tfds_dir, tuple(exp.classes),
                                   f"GestureNet hand crops, experiment {req.experiment_name}")
    summary = dataset_file.summary_text(stats, tuple(exp.classes))
    fold_files = ([dataset_file.fold_path(data_json, i) for i in range(req.k_folds)]
                  if req.k_folds >= 2 else [])
    return ConvertResult(data_json, rejects_file, fold_files, tfds_dir, stats, summary,
                         list(exp.classes))
