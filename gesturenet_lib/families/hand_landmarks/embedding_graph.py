"""MediaPipe's gesture embedder inside the crop graph (ONNX nodes): the landmark network's rows
-> the embedder's three inputs, prepared as MediaPipe's gesture graph prepares them -> the
128-d hand embedding -> Google's canned gesture classifier on it (8 scores); the embedding and
the scores are appended to the rows.

MediaPipe's SingleHandGestureRecognizerGraph feeds the embedder (read in its source:
hand_gesture_recognizer_graph.cc, landmarks_to_matrix_calculator.cc,
handedness_to_matrix_calculator.cc, hand_landmarks_detector_graph.cc):
- ``hand``: the 21 image landmarks in MediaPipe's normalised units (x / width, y / height,
  z / width / 0.4), put back to a common scale by the image's aspect ratio, then made relative
  to the wrist and divided by the hand's larger extent in x or y (plus 1e-5);
- ``world_hand``: the 21 world landmarks, normalised the same way (no aspect step);
- ``handedness``: the landmark network's handedness output as it is. (Checked against
  MediaPipe 0.10.21's GestureRecognizer: fed its own landmarks, this preparation gives its
  canned scores to 1e-6; the complement gives errors up to 0.36.)
Our rows are in a square crop of side ``size``, so the aspect step is a division by ``size``.
"""

from __future__ import annotations

from gesturenet_lib.families.hand_landmarks.layout import (
    CANNED_SIZE,
    EMBEDDING_SIZE,
    HANDEDNESS,
    MEDIAPIPE_NORMALIZE_Z,
    NET_ROW,
    OBJECT_EPSILON,
    POINTS_END,
    WORLD_START,
)

PREFIX = "embedder/"
CANNED_PREFIX = "canned/"


def embedding_nodes(rows: str, size: int, embedder_onnx: bytes, canned_onnx: bytes,
                    out: str) -> tuple[list, list]:
    """Nodes from ``rows`` [N, NET_ROW] (landmarks in a square frame of side ``size``) to
    ``out`` [N, NET_ROW + EMBEDDING_SIZE + CANNED_SIZE]. (nodes, initializers)"""
    import numpy as np
    import onnx
    from onnx import TensorProto, compose, helper, numpy_helper

    from gesturenet_lib.families.hand_landmarks.assets import (
        EMBEDDER_HANDEDNESS,
        EMBEDDER_OUTPUT,
        EMBEDDER_SCREEN,
        EMBEDDER_WORLD,
    )

    net = compose.add_prefix(onnx.load_from_string(embedder_onnx), PREFIX)
    canned = compose.add_prefix(onnx.load_from_string(canned_onnx), CANNED_PREFIX)
    canned_input = canned.graph.input[0].name
    node = helper.make_node
    unit = np.array([1.0 / size, 1.0 / size, 1.0 / (size * MEDIAPIPE_NORMALIZE_Z)], np.float32)
    inits = [
        numpy_helper.from_array(unit, "emb_unit"),
        helper.make_tensor("emb_eps", TensorProto.FLOAT, [], [OBJECT_EPSILON]),
        helper.make_tensor("emb_points_shape", TensorProto.INT64, [3], [-1, 21, 3]),
        *[helper.make_tensor(f"emb_i{k}", TensorProto.INT64, [1], [k])
          for k in (0, 1, 2, POINTS_END, HANDEDNESS, WORLD_START, NET_ROW)],
        *net.graph.initializer,
        *canned.graph.initializer,
    ]
    nodes = [
        node("Slice", [rows, "emb_i0", f"emb_i{POINTS_END}", "emb_i1"], ["emb_screen_flat"]),
        node("Reshape", ["emb_screen_flat", "emb_points_shape"], ["emb_screen_px"]),
        node("Mul", ["emb_screen_px", "emb_unit"], ["emb_screen"]),
        *_object_normalised("emb_screen", PREFIX + EMBEDDER_SCREEN),
        node("Slice", [rows, f"emb_i{WORLD_START}", f"emb_i{NET_ROW}", "emb_i1"],
             ["emb_world_flat"]),
        node("Reshape", ["emb_world_flat", "emb_points_shape"], ["emb_world"]),
        *_object_normalised("emb_world", PREFIX + EMBEDDER_WORLD),
        node("Slice", [rows, f"emb_i{HANDEDNESS}", f"emb_i{WORLD_START}", "emb_i1"],
             [PREFIX + EMBEDDER_HANDEDNESS]),
        *net.graph.node,
        node("Identity", [PREFIX + EMBEDDER_OUTPUT], [canned_input]),
        *canned.graph.node,
        node("Concat", [rows, PREFIX + EMBEDDER_OUTPUT, canned.graph.output[0].name], [out],
             axis=1, name=out),
    ]
    assert (EMBEDDING_SIZE, CANNED_SIZE) == (128, 8)  # the two networks' output widths
    return nodes, inits


def _object_normalised(points: str, out: str) -> list:
    """[N, 21, 3] -> relative to the wrist, divided by the larger of the x and y extents plus
    the epsilon (MediaPipe's object normalisation, origin landmark 0)."""
    from onnx import helper

    node = helper.make_node
    return [
        node("Slice", [points, "emb_i0", "emb_i1", "emb_i1"], [f"{points}_origin"]),
        node("Sub", [points, f"{points}_origin"], [f"{points}_rel"]),
        node("Slice", [f"{points}_rel", "emb_i0", "emb_i2", "emb_i2"], [f"{points}_xy"]),
        node("ReduceMax", [f"{points}_xy"], [f"{points}_max"], axes=[1], keepdims=1),
        node("ReduceMin", [f"{points}_xy"], [f"{points}_min"], axes=[1], keepdims=1),
        node("Sub", [f"{points}_max", f"{points}_min"], [f"{points}_extent"]),
        node("ReduceMax", [f"{points}_extent"], [f"{points}_larger"], axes=[2], keepdims=1),
        node("Add", [f"{points}_larger", "emb_eps"], [f"{points}_scale"]),
        node("Div", [f"{points}_rel", f"{points}_scale"], [out]),
    ]
