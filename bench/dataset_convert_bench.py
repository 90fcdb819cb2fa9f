"""Benchmark: crops per second of `dataset_convert` (Beam, local runner on every core) next to
a plain single-process loop doing the same decode, crop and encode with OpenCV, in one run.

The bundled HaGRID sample is imported, then its users are replicated (hard links, new user ids)
until there are at least --min_images images. Both contenders read the same annotations and
write PNG crops of the same boxes into the same folder layout; the loop decodes each image once,
as the pipeline does, and writes with plain file writes (the pipeline writes atomically and
syncs once before committing data.json).
Wall times include everything each one does (Beam: pipeline start-up, splits, data.json).

    .venv/bin/python bench/dataset_convert_bench.py [--min_images 2000] [--tfds] \
        [--dask_workers 2 [--dask_untrimmed]]

Before the timed runs, each Beam runner converts the sample once, untimed: the in-process
runner's first run would also import Apache Beam (~1 s), and a new Dask cluster's workers
import Beam, OpenCV and the library with their first task (3-7 s), while the loops' OpenCV is
imported before any timing. ``--cold`` leaves the warm-up out (every first run pays those).

Each contender runs --repeats times, alternating; medians are reported. Prints both rates, the
ratio (target on 2 cores: >= 1.6), the ceiling (the same loop on one forked process per core,
no Beam: no pipeline can beat it) and peak memory, and writes
bench/results/dataset_convert.json.

Every run writes into a folder of its own and the data are deleted only at the end. On a file
system without a journal (this machine's ext4), creating files within minutes of deleting
thousands is much slower (the inode allocator skips recently freed inodes): leave a few
minutes between two runs of this benchmark, or the second measures the first one's cleanup.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from results_file import write_results

import gesturenet_lib as gn
from gesturenet_lib import io
from gesturenet_lib.data import images
from gesturenet_lib.data.annotations import DatasetLayout, parse_annotation
from gesturenet_lib.data.cropping import CropSettings, crop_relpath
from gesturenet_lib.data.geometry import crop_box
from gesturenet_lib.specs.dataset_experiment_config import GESTURENET_CLASSES

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "hagrid-sample"


def build_dataset(root: Path, min_images: int) -> tuple[Path, int]:
    """Import the sample, then replicate users until there are >= min_images images."""
    dataset = root / "original" / "hagrid"
    gn.run(gn.ImportRequest("hagrid", str(SAMPLE / "dataset"), str(dataset),
                            str(SAMPLE / "annotations")))
    users = [p.name for p in dataset.iterdir() if p.is_dir() and p.name != "annotation"]
    n_images = sum(1 for _ in dataset.glob("*/*/*.jpg"))
    copies = -(-min_images // n_images)
    set_file = json.loads((dataset / "hagrid.json").read_text())
    for c in range(1, copies):
        for user in users:
            new = f"{user}-copy{c}"
            for img in (dataset / user).rglob("*.jpg"):
                dst = dataset / new / img.relative_to(dataset / user)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.link(img, dst)
            for ann in (dataset / "annotation" / user).rglob("*.json"):
                doc = json.loads(ann.read_text())
                doc["task_path"] = doc["task_path"].replace(f"/{user}/", f"/{new}/")
                dst = dataset / "annotation" / new / ann.relative_to(dataset / "annotation" / user)
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_text(json.dumps(doc))
            set_file["users"][new] = {}
    (dataset / "hagrid.json").write_text(json.dumps(set_file))
    return dataset, n_images * copies


def write_specs(root: Path) -> tuple[str, str]:
    ds = {"org_dataset": "hagrid", "mount_dir_path": str(root), "org_data_dir": "original",
          "post_data_dir": "extracted", "kpi_users": [], "bbox_enlarge_ratio": 1.1}
    exp = {"set_list": {"train_val": ["hagrid"], "kpi": []}}
    (root / "ds.json").write_text(json.dumps(ds))
    (root / "exp.json").write_text(json.dumps(exp))
    return str(root / "ds.json"), str(root / "exp.json")


def _image_groups(root: Path, dataset: Path) -> list[tuple[str, list]]:
    layout = DatasetLayout(str(root), "original", "hagrid", "annotation",
                           tuple(GESTURENET_CLASSES), {})
    by_image = defaultdict(list)
    for path in io.list_files(dataset / "annotation"):
        record = parse_annotation(io.read_text(path), path, layout)
        by_image[record.image_path].append(record)
    return sorted(by_image.items())


def _crop_one_image(root: Path, folder: str, group: tuple[str, list]) -> int:
    """Decode one image once, crop, encode and write each of its boxes."""
    image_path, records = group
    settings = CropSettings(str(root), folder, "bench", True, 1.1)
    image = images.decode((root / image_path).read_bytes())
    h, w = image.shape[:2]
    for record in records:
        box = crop_box(record.box, w, h, True, 1.1)
        png = images.encode_png(image[box.y0:box.y1, box.x0:box.x1])
        target = root / crop_relpath(settings, record)  # the same layout as the pipeline
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)
    return len(records)


def plain_loop(root: Path, dataset: Path, folder: str) -> int:
    """The baseline: one process, decode each image once, crop, encode, write."""
    work = functools.partial(_crop_one_image, root, folder)
    return sum(map(work, _image_groups(root, dataset)))


def forked_loop(root: Path, dataset: Path, processes: int, folder: str) -> int:
    """The ceiling: the same loop split over forked processes, no Beam. dataset_convert cannot
    beat this ratio; it shows how far the cores alone take the work on this machine."""
    work = functools.partial(_crop_one_image, root, folder)
    groups = _image_groups(root, dataset)
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return sum(pool.imap_unordered(work, groups, chunksize=16))


def start_dask(root: Path, workers: int, untrimmed: bool = False) -> tuple[str, list]:
    """A dask.distributed scheduler and ``workers`` single-threaded worker processes.
    ``untrimmed``: the workers start without the MALLOC_TRIM_THRESHOLD_ Dask's nanny sets by
    default, as a Dask user may configure a cluster (a config file that sets it to null in
    ``distributed.nanny.pre-spawn-environ``)."""
    import json as _json
    import subprocess

    from distributed import Client

    dask = str(Path(sys.executable).parent / "dask")
    scheduler_file = root / "dask-scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    while True:  # the scheduler creates its file before it writes the address into it
        try:
            address = _json.loads(scheduler_file.read_text())["address"]
            break
        except (FileNotFoundError, _json.JSONDecodeError, KeyError):
            time.sleep(0.2)
    env = dict(os.environ)
    if untrimmed:
        config = root / "dask-config"
        config.mkdir()
        (config / "untrimmed.yaml").write_text(
            "distributed:\n  nanny:\n    pre-spawn-environ:\n      MALLOC_TRIM_THRESHOLD_: null\n")
        env["DASK_CONFIG"] = str(config)
    procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", str(workers),
                                   "--nthreads", "1", "--no-dashboard", "--host",
                                   "127.0.0.1"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    with Client(address) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, procs


def warm_up(root: Path, dask_address: str | None, tfds: bool) -> None:
    """Convert the bundled sample once on each Beam runner, untimed (see the docstring)."""
    warm = root / "warm-up"
    build_dataset(warm, 1)
    ds, exp = write_specs(warm)
    runners = [[]] + ([["--runner", "DaskRunner", "--dask_client_address", dask_address]]
                      if dask_address else [])
    for i, beam_args in enumerate(runners):
        gn.run(gn.ConvertRequest.from_files(ds, exp, str(warm / f"data{i}.json"), f"warm{i}",
                                            write_tfds=tfds, beam_args=beam_args))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--min_images", type=int, default=2000)
    parser.add_argument("--tfds", action="store_true", help="also write the TFDS shards")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; medians reported")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data")
    parser.add_argument("--cold", action="store_true",
                        help="no untimed warm-up run of the Beam runners (see above)")
    parser.add_argument("--dask_workers", type=int, default=0,
                        help="also run on Beam's DaskRunner: a scheduler and this many "
                             "single-threaded worker processes on 127.0.0.1")
    parser.add_argument("--dask_untrimmed", action="store_true",
                        help="start the Dask workers without the MALLOC_TRIM_THRESHOLD_ "
                             "Dask's nanny sets by default (what it costs: docs/benchmarks.md)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gesturenet-bench-"))
    cluster = start_dask(root, args.dask_workers, args.dask_untrimmed) \
        if args.dask_workers else None
    dask_times: list[float] = []
    try:
        dataset, n_images = build_dataset(root, args.min_images)
        ds, exp = write_specs(root)
        if not args.cold:
            warm_up(root, cluster[0] if cluster else None, args.tfds)

        loop_times, beam_times, forked_times = [], [], []
        # Every run writes into a new folder and nothing is deleted until the end (see the
        # docstring): a deletion would penalise whichever contender runs after it.
        # Each timed run starts with nothing waiting to be written to disk: dataset_convert
        # syncs before it commits data.json, and a sync flushes every file on the machine,
        # so it would otherwise also pay for writing out the loops' crops.
        for i in range(args.repeats):  # alternate, so drift on a shared machine hits all
            os.sync()
            t0 = time.perf_counter()
            loop_crops = plain_loop(root, dataset, f"loop{i}")
            loop_times.append(time.perf_counter() - t0)
            os.sync()
            t0 = time.perf_counter()
            forked_crops = forked_loop(root, dataset, os.cpu_count() or 1, f"forked{i}")
            forked_times.append(time.perf_counter() - t0)
            os.sync()
            t0 = time.perf_counter()  # a new experiment name: no crop is resumed
            result = gn.run(gn.ConvertRequest.from_files(ds, exp, str(root / f"data{i}.json"),
                                                         f"bench{i}", write_tfds=args.tfds))
            beam_times.append(time.perf_counter() - t0)
            if cluster:
                os.sync()
                t0 = time.perf_counter()
                dask_result = gn.run(gn.ConvertRequest.from_files(
                    ds, exp, str(root / f"dask{i}.json"), f"dask{i}", write_tfds=args.tfds,
                    beam_args=["--runner", "DaskRunner", "--dask_client_address",
                               cluster[0]]))
                dask_times.append(time.perf_counter() - t0)
                assert dask_result.stats["crops"] == result.stats["crops"]
        loop_s, beam_s = statistics.median(loop_times), statistics.median(beam_times)
        beam_crops = result.stats["crops"]
        driver_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    finally:
        for proc in (cluster[1] if cluster else []):
            proc.terminate()
            proc.wait(timeout=60)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    assert beam_crops == loop_crops == forked_crops, (beam_crops, loop_crops, forked_crops)
    forked_s = statistics.median(forked_times)
    figures = {
        "images": n_images, "crops": beam_crops, "cores": os.cpu_count(),
        "machine": platform.machine(), "tfds_shards": args.tfds,
        "plain_loop_crops_per_s": round(loop_crops / loop_s, 1),
        "dataset_convert_crops_per_s": round(beam_crops / beam_s, 1),
        "ratio": round((beam_crops / beam_s) / (loop_crops / loop_s), 2),
        "plain_loop_s": round(loop_s, 2), "dataset_convert_s": round(beam_s, 2),
        "peak_rss_mb_bench_process": round(driver_rss, 1),
        "peak_rss_mb_largest_worker": round(worker_rss, 1),
        "ceiling_ratio_forked_loop_no_beam": round(loop_s / forked_s, 2),
        "forked_loop_runs_s": [round(t, 2) for t in forked_times],
        "repeats": args.repeats, "warm_up": not args.cold,
        "plain_loop_runs_s": [round(t, 2) for t in loop_times],
        "dataset_convert_runs_s": [round(t, 2) for t in beam_times],
    }
    print(f"images {n_images}, crops {beam_crops}, cores {os.cpu_count()}, "
          + ("first runs timed (--cold)" if args.cold else
             "after an untimed warm-up run of each Beam runner"))
    print(f"plain loop       {figures['plain_loop_crops_per_s']:8.1f} crops/s  ({loop_s:.1f} s)")
    print(f"dataset_convert  {figures['dataset_convert_crops_per_s']:8.1f} crops/s  "
          f"({beam_s:.1f} s)")
    print(f"ratio            {figures['ratio']:8.2f}  (target >= 1.6 on 2 cores)")
    print(f"ceiling          {figures['ceiling_ratio_forked_loop_no_beam']:8.2f}  (the same loop "
          f"on {os.cpu_count()} forked processes, no Beam: what the cores alone give)")
    if dask_times:
        dask_s = statistics.median(dask_times)
        figures.update(dask_workers=args.dask_workers, dask_untrimmed=args.dask_untrimmed,
                       dask_s=round(dask_s, 2),
                       dask_runs_s=[round(t, 2) for t in dask_times],
                       dask_crops_per_s=round(beam_crops / dask_s, 1),
                       dask_ratio_to_in_process=round(beam_s / dask_s, 2))
        print(f"DaskRunner       {figures['dask_crops_per_s']:8.1f} crops/s  ({dask_s:.1f} s, "
              f"{args.dask_workers} workers): {figures['dask_ratio_to_in_process']:.2f} of "
              "the in-process run's rate")
    print(f"peak memory      this process {driver_rss:.0f} MB (loop, then Beam's in-process "
          f"runner), largest crop worker {worker_rss:.0f} MB")
    write_results("dataset_convert", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
