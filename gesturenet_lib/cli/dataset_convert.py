"""`gesturenet dataset_convert`: hand crops, person-disjoint splits and data.json, on Beam."""

from __future__ import annotations

import argparse

from gesturenet_lib.data.images import DEFAULT_MAX_PIXELS

ACCEPTS_EXTRA_ARGS = True  # unknown flags are Beam pipeline options (--runner, --project, ...)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "dataset_convert", help="cut hand crops and write the train/validation/kpi data.json",
        description="Read TAO's original data layout, write one crop per labelled hand box and "
                    "the dataset JSON. Any other flag is passed to Apache Beam "
                    "(e.g. --runner DataflowRunner --project P --region R --temp_location "
                    "gs://...; --direct_num_workers 2). Default: the local runner on every core.")
    parser.add_argument("--dataset_spec", required=True, help="dataset_config.json")
    parser.add_argument("--experiment_spec", required=True,
                        help="dataset_experiment_config.json")
    parser.add_argument("--k_folds", type=int, default=0,
                        help="K >= 2: K person-disjoint folds, written as <stem>_fold<i>.json "
                             "(data.json equals fold 0); 0 or 1: one split")
    parser.add_argument("--output_filename", required=True, help="the data.json to write")
    parser.add_argument("--experiment_name", required=True,
                        help="names the crop folder and salts the validation draw")
    parser.add_argument("--max_image_pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="an image with more pixels (read from its header, before "
                             f"decoding) is rejected (default {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument("--no_tfds", action="store_true",
                        help="do not write the TFDS shards (crops and data.json only)")
    return parser


def run(args: argparse.Namespace) -> int:
    from gesturenet_lib.tasks import dataset_convert

    result = dataset_convert.run(dataset_convert.ConvertRequest.from_files(
        args.dataset_spec, args.experiment_spec, args.output_filename, args.experiment_name,
        k_folds=1 if args.k_folds == 1 else args.k_folds, beam_args=list(args.extra_args),
        write_tfds=not args.no_tfds, max_image_pixels=args.max_image_pixels))
    print(result.summary)
    print(f"\nwrote {result.data_json}")
    for path in result.fold_files:
        print(f"wrote {path}")
    if result.left_out:
        print(f"rejects: {result.rejects_file} ({result.left_out} boxes left out, each with "
              "its reason)")
    if result.tfds_dir:
        print(f"TFDS dataset: {result.tfds_dir}")
    return 0
