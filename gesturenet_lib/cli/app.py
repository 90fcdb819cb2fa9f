"""`gesturenet <subtask>`: TAO GestureNet's command line, flag for flag.

Each subtask lives in its own module of this package with two functions: ``add_parser(subparsers)``
declares its flags (spelled as TAO spells them) and ``run(args)`` builds the task's Request, calls
its ``run`` (``gesturenet_lib.tasks``) and prints the Result. Only subtasks that are implemented
are registered; there are no placeholder commands.

Exit codes: 0 success, 2 bad input (spec, flag, file, data; one line naming the file, field and
value), 1 an unexpected failure (one line; the traceback with ``--debug``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from gesturenet_lib import __version__, tao_mounts
from gesturenet_lib.cli import (
    dataset_convert,
    dataset_import,
    evaluate,
    export,
    inference,
    pipeline,
    serve,
    train,
    validate,
)
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.specs import SpecError


def quiet_libraries() -> None:
    """Keep our progress lines readable: libraries log warnings and errors only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The crop step forks worker processes that never use gRPC; skip gRPC's fork handlers
    # (and their warning about other threads).
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
    for name in ("apache_beam", "absl", "tensorflow", "tensorflow_datasets"):
        logging.getLogger(name).setLevel(logging.WARNING)


# In TAO's documentation order.
SUBTASKS = [dataset_import, dataset_convert, train, evaluate, inference, export, serve,
            validate, pipeline]

# Flags that are never paths (a key must never be rewritten, even one that starts with "/").
NOT_PATHS = ("key", "subtask", "extra_args")


def map_flag_paths(args: argparse.Namespace) -> None:
    """Paths given as flags under a TAO launcher mount's container destination (NVIDIA's
    notebook passes ``$SPECS_DIR/train_spec.json`` = ``/workspace/...``) map to the host."""
    for name, value in vars(args).items():
        if name not in NOT_PATHS and isinstance(value, str) and value.startswith("/"):
            setattr(args, name, tao_mounts.map_path(value))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gesturenet",
        description="Hand-gesture recognition with TAO GestureNet's spec files and flags.",
    )
    parser.add_argument("--version", action="version", version=f"gesturenet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    subparsers = parser.add_subparsers(dest="subtask", metavar="<subtask>", required=True)
    for module in SUBTASKS:
        sub = module.add_parser(subparsers)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks on errors")
        sub.set_defaults(run=module.run,
                         accepts_extra_args=getattr(module, "ACCEPTS_EXTRA_ARGS", False))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra_args", False):
        parser.error("unrecognized arguments: " + " ".join(extra))
    args.extra_args = extra
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    quiet_libraries()
    try:
        map_flag_paths(args)
        return int(args.run(args) or 0)
    except (SpecError, UserInputError) as err:
        if args.debug:
            traceback.print_exc()
        print(f"gesturenet {args.subtask}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gesturenet {args.subtask}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence prints one line
        if args.debug:
            traceback.print_exc()
        print(f"gesturenet {args.subtask}: unexpected error: {type(err).__name__}: {err} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
