"""`gesturenet inference`: classify a data.json set or a folder of crops."""

from __future__ import annotations

import argparse

from gesturenet_lib.cli import full_frame_flags


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
    full_frame_flags.add_arguments(
        parser, "the images are whole frames: find every hand (palm detector + landmarks), "
                "cut each as dataset_convert cuts a box, classify it; one line / record per "
                "hand")
    parser.add_argument("--previews", help="with --full_frame: write each image with its "
                        "hands drawn into this folder")
    return parser


def run(args: argparse.Namespace) -> int:
    from gesturenet_lib.keys import optional_key
    from gesturenet_lib.specs import load_experiment
    from gesturenet_lib.tasks import inference

    key = optional_key(args.key)
    rule = full_frame_flags.crop_rule(args)
    result = inference.run(inference.InferenceRequest(
        load_experiment(args.experiment_spec), args.model, key, args.results_dir,
        args.image_root_path, args.data_json, args.data_type, args.image_dir, args.full_frame,
        args.previews, rule))
    print(f"classified {result.classified} images, {result.failed} failed")
    print(f"wrote {result.results_txt} and {result.results_jsonl}")
    return 0
