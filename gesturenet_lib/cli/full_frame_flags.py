"""The flags of ``inference --full_frame`` and ``evaluate --full_frame``: how a found hand's
box is cut into the crop the model classifies (dataset_convert's two settings)."""

from __future__ import annotations

import argparse

from gesturenet_lib.errors import UserInputError
from gesturenet_lib.inference.full_frame import ENLARGE_RANGE, CropRule


def add_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--full_frame", action="store_true", help=what)
    parser.add_argument("--bbox_enlarge_ratio", type=float, default=CropRule.enlarge_ratio,
                        help="with --full_frame: dataset_convert's setting the model was "
                             f"trained with (default {CropRule.enlarge_ratio})")
    parser.add_argument("--convert_bbox_square", type=_true_or_false, default=CropRule.square,
                        help="with --full_frame: dataset_convert's setting, true or false "
                             f"(default {str(CropRule.square).lower()})")


def crop_rule(args: argparse.Namespace) -> CropRule:
    low, high = ENLARGE_RANGE
    if not low <= args.bbox_enlarge_ratio <= high:
        raise UserInputError(f"--bbox_enlarge_ratio {args.bbox_enlarge_ratio}: must be in "
                             f"[{low:g}, {high:g}], as in the dataset spec")
    return CropRule(args.convert_bbox_square, args.bbox_enlarge_ratio)


def _true_or_false(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"{text!r}: true or false")
    return text.lower() == "true"
