"""Run the whole pipeline on this machine with KFP's local runner (what `make demo` does):
`python -m pipelines.run_local [--source data/hagrid-sample] [--root workspace/kfp]
[--containers]`. The key comes from GESTURENET_KEY. In-process (KFP's SubprocessRunner) every
task gets this environment; with --containers (what `make demo-containers` does) every task
runs in the project's image (GESTURENET_IMAGE, else the version tag) through KFP's
DockerRunner, on a Docker daemon or podman, with no network. Prints where every artifact is,
the evaluation table and the export files; exits 1 when a task failed."""

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from kfp import local

from pipelines.gesturenet_pipeline import gesturenet_pipeline

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default=str(REPO / "data" / "hagrid-sample"))
    parser.add_argument("--source_format", default="hagrid", choices=["hagrid", "tao"])
    parser.add_argument("--root", default=str(REPO / "workspace" / "kfp"))
    parser.add_argument("--train_spec", help="a train spec JSON (default: the pipeline's)")
    parser.add_argument("--dataset_spec", help="a dataset_convert spec JSON (default: the "
                                               "pipeline's)")
    parser.add_argument("--k_folds", type=int, default=0)
    parser.add_argument("--cross_validate", action="store_true")
    parser.add_argument("--export_data_type", default="int8", choices=["fp32", "fp16", "int8"])
    parser.add_argument("--full_frame_eval", action="store_true",
                        help="also evaluate on the kpi set's whole images (hands found, then "
                             "classified)")
    parser.add_argument("--containers", action="store_true",
                        help="every task in the project's image (KFP's DockerRunner), no "
                             "network inside the tasks")
    args = parser.parse_args(argv)
    if not os.environ.get("GESTURENET_KEY"):
        print("set GESTURENET_KEY (the key that encrypts the model)", file=sys.stderr)
        return 2
    params = {"source_uri": os.path.abspath(args.source), "source_format": args.source_format,
              "k_folds": args.k_folds, "cross_validate": args.cross_validate,
              "fold_indices": list(range(max(args.k_folds, 1))),
              "export_data_type": args.export_data_type,
              "full_frame_eval": args.full_frame_eval}
    if args.train_spec:
        params["train_spec"] = json.loads(Path(args.train_spec).read_text())
    if args.dataset_spec:
        params["dataset_spec"] = json.loads(Path(args.dataset_spec).read_text())
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.containers:
            from gesturenet_lib.container_image import project_image
            from pipelines.container_engine import EngineError, docker_runner

            Path(args.root).mkdir(parents=True, exist_ok=True)
            try:
                runner = stack.enter_context(docker_runner(
                    project_image(), os.environ["GESTURENET_KEY"],
                    [os.path.abspath(args.source)]))
            except EngineError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
        else:
            runner = local.SubprocessRunner(use_venv=False)
        local.init(runner=runner, pipeline_root=os.path.abspath(args.root))
        try:
            gesturenet_pipeline(**params)
        except RuntimeError as err:  # KFP's local runner: a task failed
            print(f"error: the pipeline failed: {str(err).splitlines()[0]}", file=sys.stderr)
            return 1
    print(f"\npipeline finished in {time.perf_counter() - start:.0f} s; artifacts:")
    runs = sorted(Path(args.root).glob("gesturenet-*"), key=lambda p: p.stat().st_mtime)
    run = runs[-1]
    for task in sorted(p for p in run.iterdir() if p.is_dir()):
        for artifact in sorted(task.iterdir()):
            if artifact.name != "executor_output.json":
                print(f"  {task.name:<22} {artifact.name:<12} {artifact}")
    evaluation = run / "evaluate" / "executor_output.json"
    if evaluation.exists():
        output = json.loads(evaluation.read_text())["parameterValues"]["Output"]
        print(f"\nevaluation of the kpi set:\n{output['table']}")
        print(f"report page (an HTML file, open it in a browser): {run / 'evaluate' / 'report'}")
    frames = run / "evaluate-full-frame" / "executor_output.json"
    if frames.exists():
        output = json.loads(frames.read_text())["parameterValues"]["Output"]
        print(f"\nevaluation on the kpi set's whole images:\n{output['table']}")
    summary = run / "fold-summary" / "executor_output.json"
    if summary.exists():
        folds = json.loads(summary.read_text())["artifacts"]["summary"]["artifacts"][0]
        print(f"\nk-fold summary: {json.dumps(folds['metadata'], indent=1)}")
    for export_dir in run.glob("export*/exported"):
        print("\nexport files:")
        for f in sorted(export_dir.rglob("*")):
            if f.is_file():
                print(f"  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
