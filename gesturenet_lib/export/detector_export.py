"""The palm detector as its own ONNX file beside the classifier, for a DeepStream primary
detector or a Triton model: MediaPipe's network as converted by ``make models`` (input
``input_1`` N x 192 x 192 x 3 RGB in [0, 1], letterboxed; outputs ``Identity`` N x 2016 x 18
box and keypoint offsets, ``Identity_1`` N x 2016 x 1 logits), with what decoding it needs
(anchors, thresholds, the hand box rule) in its metadata under ``gesturenet_palm_detector``."""

from __future__ import annotations

import json

from gesturenet_lib import io
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.models import palm_detection as pd

FILE_NAME = "palm_detector.onnx"
METADATA_KEY = "gesturenet_palm_detector"


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


def write_detector(out_dir: str) -> str | None:
    """Write ``palm_detector.onnx`` into ``out_dir``; None (and nothing written) when the
    networks of ``make models`` are not on this machine."""
    import onnx

    from gesturenet_lib.models.landmark_assets import palm_onnx_bytes

    try:
        model = onnx.load_from_string(palm_onnx_bytes())
    except UserInputError:
        return None
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(decoding(), sort_keys=True)
    path = io.join(out_dir, FILE_NAME)
    io.write_bytes(path, model.SerializeToString())
    return path
