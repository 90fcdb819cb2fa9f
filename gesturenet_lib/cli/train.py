"""`gesturenet train -e SPEC -k KEY`: train (or resume) the GestureNet classifier."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train", help="train the classifier on dataset.data_path (resumes after a kill)",
        description="Train as the experiment spec describes; write model.tlt (encrypted with "
                    "the key), the spec, the class map, metrics.csv, TensorBoard logs and "
                    "checkpoints to <output_experiments_fld>/<save_weights_path>/. Run the same "
                    "command again to resume from the last checkpoint.")
    parser.add_argument("-e", "--experiment_spec_filename", required=True,
                        help="the experiment spec (train_spec.json)")
    parser.add_argument("-k", "--key", help="key that encrypts model.tlt "
                        "(default: $GESTURENET_KEY)")
    return parser


def run(args: argparse.Namespace) -> int:
    from gesturenet_lib.keys import resolve_key
    from gesturenet_lib.specs import load_experiment
    from gesturenet_lib.tasks import train

    exp = load_experiment(args.experiment_spec_filename)  # fails fast, before TensorFlow loads
    result = train.run(train.TrainRequest(exp, resolve_key(args.key)))
    last = result.history[-1] if result.history else {}
    print(f"trained {len(result.history)} epochs; last: loss {last.get('loss')}, "
          f"accuracy {last.get('accuracy')}, val_accuracy {last.get('val_accuracy')}")
    print(f"wrote {result.model_path}")
    return 0
