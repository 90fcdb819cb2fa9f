"""`gesturenet inference`: classify a data.json set or a folder of crops."""

from __future__ import annotations

import argparse

from gesturenet_lib.inference.full_frame import CropRule


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "inference", help="classify the images of a data.json set or of a folder of crops",
        description="Write results.txt (path, class index, class name, confidence) and "
                    "results.jsonl (plus the probabilities and any per-image error) to "
                    "--results_dir. With --data_json, each image is cut from its full image by "
                    "bbox_coordinates; with --image_dir, every image under it is a crop.")
    parser.add_argument("-e", "--experiment_spec", "--experiment_spec_filename",
                        dest="experiment_spec", required=True, help="the experiment spec")
    parser.add_argument("-m", "--model", required=True, help="the model file")
    parser.add_argument("-k", "--key", help="the model's key (default: $GESTURENET_KEY)")
    parser.add_argument("--image_root_path", help="root of the paths in data.json "
                        "(default: dataset.image_root_path)")
    parser.add_argument("--data_json", help="a data.json written by dataset_convert")
    parser.add_argument("--data_type", default="kpi_set",
                        choices=["kpi_set", "validation_set", "train_set"],
                        help="the set of data.json (default: kpi_set)")
    parser.add_argument("--image_dir", help="a folder of crops (instead of --data_json)")
    parser.add_argument("--results_dir", required=True, help="where results are written")
    parser.add_argument("--full_frame", action="store_true",
                        help="the images are whole frames: find every hand (palm detector + "
                             "landmarks), cut each as dataset_convert cuts a box, classify it; "
                             "one line / record per hand")
    parser.add_argument("--previews", help="with --full_frame: write each image with its "
                        "hands drawn into this folder")
    parser.add_argument("--bbox_enlarge_ratio", type=float, default=CropRule.enlarge_ratio,
                        help="with --full_frame: dataset_convert's setting the model was "
                             f"trained with (default {CropRule.enlarge_ratio})")
    parser.add_argument("--convert_bbox_square", type=_yes_no, default=CropRule.square,
                        help="with --full_frame: dataset_convert's setting, true or false "
                             f"(default {str(CropRule.square).lower()})")
    return parser


def _yes_no(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"{text!r}: true or false")
    return text.lower() == "true"


def run(args: argparse.Namespace) -> int:
    from gesturenet_lib.cloud import inference
    from gesturenet_lib.keys import optional_key
    from gesturenet_lib.specs import load_experiment

    key = optional_key(args.key)
    if not 1.0 <= args.bbox_enlarge_ratio <= 5.0:
        from gesturenet_lib.errors import UserInputError

        raise UserInputError(f"--bbox_enlarge_ratio {args.bbox_enlarge_ratio}: must be in "
                             "[1, 5], as in the dataset spec")
    rule = CropRule(args.convert_bbox_square, args.bbox_enlarge_ratio)
    result = inference(load_experiment(args.experiment_spec), args.model, key, args.results_dir,
                       args.image_root_path, args.data_json, args.data_type, args.image_dir,
                       args.full_frame, args.previews, rule)
    print(f"classified {result.classified} images, {result.failed} failed")
    print(f"wrote {result.results_txt} and {result.results_jsonl}")
    return 0
