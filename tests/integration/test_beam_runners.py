"""dataset_convert's pipeline built for managed and cluster runners, without running remotely:
the options a user passes reach Beam unchanged, and the graph is the same."""

from __future__ import annotations

import os

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)
from apache_beam.runners.direct.direct_runner import DirectRunner

from components import IMAGE
from gesturenet_lib.data.dataset_convert import (
    ConvertRequest,
    build_pipeline,
    crop_processes,
    default_beam_args,
    prepare,
)
from tests.tao_tree import TaoTree

DATAFLOW = ["--runner", "DataflowRunner", "--project", "my-project", "--region", "europe-west4",
            "--temp_location", "gs://my-bucket/tmp", "--sdk_container_image", IMAGE,
            "--num_workers", "10", "--max_num_workers", "40", "--machine_type", "n2-standard-4",
            "--experiments", "use_runner_v2"]
FLINK = ["--runner", "PortableRunner", "--job_endpoint", "flink-jobserver:8099",
         "--environment_type", "DOCKER", "--environment_config", IMAGE]

STEPS = ("ReadHands", "SampleFrames", "CropHands",
         "WriteDatasetJson", "WriteTfdsShards")


@pytest.fixture
def job_request(tmp_path):
    tree = TaoTree(tmp_path)
    tree.hand("u1", "s1", "a.png", "fist")
    tree.hand("u2", "s1", "a.png", "stop")
    ds, exp = tree.specs()
    return lambda args: ConvertRequest.from_files(ds, exp, str(tmp_path / "data.json"), "v1",
                                                  beam_args=args)


@pytest.mark.parametrize("args", [DATAFLOW, FLINK], ids=["dataflow", "flink"])
def test_runner_options_pass_through_and_the_graph_builds(args, job_request):
    request = job_request(args)
    assert default_beam_args(request.beam_args) == args  # nothing added when --runner is given
    assert crop_processes(request) == 1  # managed runners already run a worker per core
    options = PipelineOptions(default_beam_args(request.beam_args))
    # Build (never run) with a local runner object, so nothing is contacted.
    pipeline = beam.Pipeline(runner=DirectRunner(), options=options)
    build_pipeline(prepare(request), pipeline)
    labels = {t.unique_name.split("/")[0]
              for t in pipeline.to_runner_api().components.transforms.values()}
    assert set(STEPS) <= labels
    if args is DATAFLOW:
        cloud = options.view_as(GoogleCloudOptions)
        assert (cloud.project, cloud.region, cloud.temp_location) == (
            "my-project", "europe-west4", "gs://my-bucket/tmp")
        workers = options.view_as(WorkerOptions)
        assert workers.sdk_container_image == IMAGE and workers.max_num_workers == 40
        assert options.view_as(StandardOptions).runner == "DataflowRunner"
    else:
        portable = options.view_as(PortableOptions)
        assert portable.job_endpoint == "flink-jobserver:8099"
        assert portable.environment_config == IMAGE
    # many workers: the listing shards are redistributed before reading
    assert any(label.startswith("ReadHands/Spread") for label in
               (t.unique_name for t in pipeline.to_runner_api().components.transforms.values()))
    # the image carries every dependency: nothing else is staged
    setup = options.view_as(SetupOptions)
    assert setup.requirements_file is None and setup.setup_file is None


def test_the_default_runner_is_local_in_process_and_never_tries_prism(tmp_path):
    """Without --runner: Beam's in-process runner named directly (DirectRunner would first try
    to download the Prism binary), one Beam worker, a crop process per core."""
    from gesturenet_lib.data.dataset_convert import LOCAL_RUNNER, is_local_runner

    args = default_beam_args([])
    assert f"--runner={LOCAL_RUNNER}" in args and "--direct_running_mode=in_memory" in args
    assert is_local_runner([]) and is_local_runner(["--runner", "DirectRunner"])
    assert not is_local_runner(DATAFLOW)
    request = ConvertRequest("ds.json", "exp.json", str(tmp_path / "data.json"), "v1")
    assert crop_processes(request) == (os.cpu_count() or 1)
    from apache_beam.runners.runner import create_runner

    assert type(create_runner(LOCAL_RUNNER)).__name__ == "FnApiRunner"


def _graph_size(request) -> tuple[int, set[str]]:
    pipeline = beam.Pipeline(runner=DirectRunner(), options=PipelineOptions(
        default_beam_args(request.beam_args)))
    build_pipeline(prepare(request), pipeline)
    proto = pipeline.to_runner_api()
    return len(proto.SerializeToString()), {t.unique_name for t in
                                            proto.components.transforms.values()}


def test_the_job_graph_carries_folders_not_the_file_list_nor_the_users(tmp_path):
    """Managed runners cap the size of a job graph, and Beam pickles each step several times
    per run: the annotation files are listed inside the pipeline and the users and the split
    plan are read from a file, so a dataset with a hundred times more files and users
    submits the same graph."""
    sizes = []
    for n in (2, 200):
        tree = TaoTree(tmp_path / str(n))
        for i in range(n):
            tree.hand(f"user-{i:04d}", "s1", f"{i:04d}.png", "fist")
        ds, exp = tree.specs()
        request = ConvertRequest.from_files(ds, exp, str(tmp_path / f"{n}.json"), "v1")
        size, names = _graph_size(request)
        sizes.append(size)
        # one local worker: no redistribution step before parsing
        assert not any(name.startswith("ReadHands/Spread") for name in names)
    assert abs(sizes[1] - sizes[0]) < 1024, sizes  # 198 more paths would add ~20 kB


def test_a_conversion_leaves_the_process_as_it_found_it(tmp_path):
    """No library's defaults patched, no garbage collector frozen or paused: dataset_convert is
    a library call, and what runs after it in the same process must see the same process."""
    import gc

    from apache_beam.runners.worker import statesampler

    from gesturenet_lib import cli

    tree = TaoTree(tmp_path)
    for i in range(4):
        tree.hand(f"u{i}", "s1", "a.png", "fist")
    ds, exp = tree.specs()
    before = (statesampler.StateSampler.__init__.__defaults__, gc.isenabled(),
              gc.get_freeze_count(), gc.get_threshold())
    assert cli.main(["dataset_convert", "--dataset_spec", ds, "--experiment_spec", exp,
                     "--output_filename", str(tmp_path / "data.json"), "--experiment_name",
                     "v1", "--no_tfds"]) == 0
    assert (statesampler.StateSampler.__init__.__defaults__, gc.isenabled(),
            gc.get_freeze_count(), gc.get_threshold()) == before


def test_dask_runner_is_named_by_its_short_name():
    from gesturenet_lib.data.dataset_convert import DASK_RUNNER, is_local_runner

    for args in (["--runner", "DaskRunner"], ["--runner=DaskRunner"]):
        assert DASK_RUNNER in " ".join(default_beam_args(args + ["--dask_client_address",
                                                                 "tcp://127.0.0.1:8786"]))
        assert not is_local_runner(args)
