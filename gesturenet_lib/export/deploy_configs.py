"""Deployment files written beside an export: labels.txt (nvinfer's format), a DeepStream
``nvinfer`` config and a Triton model repository entry (with its own one-per-line labels). Every
number comes from the model's stored preprocessing and the exported ONNX graph, never from a
second copy of them."""

from __future__ import annotations

from dataclasses import dataclass

from gesturenet_lib.errors import UserInputError
from gesturenet_lib.models.preprocessing import Preprocessing

OUTPUT_NAME = "predictions"
INPUT_NAME = "input_1"
MODEL_NAME = "gesturenet"  # the Triton entry's name, and what `gesturenet serve` serves as


@dataclass(frozen=True)
class DeployInfo:
    classes: list[str]             # in index order
    preprocessing: Preprocessing
    input_dims: tuple[int, ...]    # without the batch dimension, declared layout
    data_type: str                 # fp32 | fp16 | int8
    batch_size: int                # DeepStream batch-size / Triton max_batch_size


def labels_txt(classes: list[str]) -> str:
    """Triton's label file: one class per line, in index order."""
    return "\n".join(classes) + "\n"


def nvinfer_labels(classes: list[str]) -> str:
    """DeepStream nvinfer's label file for a classifier: one line per output layer, the labels
    of that layer separated by ';' (NVIDIA's GestureNet ships
    ``THUMBSUP;FIST;STOP;OK;RAISE;RANDOMGESTURE``). A class name with ';' would split."""
    bad = [name for name in classes if ";" in name or "\n" in name]
    if bad:
        raise UserInputError(f"class name {bad[0]!r}: DeepStream's label file separates "
                             "labels with ';' and layers with new lines; rename the class")
    return ";".join(classes) + "\n"


def deepstream_config(info: DeployInfo, model_file: str, model_kind: str,
                      calib_file: str | None) -> str:
    """``[property]`` section for nvinfer as a secondary classifier on hand crops.
    ``model_kind``: "onnx" (onnx-file) or "engine" (model-engine-file)."""
    p = info.preprocessing
    mode = {"fp32": 0, "int8": 1, "fp16": 2}[info.data_type]
    lines = [
        "[property]",
        "gpu-id=0",
        f"net-scale-factor={p.scale:.17g}",
        "offsets=" + ";".join(f"{p.offset:g}" for _ in range(p.channels)),
        f"model-color-format={0 if p.channels == 3 else 2}",
        f"infer-dims={';'.join(str(d) for d in info.input_dims)}",
        f"{'onnx-file' if model_kind == 'onnx' else 'model-engine-file'}={model_file}",
        "labelfile-path=labels.txt",
        f"batch-size={info.batch_size}",
        f"network-mode={mode}",
        f"output-blob-names={OUTPUT_NAME}",
        "network-type=1",
        "process-mode=2",
        "classifier-threshold=0.5",
        # letterbox: scaled with the aspect kept and centred on a black border, as trained
        f"maintain-aspect-ratio={int(p.fit == 'letterbox')}",
    ]
    if p.fit == "letterbox":
        lines.append("symmetric-padding=1")
    if info.data_type == "int8" and calib_file:
        lines.append(f"int8-calib-file={calib_file}")
    return "\n".join(lines) + "\n"


def triton_config(info: DeployInfo, name: str, platform: str) -> str:
    """``config.pbtxt`` for Triton's ONNX Runtime or TensorRT platform, dynamic batching."""
    dims = ", ".join(str(d) for d in info.input_dims)
    return f"""name: "{name}"
platform: "{platform}"
max_batch_size: {info.batch_size}
input [
  {{
    name: "{INPUT_NAME}"
    data_type: TYPE_FP32
    dims: [ {dims} ]
  }}
]
output [
  {{
    name: "{OUTPUT_NAME}"
    data_type: TYPE_FP32
    dims: [ {len(info.classes)} ]
    label_filename: "labels.txt"
  }}
]
dynamic_batching {{ }}
"""
