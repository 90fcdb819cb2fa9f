"""`gesturenet evaluate -e SPEC -m MODEL -k KEY`: metrics, confusion matrix and report."""

from __future__ import annotations

import argparse

from gesturenet_lib.cli import full_frame_flags


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate", help="score a model on a set of the data.json (the kpi set by default)",
        description="Write metrics.json, confusion_matrix.png and report.html to "
                    "<output_experiments_fld>/<evaluator.evaluation_exp_name>/ and print a "
                    "table. -m takes .tlt, .keras, .onnx, .etlt or .engine.")
    parser.add_argument("-e", "--experiment_spec_filename", required=True,
                        help="the experiment spec")
    parser.add_argument("-m", "--model", required=True, help="the model file")
    parser.add_argument("-k", "--key", help="the model's key (default: $GESTURENET_KEY)")
    parser.add_argument("--data_type", default="kpi_set",
                        choices=["kpi_set", "validation_set", "train_set"],
                        help="the set to evaluate (default: kpi_set)")
    full_frame_flags.add_arguments(
        parser, "evaluate on the set's whole images: every hand found (palm detector + "
                "landmarks) against the annotated boxes (IoU >= 0.3): hand recall and "
                "precision, gestures on the matched hands")
    return parser


def run(args: argparse.Namespace) -> int:
    from gesturenet_lib.keys import optional_key
    from gesturenet_lib.specs import load_experiment
    from gesturenet_lib.tasks import evaluate

    key = optional_key(args.key)  # .onnx and .keras need no key
    result = evaluate.run(evaluate.EvaluateRequest(
        load_experiment(args.experiment_spec_filename), args.model, key, args.data_type,
        full_frame_flags.crop_rule(args) if args.full_frame else None))
    print(result.table)
    print(f"wrote {result.metrics_file}, {result.confusion_png}, {result.report_file}")
    return 0
