"""`gesturenet inference`: classify a data.json set or a folder of crops."""

from __future__ import annotations

import argparse

from gesturenet_lib.cli import full_frame_flags
from gesturenet_lib.inference.video import Tracking


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
                        "hands drawn into this folder; with --video or --sequence: write "
                        "<source name>.mp4 there, the annotated video")
    stream = parser.add_argument_group(
        "video and image sequences", "every hand tracked from frame to frame (MediaPipe's "
        "video mode: the palm detector only when no hand is tracked, or every "
        "--detect_every frames); one line / record per hand per frame")
    stream.add_argument("--video", help="a video file, or anything OpenCV opens: a camera "
                        "index (0), an RTSP or HTTP URL")
    stream.add_argument("--sequence", action="store_true",
                        help="with --image_dir: its images are the numbered frames of one "
                             "video (in their numbers' order)")
    stream.add_argument("--max_frames", type=int,
                        help="stop after this many frames (a camera or a stream never ends)")
    stream.add_argument("--fps", type=float, default=Tracking.fps_of_sequences,
                        help="with --sequence: the frames per second its times and preview "
                             f"use (default {Tracking.fps_of_sequences:g})")
    stream.add_argument("--max_hands", type=int, default=Tracking.max_hands,
                        help=f"hands tracked at once (default {Tracking.max_hands})")
    stream.add_argument("--detect_every", type=int, default=Tracking.detect_every,
                        help="run the palm detector at least every N frames while hands are "
                             f"tracked, to find new ones (default {Tracking.detect_every})")
    stream.add_argument("--smooth", type=int, default=Tracking.smooth,
                        help="a hand's class: the mean probabilities over its last N frames "
                             f"(default {Tracking.smooth}: no smoothing)")
    return parser


def run(args: argparse.Namespace) -> int:
    from gesturenet_lib.keys import optional_key
    from gesturenet_lib.specs import load_experiment
    from gesturenet_lib.tasks import inference

    key = optional_key(args.key)
    rule = full_frame_flags.crop_rule(args)
    tracking = Tracking(args.max_hands, args.detect_every, args.smooth, args.fps)
    result = inference.run(inference.InferenceRequest(
        load_experiment(args.experiment_spec), args.model, key, args.results_dir,
        args.image_root_path, args.data_json, args.data_type, args.image_dir, args.full_frame,
        args.previews, rule, args.video, args.sequence, args.max_frames, tracking))
    what = "frames" if args.video or args.sequence else "images"
    print(f"classified {result.classified} {what}, {result.failed} failed")
    print(f"wrote {result.results_txt} and {result.results_jsonl}")
    return 0
