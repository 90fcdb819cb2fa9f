"""The palm detector as its own ONNX file beside the classifier, for a DeepStream primary
detector or a Triton model: MediaPipe's network as converted by ``make models`` (input
``input_1`` N x 192 x 192 x 3 RGB in [0, 1], letterboxed; outputs ``Identity`` N x 2016 x 18
box and keypoint offsets, ``Identity_1`` N x 2016 x 1 logits), with what decoding it needs
(anchors, thresholds, the hand box rule) in its metadata under ``gesturenet_palm_detector``.
The same file also becomes a second model of the Triton repository, ``triton/palm_detector``."""

from __future__ import annotations

import json

from gesturenet_lib import io
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.families.hand_landmarks import palm_detection as pd

FILE_NAME = "palm_detector.onnx"
METADATA_KEY = "gesturenet_palm_detector"
TRITON_NAME = "palm_detector"


def decoding() -> dict:
    return {
        "input": {"name": pd.NET_INPUT, "layout": "NHWC", "size": pd.INPUT_SIZE,
                  "range": [0.0, 1.0], "resize": "letterbox, zero border"},
        "outputs": {"boxes": pd.NET_BOXES, "scores": pd.NET_SCORES},
        "anchors": {"strides": list(pd.ANCHOR_STRIDES), "per_layer": 2, "offset":
                    pd.ANCHOR_OFFSET, "fixed_size": True, "count": pd.NUM_ANCHORS},
        "box": "x_center, y_center, w, h, then 7 keypoints (x, y); divide by the input size "
               "and add the anchor centre to positions",
        "score": {"sigmoid_after_clip": pd.SCORE_CLIP, "min": pd.MIN_SCORE},
        "nms": {"algorithm": "weighted", "iou": pd.NMS_IOU},
        "hand_box": {"rotation_keypoints": [pd.ROTATION_START, pd.ROTATION_END],
                     "target_angle_degrees": 90, "scale": pd.HAND_SCALE,
                     "shift_y": pd.HAND_SHIFT_Y, "square_long": True},
        "source": "mediapipe 0.10.21 palm_detection_full.tflite (Apache-2.0)",
    }


def triton_config(max_batch_size: int) -> str:
    """``config.pbtxt`` of the detector's Triton entry (ONNX Runtime, dynamic batching)."""
    size = pd.INPUT_SIZE
    tensors = ((pd.NET_BOXES, 4 + 2 * pd.NUM_KEYPOINTS), (pd.NET_SCORES, 1))
    outputs = ",\n".join(f'  {{\n    name: "{name}"\n    data_type: TYPE_FP32\n'
                         f"    dims: [ {pd.NUM_ANCHORS}, {width} ]\n  }}"
                         for name, width in tensors)
    return f"""name: "{TRITON_NAME}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch_size}
input [
  {{
    name: "{pd.NET_INPUT}"
    data_type: TYPE_FP32
    dims: [ {size}, {size}, 3 ]
  }}
]
output [
{outputs}
]
dynamic_batching {{ }}
"""


def write_detector(out_dir: str, max_batch_size: int = 1) -> str | None:
    """Write ``palm_detector.onnx`` and its Triton entry into ``out_dir``; None (and nothing
    written) when the networks of ``make models`` are not on this machine."""
    import onnx

    from gesturenet_lib.families.hand_landmarks.assets import palm_onnx_bytes

    try:
        model = onnx.load_from_string(palm_onnx_bytes())
    except UserInputError:
        return None
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(decoding(), sort_keys=True)
    data = model.SerializeToString()
    path = io.join(out_dir, FILE_NAME)
    io.write_bytes(path, data)
    entry = io.join(out_dir, "triton", TRITON_NAME)
    io.write_text(io.join(entry, "config.pbtxt"), triton_config(max_batch_size))
    io.write_bytes(io.join(entry, "1", "model.onnx"), data)
    return path
