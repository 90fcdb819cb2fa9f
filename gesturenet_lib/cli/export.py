"""`gesturenet export`: ONNX / .etlt, INT8 calibration, TensorRT engine, deployment configs."""

from __future__ import annotations

import argparse

from gesturenet_lib.export import DEFAULT_BATCH_SIZE, DEFAULT_BATCHES
from gesturenet_lib.export.onnx_export import DEFAULT_OPSET


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export", help="export to ONNX or .etlt, with INT8 calibration, TensorRT, DeepStream "
                       "and Triton files",
        description="Write the model (-o model.onnx, or model.etlt encrypted with the key), "
                    "labels.txt, nvinfer_config.txt (DeepStream) and a Triton model repository "
                    "entry beside it. --data_type int8 also writes the calibration tensorfile, "
                    "a TensorRT calibration cache and <stem>_int8.onnx; --engine_file builds a "
                    "TensorRT engine (needs TensorRT and a GPU).")
    parser.add_argument("-m", "--model", required=True,
                        help=".tlt or .keras (converted), or .onnx / .etlt (used as is)")
    parser.add_argument("-k", "--key", help="key of -m and of a .etlt output "
                        "(default: $GESTURENET_KEY)")
    parser.add_argument("-o", "--output_file", "--out_file", dest="output",
                        help="model.onnx or model.etlt (default: <model path>.etlt, as TAO)")
    parser.add_argument("-t", "--target_opset", dest="opset", type=int, default=None,
                        help=f"ONNX opset (default: the family's, {DEFAULT_OPSET} for a ResNet, "
                             "the lowest tf2onnx converts it with; a hand_landmarks model "
                             "exports at its extractor's, 16 with the palm detector)")
    parser.add_argument("--data_type", default="fp32", choices=["fp32", "fp16", "int8"],
                        help="precision of the engine / DeepStream config (default fp32)")
    parser.add_argument("--cal_data_file", help="calibration tensorfile (.npy); reused when "
                        "it exists")
    parser.add_argument("--cal_image_dir", help="images to calibrate INT8 with")
    parser.add_argument("--cal_cache_file", default="./cal.bin",
                        help="TensorRT calibration cache (default ./cal.bin); reused when it "
                             "exists")
    parser.add_argument("--batches", type=int, default=DEFAULT_BATCHES,
                        help=f"calibration batches (default {DEFAULT_BATCHES})")
    parser.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"calibration batch size (default {DEFAULT_BATCH_SIZE}); "
                             "--cal_image_dir needs batch_size x batches images")
    parser.add_argument("--max_batch_size", type=int, default=1,
                        help="largest batch of the engine and of Triton's config (default 1)")
    parser.add_argument("--max_workspace_size", type=int, default=1 << 30,
                        help="TensorRT workspace in bytes (default 1 GiB)")
    parser.add_argument("--engine_file", help="build a TensorRT engine here (GPU only)")
    parser.add_argument("--input_dims", help="C,H,W; must equal the model's input "
                        "(default: the model's own, e.g. 3,160,160)")
    parser.add_argument("--backend", default="onnx", choices=["onnx", "tfonnx", "uff"],
                        help="onnx (tfonnx is the same); uff is refused")
    parser.add_argument("-e", "--experiment_spec", help="the experiment spec (needed for "
                        "models that carry no class map)")
    parser.add_argument("--calibrator", default="entropy",
                        choices=["entropy", "percentile", "minmax"],
                        help="ONNX Runtime calibrator for INT8 (default entropy)")
    parser.add_argument("--storage_uri", help="where a cluster reads the output folder (gs://, "
                        "s3://, pvc://...), for the KServe manifests in kserve/ (default: the "
                        "output folder when it is gs://; without either, none are written)")
    return parser


def run(args: argparse.Namespace) -> int:
    from gesturenet_lib.keys import optional_key
    from gesturenet_lib.specs import load_experiment_spec
    from gesturenet_lib.tasks.export import ExportRequest, default_output, run

    key = optional_key(args.key)
    result = run(ExportRequest(
        model=args.model, key=key, output=args.output or default_output(args.model),
        opset=args.opset,
        data_type=args.data_type, cal_data_file=args.cal_data_file,
        cal_image_dir=args.cal_image_dir, cal_cache_file=args.cal_cache_file,
        batches=args.batches, batch_size=args.batch_size, max_batch_size=args.max_batch_size,
        max_workspace_size=args.max_workspace_size, engine_file=args.engine_file,
        input_dims=args.input_dims, backend=args.backend,
        spec=load_experiment_spec(args.experiment_spec) if args.experiment_spec else None,
        calibrator=args.calibrator,
        storage_uri=args.storage_uri))
    for kind, path in result.files.items():
        print(f"{kind:<18} {path}")
    for note in result.notes:
        print(f"note: {note}")
    return 0
