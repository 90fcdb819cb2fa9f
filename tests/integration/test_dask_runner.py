"""dataset_convert on a real distributed engine: a dask.distributed scheduler and two worker
processes on 127.0.0.1, driven through Beam's DaskRunner by the same CLI command as a local
run. data.json, its folds, the rejects and the TFDS shards must be byte-identical to the
in-process run of the same tree, bad records included."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gesturenet_lib import cli
from tests.tao_tree import TaoTree

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A scheduler and two single-threaded worker processes, as separate programs."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file",
                               str(scheduler_file)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        procs.append(subprocess.Popen(
            [str(BIN / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
             "--no-dashboard", "--host", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
            assert len(client.scheduler_info()["workers"]) == 2
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=60)


def _tree(root: Path) -> TaoTree:
    """Six people, two of them kpi; one corrupt image, one box outside its image, one
    malformed annotation file: rejects that both runs must report the same."""
    tree = TaoTree(root)
    for u in range(6):
        for f in range(3):
            tree.hand(f"u{u}", "s1", f"f{f}.png", ["fist", "stop", "two"][f])
    bad = tree.image("u1", "s2", "corrupt.png")
    (tree.root / bad).write_bytes(b"\x89PNG\r\n\x1a\n not really")
    tree.annotate(bad, "fist")
    tree.annotate(tree.image("u2", "s2", "wide.png"), "fist", box=(80.0, 80.0, 50.0, 50.0))
    tree.annotate("", "fist", raw="{ not json")
    tree.write_set_file()
    return tree


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
