"""Benchmark: orchestration overhead of the KFP pipeline run locally. The pipeline (import,
dataset_convert, train, evaluate, inference, export; no cross-validation) runs through KFP's
local runner in-process; with --containers also with every task in the project's image (KFP's
DockerRunner, `run_local --containers`; the image is built first if its inputs changed, not
timed); then the same subtasks run directly through the CLI, one process each, on the same
data and spec. Prints the per-task times, the totals and the overheads against the CLI.
Target: in-process overhead <= 10%.

    .venv/bin/python bench/pipeline_overhead_bench.py [--epochs 3] [--containers]

Writes bench/results/pipeline_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from results_file import write_results

KEY = "bench-key"
REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def task_times(log: str) -> dict[str, float]:
    """Seconds per task from the local runner's 'Executing task' / 'finished' lines."""
    starts, times = {}, {}
    for line in re.sub(r"\x1b\[[0-9;]*m", "", log).splitlines():
        match = re.match(r"^(\d\d:\d\d:\d\d\.\d+) - \w+ - (Executing task|Task) '([\w-]+)'"
                         r"( finished)?", line)
        if not match:
            continue
        stamp = datetime.strptime(match.group(1), "%H:%M:%S.%f")
        if match.group(2) == "Executing task":
            starts[match.group(3)] = stamp
        elif match.group(4) and match.group(3) in starts:
            times[match.group(3)] = (stamp - starts[match.group(3)]).total_seconds()
    return times


def run_pipeline(root: Path, train_spec: Path, env: dict, *flags: str
                 ) -> tuple[float, dict[str, float]]:
    """The pipeline through run_local: (wall seconds, seconds per task)."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pipelines.run_local", "--root", str(root),
                          "--train_spec", str(train_spec), "--export_data_type", "fp32",
                          *flags], cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(run.stdout[-3000:] + run.stderr[-2000:])
    return wall, task_times(run.stdout + run.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--containers", action="store_true",
                        help="also the pipeline with every task in the project's image")
    args = parser.parse_args()
    env = dict(os.environ, GESTURENET_KEY=KEY)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="gesturenet-overhead-") as tmp:
        tmp = Path(tmp)
        spec = json.loads((REPO / "specs" / "pipeline_train_spec.json").read_text())
        spec["trainer"]["finetuning"]["train_epochs"] = args.epochs
        (tmp / "train_spec.json").write_text(json.dumps(spec))

        pipeline_s, per_task = run_pipeline(tmp / "kfp", tmp / "train_spec.json", env)
        containers = None
        if args.containers:
            if subprocess.run([py, "-m", "pipelines.image_build"], cwd=REPO).returncode != 0:
                raise SystemExit("the image could not be built")
            containers = run_pipeline(tmp / "kfp-containers", tmp / "train_spec.json", env,
                                      "--containers")

        # The same subtasks through the CLI, on a copy of the example specs.
        ws = tmp / "cli"
        (ws / "specs").mkdir(parents=True)
        for name in ("dataset_config.json", "dataset_experiment_config.json"):
            (ws / "specs" / name).write_text((REPO / "specs" / name).read_text())
        cli_spec = dict(spec, output_experiments_fld="../workspace/experiments")
        cli_spec["dataset"] = dict(spec["dataset"], data_path="../workspace/data.json",
                                   image_root_path="../workspace")
        cli_spec["evaluator"] = {"evaluation_exp_name": "results"}
        (ws / "specs" / "train_spec.json").write_text(json.dumps(cli_spec))
        g = [py, "-m", "gesturenet_lib"]
        s = ws / "specs"
        model = ws / "workspace/experiments/model/model.tlt"
        steps = {
            "dataset_import": g + ["dataset_import", "--format", "hagrid", "--images",
                                   str(REPO / "data/hagrid-sample/dataset"), "--annotations",
                                   str(REPO / "data/hagrid-sample/annotations"), "--output",
                                   str(ws / "workspace/original/hagrid")],
            "dataset_convert": g + ["dataset_convert", "--dataset_spec",
                                    str(s / "dataset_config.json"), "--experiment_spec",
                                    str(s / "dataset_experiment_config.json"),
                                    "--output_filename", str(ws / "workspace/data.json"),
                                    "--experiment_name", "v1"],
            "train": g + ["train", "-e", str(s / "train_spec.json")],
            "evaluate": g + ["evaluate", "-e", str(s / "train_spec.json"), "-m", str(model)],
            "inference": g + ["inference", "-e", str(s / "train_spec.json"), "-m", str(model),
                              "--data_json", str(ws / "workspace/data.json"),
                              "--image_root_path", str(ws / "workspace"), "--results_dir",
                              str(ws / "results")],
            "export": g + ["export", "-m", str(model), "-o", str(ws / "export/model.onnx")],
        }
        cli = {name: timed(cmd, env) for name, cmd in steps.items()}
    cli_total = sum(cli.values())
    figures = {"epochs": args.epochs, "cores": os.cpu_count(),
               "pipeline_wall_s": round(pipeline_s, 1),
               "pipeline_task_s": {k: round(v, 1) for k, v in sorted(per_task.items())},
               "cli_step_s": {k: round(v, 1) for k, v in cli.items()},
               "cli_total_s": round(cli_total, 1),
               "overhead": round(pipeline_s / cli_total - 1, 3)}
    if containers is not None:
        figures.update(containers_wall_s=round(containers[0], 1),
                       containers_task_s={k: round(v, 1) for k, v in sorted(containers[1].items())},
                       containers_overhead=round(containers[0] / cli_total - 1, 3),
                       containers_vs_in_process=round(containers[0] / pipeline_s, 3))
    for name, seconds in sorted(per_task.items()):
        print(f"  pipeline task {name:<16} {seconds:7.1f} s")
    for name, seconds in cli.items():
        print(f"  cli {name:<26} {seconds:7.1f} s")
    print(f"pipeline (local runner) {pipeline_s:7.1f} s")
    print(f"CLI, step by step       {cli_total:7.1f} s")
    print(f"overhead                {figures['overhead'] * 100:6.1f} %  (target <= 10 %)")
    if containers is not None:
        for name, seconds in sorted(containers[1].items()):
            print(f"  container task {name:<15} {seconds:7.1f} s")
        print(f"pipeline in containers  {containers[0]:7.1f} s: "
              f"{figures['containers_overhead'] * 100:+.1f} % vs the CLI, "
              f"{figures['containers_vs_in_process']:.2f}x the in-process pipeline")
    write_results("pipeline_overhead", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
