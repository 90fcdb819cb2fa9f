"""`gesturenet pipeline compile|submit`: the one bridge from the CLI to pipelines/ (and kfp),
imported only when this subcommand runs."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "pipeline", help="compile the Kubeflow pipeline or submit a run",
        description="compile: write pipeline.yaml. submit: upload it to a Kubeflow Pipelines "
                    "endpoint and start a run with the parameters of a YAML file (checked "
                    "against the pipeline's inputs first); prints the run's URL.")
    commands = parser.add_subparsers(dest="pipeline_command", required=True,
                                     metavar="compile|submit")
    compile_parser = commands.add_parser("compile", help="write pipeline.yaml")
    compile_parser.add_argument("-o", "--output", default="pipeline.yaml")
    submit_parser = commands.add_parser("submit", help="start a run on Kubeflow")
    submit_parser.add_argument("--host", required=True, help="the KFP endpoint URL")
    submit_parser.add_argument("--experiment", required=True, help="experiment name")
    submit_parser.add_argument("--params", required=True, help="YAML: parameter -> value")
    submit_parser.add_argument("--namespace", help="Kubeflow namespace (multi-user clusters)")
    submit_parser.add_argument("--package", default="pipeline.yaml",
                               help="the compiled pipeline (default pipeline.yaml)")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        from pipelines.cli import run_command
    except ImportError as err:
        from gesturenet_lib.errors import UserInputError

        raise UserInputError(f"pipeline: needs the repository's pipelines/ package and kfp "
                             f"({err}); run it from a checkout with `make setup`") from None
    return run_command(args)
