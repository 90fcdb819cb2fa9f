"""`gesturenet dataset_import`: convert another dataset format into TAO's original layout."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "dataset_import", help="convert HaGRID annotations into TAO's original data layout",
        description="Write user folders, one Label Studio annotation per hand box and the set "
                    "file into the dataset folder <mount_dir_path>/<org_data_dir>/<org_dataset>.")
    parser.add_argument("--format", required=True, choices=["hagrid", "tao"],
                        help="source format (tao: a folder already in TAO's layout, copied)")
    parser.add_argument("--images", required=True, help="folder of the source images (any depth)")
    parser.add_argument("--annotations",
                        help="HaGRID's annotation folder (with or without train/val/test)")
    parser.add_argument("--output", required=True, help="the dataset folder to write")
    parser.add_argument("--class_map", help="JSON object: HaGRID label -> class name; '*' "
                        "catches the rest (default: GestureNet's six classes)")
    return parser


def run(args: argparse.Namespace) -> int:
    from gesturenet_lib.tasks import dataset_import

    result = dataset_import.run(dataset_import.ImportRequest(
        args.format, args.images, args.output, args.annotations, args.class_map))
    if args.format == "tao":
        print(f"copied {result.images} files into {result.output}")
        return 0
    print(f"imported {result.images} images, {result.boxes} hand boxes, {result.users} users "
          f"into {result.output}")
    for name, count in result.per_class.items():
        print(f"  {name:<12} {count}")
    if result.rejected:
        print(f"rejected {result.rejected} boxes; see {result.rejects_file}")
    return 0 if result.boxes else 2
