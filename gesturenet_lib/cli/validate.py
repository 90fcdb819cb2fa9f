"""`gesturenet validate`: check spec files without running anything."""

from __future__ import annotations

import argparse

from gesturenet_lib.errors import UserInputError
from gesturenet_lib.specs import (
    load_convert_specs,
    load_dataset_config,
    load_dataset_experiment_config,
    load_experiment_spec,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "validate", help="check spec files without running anything",
        description="Check spec files (types, ranges, choices, cross-field rules) and exit 2 "
                    "with one line naming the file, the field and the value on the first error.")
    parser.add_argument("--dataset_spec", help="a dataset_config.json (as for dataset_convert)")
    parser.add_argument("--experiment_spec",
                        help="a dataset_experiment_config.json (as for dataset_convert)")
    parser.add_argument("-e", "--experiment_spec_filename",
                        help="an experiment spec (as for train, evaluate, inference, export)")
    return parser


def run(args: argparse.Namespace) -> int:
    checks = [
        (args.dataset_spec, load_dataset_config, "dataset_config"),
        (args.experiment_spec, load_dataset_experiment_config, "dataset_experiment_config"),
        (args.experiment_spec_filename, load_experiment_spec, "experiment spec"),
    ]
    if not any(path for path, _, _ in checks):
        raise UserInputError("give at least one of --dataset_spec, --experiment_spec, -e")
    for path, loader, kind in checks:
        if path:
            loader(path)
            print(f"{path}: OK ({kind})")
    if args.dataset_spec and args.experiment_spec:  # the keys both files may give must agree
        load_convert_specs(args.dataset_spec, args.experiment_spec)
    return 0
