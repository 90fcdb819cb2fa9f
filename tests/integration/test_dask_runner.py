"""dataset_convert on a real distributed engine: a dask.distributed scheduler and two worker
processes on 127.0.0.1, driven through Beam's DaskRunner by the same CLI command as a local
run. data.json, its folds, the rejects and the TFDS shards must be byte-identical to the
in-process run of the same tree, bad records included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gesturenet_lib import cli
from tests.tao_tree import tree_with_rejects as _tree

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


# Workers that lack the project: the same Python, with apache_beam and gesturenet_lib made
# unimportable in every worker process (a sitecustomize on PYTHONPATH, inherited by the
# nanny's children), as on a stock Dask image; no second environment to install.
WITHOUT_PROJECT = """
import sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("apache_beam", "gesturenet_lib"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
"""
# A plugin that makes each task take a while, so a test can act while the run is on.
SLOW_TASKS = """
import time
from distributed import WorkerPlugin
class Slow(WorkerPlugin):
    def transition(self, key, start, finish, **kwargs):
        if finish == "executing":
            time.sleep(0.3)
def dask_setup(worker):
    worker.plugins["slow"] = Slow()
"""


def _address_in(scheduler_file: Path, deadline: float) -> str:
    """The scheduler's address, once its file is whole: the scheduler creates the file
    before it writes it, so an empty or half-written file means wait, not fail."""
    while True:
        try:
            return json.loads(scheduler_file.read_text())["address"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Cluster:
    """A scheduler and worker processes on 127.0.0.1, as separate programs."""

    def __init__(self, folder: Path, workers: int = 2, worker_env=None, preload=None):
        folder.mkdir(parents=True, exist_ok=True)
        scheduler_file = folder / "scheduler.json"
        self.procs = [subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        self.address = _address_in(scheduler_file, deadline=time.monotonic() + 60)
        extra = ["--preload", str(preload)] if preload else []
        self.procs.append(subprocess.Popen(
            [str(BIN / "dask"), "worker", self.address, "--nworkers", str(workers),
             "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, **(worker_env or {})}))
        from distributed import Client

        with Client(self.address) as client:
            client.wait_for_workers(workers, timeout=120)

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A scheduler and two single-threaded worker processes."""
    cluster = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        yield cluster.address
    finally:
        cluster.stop()


def _convert(root: Path, *extra: str) -> Path:
    tree = _tree(root)
    ds, exp = tree.specs(kpi_users=["u4", "u5"])
    out = root / "out" / "data.json"
    assert cli.main(["dataset_convert", "--dataset_spec", ds, "--experiment_spec", exp,
                     "--k_folds", "2", "--output_filename", str(out), "--experiment_name",
                     "v1", *extra]) == 0
    return root


def test_dask_runner_gives_the_same_bytes_as_the_local_run(dask_cluster, tmp_path):
    local = _convert(tmp_path / "local")
    dask = _convert(tmp_path / "dask", "--runner", "DaskRunner",
                    "--dask_client_address", dask_cluster)
    for name in ("data.json", "data_fold1.json", "data_rejects.jsonl", "data_stats.json"):
        assert (dask / "out" / name).read_bytes() == (local / "out" / name).read_bytes(), name
    rejects = [json.loads(line) for line in
               (dask / "out/data_rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 3
    stats = json.loads((dask / "out/data_stats.json").read_text())
    assert stats["boxes_read"] == stats["crops"] + stats["rejected"] == 18 + 3
    tfds = "extracted/data/v1/tfds"
    shards = sorted(p.name for p in (local / tfds).glob("*.tfrecord-*"))
    assert shards and shards == sorted(p.name for p in (dask / tfds).glob("*.tfrecord-*"))
    for name in shards:
        assert (dask / tfds / name).read_bytes() == (local / tfds / name).read_bytes(), name
    shutil.rmtree(tmp_path / "local")


def _convert_on_dask(root: Path, address: str, capsys) -> tuple[int, str]:
    """dataset_convert of ``_tree(root)`` on the DaskRunner at ``address``, writing
    ``root/out/data.json``: (exit code, stderr)."""
    ds, exp = _tree(root).specs(kpi_users=["u4", "u5"])
    code = cli.main(["dataset_convert", "--dataset_spec", ds, "--experiment_spec", exp,
                     "--output_filename", str(root / "out/data.json"), "--experiment_name",
                     "v1", "--runner", "DaskRunner", "--dask_client_address", address])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("address, message", [
    ("tcp://127.0.0.1", "expected tcp://HOST:PORT"),
    ("127.0.0.1:99999", "expected tcp://HOST:PORT"),
    ("tcp://127.0.0.1:9", "no Dask scheduler answers there"),
])
def test_a_bad_or_dead_dask_address_is_one_line_naming_the_flag(tmp_path, capsys, address,
                                                                message):
    code, err = _convert_on_dask(tmp_path, address, capsys)
    assert code == 2, err
    assert f"--dask_client_address {address}: {message}" in err
    assert not (tmp_path / "out/data.json").exists()


def test_workers_without_the_project_are_named_before_anything_runs(tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WITHOUT_PROJECT)
    cluster = Cluster(tmp_path / "cluster", workers=1, worker_env={"PYTHONPATH": str(site)})
    try:
        start = time.monotonic()
        code, err = _convert_on_dask(tmp_path, cluster.address, capsys)
        assert code == 2, err
        assert "cannot run the pipeline" in err and "apache_beam" in err
        assert time.monotonic() - start < 60  # it waited for ever before
    finally:
        cluster.stop()


def test_a_scheduler_killed_mid_run_is_a_lost_cluster_and_no_output(tmp_path, capsys):
    import threading

    from distributed import Client

    (tmp_path / "slow_tasks.py").write_text(SLOW_TASKS)
    cluster = Cluster(tmp_path / "cluster", workers=1, preload=tmp_path / "slow_tasks.py")
    scheduler = cluster.procs[0]

    def kill_once_running():
        with Client(cluster.address) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if any(client.processing().values()):
                    break
                time.sleep(0.05)
        scheduler.kill()

    killer = threading.Thread(target=kill_once_running, daemon=True)
    try:
        killer.start()
        code, err = _convert_on_dask(tmp_path, cluster.address, capsys)
        assert code == 2, err
        assert "was lost before the pipeline finished" in err or "lost the run" in err
        assert not (tmp_path / "out/data.json").exists()
    finally:
        killer.join(timeout=5)
        cluster.stop()
