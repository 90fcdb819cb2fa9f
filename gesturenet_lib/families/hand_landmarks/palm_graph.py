"""The palm detector inside the crop graph (ONNX nodes): crop -> palm detector -> the surest
palm, merged with its overlapping detections as MediaPipe's weighted suppression does -> the
rotated hand box (``palm_detection``'s constants) -> GridSample warps the box upright to the
landmark network's input -> after the network, the landmarks mapped back into the crop.

A crop holds one hand, so only the surest palm is followed. Every op used here is in
TensorRT's ONNX operator list; GridSample is why this graph is opset 16.
"""

from __future__ import annotations

import numpy as np

from gesturenet_lib.families.hand_landmarks import palm_detection as pd
from gesturenet_lib.families.hand_landmarks.batch_gate import BatchGate
from gesturenet_lib.families.hand_landmarks.layout import (
    NET_ROW,
    POINTS_END,
    PRESENCE,
    WORLD_START,
)
from gesturenet_lib.families.hand_landmarks.onnx_constants import floats, ints

OPSET = 16           # GridSample
IR_VERSION = 8       # what opset 16 needs (and what tf2onnx writes at it)
PREFIX = "palm/"     # the detector's own tensor names, kept apart from the landmark network's
VIEW = "palm_view"   # the warped hand, NHWC, what the landmark network reads
FOUND = "palm_found"  # [N, 1] bool: the surest palm reaches MediaPipe's 0.5
VIEWS_CROPS = "views_crops"  # the crops the fallback views are made of: all of them, or none


def detector_nodes(x: str, size: int, palm_onnx: bytes) -> tuple[list, list]:
    """Nodes from the NHWC crop ``x`` (side ``size``) to the palm view ``palm_view`` and the
    tensors ``palm_side``, ``palm_turn`` [N, 2, 2] and ``palm_centre`` [N, 1, 2] that map it
    back. (nodes, initializers)"""
    import onnx
    from onnx import compose, helper

    net = _empty_batch_safe(compose.add_prefix(onnx.load_from_string(palm_onnx), PREFIX))
    node = helper.make_node
    inits = _detector_inits() + list(net.graph.initializer)
    nodes = [
        # the crop resized to the detector's input (a square: no letterbox)
        node("Shape", [x], ["palm_x_shape"]),
        node("Slice", ["palm_x_shape", "palm_c0", "palm_c1"], ["palm_batch"]),
        node("Concat", ["palm_batch", "palm_det_hwc"], ["palm_det_sizes"], axis=0),
        node("Resize", [x, "palm_roi", "palm_scales", "palm_det_sizes"],
             [PREFIX + pd.NET_INPUT], mode="linear"),
        *net.graph.node,
        # scores and the surest anchor
        node("Clip", [PREFIX + pd.NET_SCORES, "palm_f_clip_lo", "palm_f_clip_hi"],
             ["palm_logits"]),
        node("Sigmoid", ["palm_logits"], ["palm_scores_3d"]),
        node("Reshape", ["palm_scores_3d", "palm_scores_shape"], ["palm_scores"]),
        node("ArgMax", ["palm_scores"], ["palm_best"], axis=1, keepdims=1),
        node("ReduceMax", ["palm_scores"], ["palm_best_score"], axes=[1], keepdims=1),
        node("GreaterOrEqual", ["palm_best_score", "palm_f_min_score"], [FOUND]),
        # every anchor decoded: centre, size and keypoints in [0, 1] of the crop
        node("Div", [PREFIX + pd.NET_BOXES, "palm_f_input"], ["palm_raw_unit"]),
        node("Add", ["palm_raw_unit", "palm_anchor_add"], ["palm_decoded"]),
        *_suppression_nodes(),
        *_rect_nodes(),
        *warp_nodes(x),
    ]
    return nodes, inits


def warp_nodes(x: str) -> list:
    """The hand rect (``palm_turn``, ``palm_centre``, in [0, 1] of the NHWC crop ``x``) ->
    its contents upright at the landmark network's input size, ``palm_view`` (GridSample,
    edge pixels repeated outside the crop). Its constants are ``detector_nodes``'."""
    from onnx import helper

    node = helper.make_node
    return [
        node("Transpose", [x], ["palm_x_nchw"], perm=[0, 3, 1, 2]),
        node("MatMul", ["palm_grid_base", "palm_turn"], ["palm_grid_turned"]),
        node("Add", ["palm_grid_turned", "palm_centre"], ["palm_grid_placed"]),
        node("Mul", ["palm_grid_placed", "palm_f_two"], ["palm_grid_doubled"]),
        node("Sub", ["palm_grid_doubled", "palm_f_one"], ["palm_grid_flat"]),
        node("Reshape", ["palm_grid_flat", "palm_grid_shape"], ["palm_grid"]),
        node("GridSample", ["palm_x_nchw", "palm_grid"], ["palm_view_nchw"],
             mode="bilinear", padding_mode="border", align_corners=0),
        node("Transpose", ["palm_view_nchw"], [VIEW], perm=[0, 2, 3, 1]),
    ]


def _empty_batch_safe(net):
    """The detector with each Reshape to [0 (the batch, copied), -1, k] made [-1, K, k], K
    read from the inferred shapes: the same on any batch, and it also runs on an empty batch,
    where ONNX cannot infer the -1 beside a copied 0."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in net.graph.initializer}
    inferred = onnx.shape_inference.infer_shapes(net).graph
    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else None
                       for d in v.type.tensor_type.shape.dim] for v in inferred.value_info}
    for k, reshape in enumerate(n for n in net.graph.node if n.op_type == "Reshape"):
        target = values.get(reshape.input[1])
        dims = shapes.get(reshape.input[0], [None])[1:]
        if target is None or list(target[:2]) != [0, -1] or None in dims or not dims:
            continue
        count = int(np.prod(dims)) // int(np.prod(target[2:]))
        name = f"{reshape.input[1]}_batch_free_{k}"
        net.graph.initializer.append(numpy_helper.from_array(
            np.array([-1, count, *target[2:]], np.int64), name))
        reshape.input[1] = name
    return net


def _detector_inits() -> list:
    """The constants of ``detector_nodes``: anchors, the output grid, shapes, scalars."""
    from onnx import TensorProto, helper, numpy_helper

    anchor_add = np.zeros((pd.NUM_ANCHORS, 4 + 2 * pd.NUM_KEYPOINTS), np.float32)
    anchors = pd.anchor_centres()
    anchor_add[:, 0:2] = anchors
    anchor_add[:, 4:] = np.tile(anchors, pd.NUM_KEYPOINTS)
    lm = pd.LANDMARK_SIZE
    centres = (np.arange(lm, dtype=np.float32) + 0.5) / lm - 0.5
    ys, xs = np.meshgrid(centres, centres, indexing="ij")
    return [
        numpy_helper.from_array(anchor_add, "palm_anchor_add"),
        numpy_helper.from_array(np.stack([xs, ys], -1).reshape(1, -1, 2), "palm_grid_base"),
        helper.make_tensor("palm_det_hwc", TensorProto.INT64, [3],
                           [pd.INPUT_SIZE, pd.INPUT_SIZE, 3]),
        helper.make_tensor("palm_grid_shape", TensorProto.INT64, [4], [-1, lm, lm, 2]),
        helper.make_tensor("palm_turn_shape", TensorProto.INT64, [3], [-1, 2, 2]),
        helper.make_tensor("palm_pick_shape", TensorProto.INT64, [3],
                           [1, 1, 4 + 2 * pd.NUM_KEYPOINTS]),
        helper.make_tensor("palm_scores_shape", TensorProto.INT64, [2], [-1, pd.NUM_ANCHORS]),
        helper.make_tensor("palm_c0", TensorProto.INT64, [1], [0]),
        helper.make_tensor("palm_c1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("palm_axis2", TensorProto.INT64, [1], [2]),
        helper.make_tensor("palm_roi", TensorProto.FLOAT, [0], []),
        helper.make_tensor("palm_scales", TensorProto.FLOAT, [0], []),
        *[helper.make_tensor(f"palm_f_{name}", TensorProto.FLOAT, [], [value]) for name, value in
          (("clip_lo", -pd.SCORE_CLIP), ("clip_hi", pd.SCORE_CLIP), ("input", pd.INPUT_SIZE),
           ("min_score", pd.MIN_SCORE), ("nms", pd.NMS_IOU), ("half", 0.5), ("two", 2.0),
           ("one", 1.0), ("eps", 1e-6), ("scale", pd.HAND_SCALE), ("shift", pd.HAND_SHIFT_Y),
           ("neg", -1.0))]]


def _suppression_nodes() -> list:
    """``palm_decoded`` [N, 2016, 18] -> ``palm_detection`` [N, 18]: the surest anchor's
    detection averaged, weighted by score, with every detection of score >= 0.5 that overlaps
    it by IoU > 0.3 (MediaPipe's WEIGHTED suppression, first cluster only)."""
    from onnx import helper

    node = helper.make_node
    return [
        node("Unsqueeze", ["palm_best", "palm_axis2"], ["palm_best_3d"]),
        node("Expand", ["palm_best_3d", "palm_pick_shape"], ["palm_best_index"]),
        node("GatherElements", ["palm_decoded", "palm_best_index"], ["palm_best_det"], axis=1),
        *_corner_nodes("palm_decoded", "palm_all"),
        *_corner_nodes("palm_best_det", "palm_top"),
        node("Max", ["palm_all_min", "palm_top_min"], ["palm_inter_min"]),
        node("Min", ["palm_all_max", "palm_top_max"], ["palm_inter_max"]),
        node("Sub", ["palm_inter_max", "palm_inter_min"], ["palm_inter_wh_raw"]),
        node("Relu", ["palm_inter_wh_raw"], ["palm_inter_wh"]),
        node("ReduceProd", ["palm_inter_wh"], ["palm_inter"], axes=[2], keepdims=0),
        node("Add", ["palm_all_area", "palm_top_area"], ["palm_area_sum"]),
        node("Sub", ["palm_area_sum", "palm_inter"], ["palm_union_raw"]),
        node("Max", ["palm_union_raw", "palm_f_eps"], ["palm_union"]),
        node("Div", ["palm_inter", "palm_union"], ["palm_iou"]),
        node("Greater", ["palm_iou", "palm_f_nms"], ["palm_overlaps"]),
        # a palm under 0.5 still gives a box (used only when nothing better is found)
        node("Min", ["palm_best_score", "palm_f_min_score"], ["palm_floor"]),
        node("GreaterOrEqual", ["palm_scores", "palm_floor"], ["palm_scored"]),
        node("And", ["palm_overlaps", "palm_scored"], ["palm_member"]),
        node("Cast", ["palm_member"], ["palm_member_f"], to=1),
        node("Mul", ["palm_member_f", "palm_scores"], ["palm_weights"]),
        node("ReduceSum", ["palm_weights", "palm_c1"], ["palm_weight_sum"], keepdims=1),
        node("Div", ["palm_weights", "palm_weight_sum"], ["palm_weights_unit"]),
        node("Unsqueeze", ["palm_weights_unit", "palm_axis2"], ["palm_weights_3d"]),
        node("Mul", ["palm_decoded", "palm_weights_3d"], ["palm_weighted"]),
        node("ReduceSum", ["palm_weighted", "palm_c1"], ["palm_detection"], keepdims=0),
    ]


def _corner_nodes(det: str, out: str) -> list:
    """``det`` [..., 18] (centre, size, ...) -> ``<out>_min``, ``<out>_max`` [..., 2] corners
    and ``<out>_area`` [...]."""
    from onnx import helper

    node = helper.make_node
    return [
        node("Slice", [det, "palm_i0", "palm_i2", "palm_axis2"], [f"{out}_centre"]),
        node("Slice", [det, "palm_i2", "palm_i4", "palm_axis2"], [f"{out}_size"]),
        node("Mul", [f"{out}_size", "palm_f_half"], [f"{out}_half"]),
        node("Sub", [f"{out}_centre", f"{out}_half"], [f"{out}_min"]),
        node("Add", [f"{out}_centre", f"{out}_half"], [f"{out}_max"]),
        node("ReduceProd", [f"{out}_size"], [f"{out}_area_3d"], axes=[2], keepdims=1),
        node("Squeeze", [f"{out}_area_3d", "palm_axis2"], [f"{out}_area"]),
    ]


def _rect_nodes() -> list:
    """``palm_detection`` [N, 18] -> the hand rect as ``palm_turn`` [N, 2, 2] (rotation times
    side, for row vectors) and ``palm_centre`` [N, 1, 2], both in [0, 1] of the crop, and
    ``palm_side`` [N, 1]. cos r = -dy / |d|, sin r = dx / |d| for d = wrist -> middle knuckle
    is r = 90 degrees - atan2(-dy, dx), MediaPipe's rotation, without an atan2."""
    from onnx import helper

    node = helper.make_node

    def column(name: str, index: int) -> list:
        return [node("Slice", ["palm_detection", f"palm_i{index}", f"palm_i{index + 1}",
                               "palm_c1"], [name])]

    wrist, knuckle = 4 + 2 * pd.ROTATION_START, 4 + 2 * pd.ROTATION_END
    return [
        *column("palm_cx", 0), *column("palm_cy", 1), *column("palm_w", 2),
        *column("palm_h", 3), *column("palm_kx0", wrist), *column("palm_ky0", wrist + 1),
        *column("palm_kx1", knuckle), *column("palm_ky1", knuckle + 1),
        node("Sub", ["palm_kx1", "palm_kx0"], ["palm_dx"]),
        node("Sub", ["palm_ky1", "palm_ky0"], ["palm_dy"]),
        *_turn_nodes("palm_dx", "palm_dy", "palm_f_eps", "palm"),
        # the shift: half the palm's height along the rect's own y axis
        node("Mul", ["palm_h", "palm_f_shift"], ["palm_shift"]),
        node("Mul", ["palm_shift", "palm_sin"], ["palm_shift_x"]),
        node("Mul", ["palm_shift", "palm_cos"], ["palm_shift_y"]),
        node("Sub", ["palm_cx", "palm_shift_x"], ["palm_rcx"]),
        node("Add", ["palm_cy", "palm_shift_y"], ["palm_rcy"]),
        *_side_and_turn_nodes("palm_w", "palm_h", "palm_f_scale", "palm", 1, "palm_side",
                              "palm_turn_shape"),
        node("Concat", ["palm_rcx", "palm_rcy"], ["palm_centre_flat"], axis=1),
        node("Unsqueeze", ["palm_centre_flat", "palm_c1"], ["palm_centre"]),
    ]


def _turn_nodes(dx: str, dy: str, eps: str, out: str) -> list:
    """The wrist -> knuckle vector (``dx``, ``dy``) -> ``<out>_cos``, ``<out>_sin`` and
    ``<out>_nsin`` of MediaPipe's rotation r = 90 degrees - atan2(-dy, dx), without an atan2:
    cos r = -dy / |d|, sin r = dx / |d|."""
    from onnx import helper

    node = helper.make_node
    return [
        node("Mul", [dx, dx], [f"{out}_dx2"]),
        node("Mul", [dy, dy], [f"{out}_dy2"]),
        node("Add", [f"{out}_dx2", f"{out}_dy2"], [f"{out}_d2"]),
        node("Sqrt", [f"{out}_d2"], [f"{out}_d_raw"]),
        node("Add", [f"{out}_d_raw", eps], [f"{out}_d"]),
        node("Div", [dx, f"{out}_d"], [f"{out}_sin"]),
        node("Div", [dy, f"{out}_d"], [f"{out}_dy_unit"]),
        node("Neg", [f"{out}_dy_unit"], [f"{out}_cos"]),
        node("Neg", [f"{out}_sin"], [f"{out}_nsin"]),
    ]


def _side_and_turn_nodes(width: str, height: str, scale: str, prefix: str, axis: int,
                         side: str, turn_shape: str) -> list:
    """The rect's side (its longer extent times ``scale``: ``side``) and ``palm_turn``
    [N, 2, 2], the rotation ``<prefix>_cos``/``_sin``/``_nsin`` times the side, for row
    vectors; ``axis``: the last axis of those tensors (1 when they are [N, 1], 2 when
    [N, 1, 1])."""
    from onnx import helper

    node = helper.make_node
    return [
        node("Max", [width, height], [f"{prefix}_long"]),
        node("Mul", [f"{prefix}_long", scale], [side]),
        node("Concat", [f"{prefix}_cos", f"{prefix}_sin", f"{prefix}_nsin", f"{prefix}_cos"],
             [f"{prefix}_rot_flat"], axis=axis),
        node("Mul", [f"{prefix}_rot_flat", side], [f"{prefix}_turn_flat"]),
        node("Reshape", [f"{prefix}_turn_flat", turn_shape], ["palm_turn"]),
    ]


def landmark_rect_nodes(row: str, size: int) -> tuple[list, list]:
    """A landmark row ``row`` [N, NET_ROW] (landmarks in the pixels of a crop of side
    ``size``) -> the hand rect its landmarks give, as ``_rect_nodes`` gives a palm's:
    ``palm_turn``, ``palm_centre``, ``palm_side``. MediaPipe's video-mode step
    (``palm_detection.rect_from_landmarks``, its NumPy twin): turned so the wrist is below the
    knuckles, the extent of the palm and lower finger joints in that frame, shifted towards
    the fingers, squared and scaled. (nodes, initializers)"""
    from onnx import helper

    node = helper.make_node

    inits = [
        ints("track_c0", [0]), ints("track_c1", [1]), ints("track_c2", [2]),
        ints("track_axis1", [1]), ints("track_axis2", [2]), ints("track_points_end", [POINTS_END]),
        ints("track_pts_shape", [-1, 21, 3]), ints("track_wrist", [0]),
        ints("track_knuckles", [5, 13, 9]), ints("track_points", list(pd.TRACK_POINTS)),
        ints("track_turn_shape", [-1, 2, 2]), ints("track_side_shape", [-1, 1]),
        floats("track_knuckle_weights", [1, 3, 1], [0.25, 0.25, 0.5]),
        floats("track_size", [], [float(size)]), floats("track_half", [], [0.5]),
        floats("track_eps", [], [1e-6]), floats("track_shift", [], [pd.TRACK_SHIFT_Y]),
        floats("track_scale", [], [pd.TRACK_SCALE])]

    def xy(tensor: str, out: str) -> list:
        """[N, k, 2] -> ``<out>_x``, ``<out>_y`` [N, k, 1]."""
        return [node("Slice", [tensor, "track_c0", "track_c1", "track_axis2"], [f"{out}_x"]),
                node("Slice", [tensor, "track_c1", "track_c2", "track_axis2"], [f"{out}_y"])]

    def extent(tensor: str) -> list:
        """[N, k, ...] -> ``<tensor>_low``, ``_high``, ``_mid`` [N, 1, ...] over the k."""
        return [node("ReduceMin", [tensor], [f"{tensor}_low"], axes=[1], keepdims=1),
                node("ReduceMax", [tensor], [f"{tensor}_high"], axes=[1], keepdims=1),
                node("Add", [f"{tensor}_low", f"{tensor}_high"], [f"{tensor}_sum"]),
                node("Mul", [f"{tensor}_sum", "track_half"], [f"{tensor}_mid"])]

    nodes = [
        node("Slice", [row, "track_c0", "track_points_end", "track_axis1"], ["track_flat"]),
        node("Reshape", ["track_flat", "track_pts_shape"], ["track_pts"]),
        node("Slice", ["track_pts", "track_c0", "track_c2", "track_axis2"], ["track_px"]),
        node("Div", ["track_px", "track_size"], ["track_xy"]),        # [N, 21, 2] in [0, 1]
        # the turn: wrist -> (mean of the index and ring knuckles + the middle knuckle) / 2
        node("Gather", ["track_xy", "track_wrist"], ["track_wrist_xy"], axis=1),
        node("Gather", ["track_xy", "track_knuckles"], ["track_knuckles_xy"], axis=1),
        node("Mul", ["track_knuckles_xy", "track_knuckle_weights"], ["track_knuckles_w"]),
        node("ReduceSum", ["track_knuckles_w", "track_axis1"], ["track_knuckle"], keepdims=1),
        node("Sub", ["track_knuckle", "track_wrist_xy"], ["track_v"]),
        *xy("track_v", "track_v"),
        *_turn_nodes("track_v_x", "track_v_y", "track_eps", "track"),   # [N, 1, 1] each
        # the points' extent, turned upright about their bounding box's centre
        node("Gather", ["track_xy", "track_points"], ["track_sel"], axis=1),
        *extent("track_sel"),
        node("Sub", ["track_sel", "track_sel_mid"], ["track_q"]),
        *xy("track_q", "track_q"),
        *xy("track_sel_mid", "track_centre"),
        node("Mul", ["track_q_x", "track_cos"], ["track_qxc"]),
        node("Mul", ["track_q_y", "track_sin"], ["track_qys"]),
        node("Add", ["track_qxc", "track_qys"], ["track_ux"]),
        node("Mul", ["track_q_y", "track_cos"], ["track_qyc"]),
        node("Mul", ["track_q_x", "track_sin"], ["track_qxs"]),
        node("Sub", ["track_qyc", "track_qxs"], ["track_uy"]),
        *extent("track_ux"), *extent("track_uy"),
        node("Sub", ["track_ux_high", "track_ux_low"], ["track_width"]),
        node("Sub", ["track_uy_high", "track_uy_low"], ["track_height"]),
        # the centre: the extent's middle turned back, shifted along the rect's own y axis
        node("Mul", ["track_height", "track_shift"], ["track_shift_len"]),
        node("Mul", ["track_ux_mid", "track_cos"], ["track_mxc"]),
        node("Mul", ["track_uy_mid", "track_sin"], ["track_mys"]),
        node("Mul", ["track_shift_len", "track_sin"], ["track_shift_x"]),
        node("Sub", ["track_mxc", "track_mys"], ["track_off_x_raw"]),
        node("Sub", ["track_off_x_raw", "track_shift_x"], ["track_off_x"]),
        node("Add", ["track_centre_x", "track_off_x"], ["track_cx"]),
        node("Mul", ["track_ux_mid", "track_sin"], ["track_mxs"]),
        node("Mul", ["track_uy_mid", "track_cos"], ["track_myc"]),
        node("Mul", ["track_shift_len", "track_cos"], ["track_shift_y"]),
        node("Add", ["track_mxs", "track_myc"], ["track_off_y_raw"]),
        node("Add", ["track_off_y_raw", "track_shift_y"], ["track_off_y"]),
        node("Add", ["track_centre_y", "track_off_y"], ["track_cy"]),
        *_side_and_turn_nodes("track_width", "track_height", "track_scale", "track", 2,
                              "track_side", "track_turn_shape"),          # [N, 1, 1] side
        node("Concat", ["track_cx", "track_cy"], ["palm_centre"], axis=2),
        node("Reshape", ["track_side", "track_side_shape"], ["palm_side"]),
    ]
    return nodes, inits


def index_inits() -> list:
    """Small INT64 constants ``palm_i<k>`` used to slice detections."""
    from onnx import TensorProto, helper

    return [helper.make_tensor(f"palm_i{k}", TensorProto.INT64, [1], [k])
            for k in range(4 + 2 * pd.NUM_KEYPOINTS + 1)]


def map_back_nodes(raw: str, out: str, size: int) -> list:
    """The landmark network's row on the palm view ``raw`` [N, NET_ROW] -> ``out``: landmarks in
    the crop's pixels (side ``size``), z scaled like x and y; the world landmarks through the
    same map (turned like the crop; the scale and offset it adds are removed by the
    embedder's normalisation); the scores as they are."""
    from onnx import helper

    node = helper.make_node
    return [
        node("Slice", [raw, "palm_i0", "palm_lm_end", "palm_c1"], ["palm_lm_flat"]),
        node("Slice", [raw, "palm_world_start", "palm_raw_end", "palm_c1"], ["palm_world_flat"]),
        node("Concat", ["palm_lm_flat", "palm_world_flat"], ["palm_both_flat"], axis=1),
        node("Reshape", ["palm_both_flat", "palm_lm_shape"], ["palm_lm"]),
        node("Slice", ["palm_lm", "palm_i0", "palm_i2", "palm_axis2"], ["palm_lm_xy"]),
        node("Slice", ["palm_lm", "palm_i2", "palm_i3", "palm_axis2"], ["palm_lm_z"]),
        node("Div", ["palm_lm_xy", "palm_f_lm_size"], ["palm_lm_unit"]),
        node("Sub", ["palm_lm_unit", "palm_f_half"], ["palm_lm_centred"]),
        node("MatMul", ["palm_lm_centred", "palm_turn"], ["palm_lm_turned"]),
        node("Add", ["palm_lm_turned", "palm_centre"], ["palm_lm_placed"]),
        node("Mul", ["palm_lm_placed", "palm_f_crop_size"], ["palm_lm_crop_xy"]),
        node("Unsqueeze", ["palm_side", "palm_axis2"], ["palm_side_3d"]),
        node("Mul", ["palm_lm_z", "palm_side_3d"], ["palm_lm_crop_z"]),
        node("Concat", ["palm_lm_crop_xy", "palm_lm_crop_z"], ["palm_lm_crop"], axis=2),
        node("Reshape", ["palm_lm_crop", "palm_flat_shape"], ["palm_both_crop_flat"]),
        node("Slice", ["palm_both_crop_flat", "palm_i0", "palm_lm_end", "palm_c1"],
             ["palm_lm_crop_flat"]),
        node("Slice", ["palm_both_crop_flat", "palm_lm_end", "palm_both_end", "palm_c1"],
             ["palm_world_crop_flat"]),
        node("Slice", [raw, "palm_lm_end", "palm_world_start", "palm_c1"], ["palm_scores_pair"]),
        node("Concat", ["palm_lm_crop_flat", "palm_scores_pair", "palm_world_crop_flat"], [out],
             axis=1),
    ], map_back_inits(size)


def map_back_inits(size: int) -> list:
    from onnx import TensorProto, helper

    return [
        helper.make_tensor("palm_lm_end", TensorProto.INT64, [1], [POINTS_END]),
        helper.make_tensor("palm_world_start", TensorProto.INT64, [1], [WORLD_START]),
        helper.make_tensor("palm_raw_end", TensorProto.INT64, [1], [NET_ROW]),
        helper.make_tensor("palm_both_end", TensorProto.INT64, [1], [2 * POINTS_END]),
        helper.make_tensor("palm_lm_shape", TensorProto.INT64, [3], [-1, 42, 3]),
        helper.make_tensor("palm_flat_shape", TensorProto.INT64, [2], [-1, 2 * POINTS_END]),
        helper.make_tensor("palm_f_lm_size", TensorProto.FLOAT, [], [float(pd.LANDMARK_SIZE)]),
        helper.make_tensor("palm_f_crop_size", TensorProto.FLOAT, [], [float(size)]),
    ]


def localised_nodes(x: str, size: int, palm_onnx: bytes, net_nodes: list,
                    views: tuple[list, int, list], threshold: float, output: str
                    ) -> tuple[list, list]:
    """The whole palm_detector localisation, from the NHWC crop ``x`` to ``output`` [N, NET_ROW].

    ``views`` is the fallback (front nodes ``views_crops`` -> ``views_input``, V, back nodes
    ``views_raw`` -> ``views_best``): today's views of the crop itself. The landmark network
    runs on the N palm views, then on the V*N fallback views, which are cut to none unless
    some crop of the batch has no palm or no hand confirmed in its palm view (presence <
    ``threshold``); their outputs are padded back to V*N with zeros. So the fallback costs
    nothing when every palm is found, the graph has no control flow (both copies of the
    network share its weights), and each crop's result depends on that crop alone: its palm
    view where confirmed, else whichever of its palm view (if a palm was found) and its best
    view has the higher presence.
    (nodes, initializers)"""
    from onnx import TensorProto, helper

    node = helper.make_node
    front, inits = detector_nodes(x, size, palm_onnx)
    back, back_inits = map_back_nodes("palm_view_raw", "palm_raw", size)
    view_front, kinds, view_back = views
    fallback, fallback_inits = _fallback_nodes(x, net_nodes, view_front, kinds, view_back)
    inits += index_inits() + back_inits + fallback_inits + [
        helper.make_tensor("palm_threshold", TensorProto.FLOAT, [], [threshold]),
        helper.make_tensor("palm_i_presence_end", TensorProto.INT64, [1], [PRESENCE + 1])]
    return [
        *front,
        *net_copy(net_nodes, VIEW, "palm_net/", "palm_view_raw"),
        *back,
        node("Slice", ["palm_raw", "palm_lm_end", "palm_i_presence_end", "palm_c1"],
             ["palm_presence"]),
        node("GreaterOrEqual", ["palm_presence", "palm_threshold"], ["palm_confirmed"]),
        node("And", [FOUND, "palm_confirmed"], ["palm_ok"]),
        *fallback,
        # per crop: the palm view where confirmed, else the surer of it and the best view
        node("Cast", [FOUND], ["palm_found_f"], to=TensorProto.FLOAT),
        node("Mul", ["palm_presence", "palm_found_f"], ["palm_presence_if_found"]),
        node("Slice", ["views_best", "palm_lm_end", "palm_i_presence_end", "palm_c1"],
             ["views_presence_best"]),
        node("Greater", ["views_presence_best", "palm_presence_if_found"], ["views_surer"]),
        node("Not", ["palm_ok"], ["palm_not_ok"]),
        node("And", ["palm_not_ok", "views_surer"], ["views_taken_mask"]),
        node("Where", ["views_taken_mask", "views_best", "palm_raw"], [output]),
    ], inits


# upright_first: the crop as it is is taken when the landmark network is this sure of a hand
# there (presence), the hand fills this much of the crop (its landmarks' larger extent over
# the side) and stands upright (wrist to middle knuckle within 30 degrees of straight up). On
# the sample's kpi hands at 1.0x-1.3x cuts, 71-72 % of crops pass; their landmarks differ
# from the palm view's by 0.6-0.7 % of the hand's size and Google's canned gesture agrees on
# 98 %; at 2.0x 19 % pass, at 3.0x none.
UPRIGHT_PRESENCE, UPRIGHT_EXTENT, UPRIGHT_COS = 0.95, 0.5, 0.87
PALM_CROPS = "cascade_palm_crops"  # a cascade's crops for the palm path: all or none
UPRIGHT_OK = "up_ok"              # [N, 1] bool: the crop's upright view was taken


def upright_first_nodes(x: str, size: int, net_nodes: list, palm_rows: str, output: str
                        ) -> tuple[list, list, list]:
    """``localization: upright_first``: the landmark network on the NHWC crop ``x`` as it is;
    the palm detector's path (``localised_nodes`` on ``PALM_CROPS``, giving ``palm_rows``)
    runs on the whole batch when some crop's upright view is not good enough (the UPRIGHT_
    checks), else on no crop at all, its rows padded back with zeros: no control flow, as in
    the views' fallback. Per crop: the upright view where it passed, else the palm path's
    rows; each crop's result depends on that crop alone. (nodes before the palm path, nodes
    after it, initializers)"""
    from onnx import TensorProto, helper

    node = helper.make_node
    palm = BatchGate("up_palm_gate")

    def const(name: str, value: int):
        return ints(name, [value])

    inits = [
        const("up_c0", 0), const("up_c1", 1), const("up_c2", 2), const("up_c9", 9),
        const("up_c10", 10), const("up_lm_end", POINTS_END),
        const("up_presence_end", PRESENCE + 1),
        helper.make_tensor("up_pts_shape", TensorProto.INT64, [3], [-1, 21, 3]),
        helper.make_tensor("up_pair_shape", TensorProto.INT64, [2], [-1, 2]),
        helper.make_tensor("up_presence_min", TensorProto.FLOAT, [], [UPRIGHT_PRESENCE]),
        helper.make_tensor("up_extent_min", TensorProto.FLOAT, [], [UPRIGHT_EXTENT * size]),
        helper.make_tensor("up_cos_min", TensorProto.FLOAT, [], [UPRIGHT_COS]),
    ]
    before = [
        *net_copy(net_nodes, x, "first_view_net/", "first_view_raw"),
        node("Slice", ["first_view_raw", "up_lm_end", "up_presence_end", "up_c1"],
             ["up_presence"]),
        node("GreaterOrEqual", ["up_presence", "up_presence_min"], ["up_sure"]),
        node("Slice", ["first_view_raw", "up_c0", "up_lm_end", "up_c1"], ["up_pts_flat"]),
        node("Reshape", ["up_pts_flat", "up_pts_shape"], ["up_pts"]),
        node("Slice", ["up_pts", "up_c0", "up_c2", "up_c2"], ["up_xy"]),
        node("ReduceMax", ["up_xy"], ["up_high"], axes=[1], keepdims=0),
        node("ReduceMin", ["up_xy"], ["up_low"], axes=[1], keepdims=0),
        node("Sub", ["up_high", "up_low"], ["up_extents"]),
        node("ReduceMax", ["up_extents"], ["up_extent"], axes=[1], keepdims=1),
        node("GreaterOrEqual", ["up_extent", "up_extent_min"], ["up_big"]),
        node("Slice", ["up_xy", "up_c9", "up_c10", "up_c1"], ["up_knuckle"]),
        node("Slice", ["up_xy", "up_c0", "up_c1", "up_c1"], ["up_wrist"]),
        node("Sub", ["up_knuckle", "up_wrist"], ["up_v3"]),
        node("Reshape", ["up_v3", "up_pair_shape"], ["up_v"]),
        node("Slice", ["up_v", "up_c0", "up_c1", "up_c1"], ["up_vx"]),
        node("Slice", ["up_v", "up_c1", "up_c2", "up_c1"], ["up_vy"]),
        node("Mul", ["up_vx", "up_vx"], ["up_vx2"]),
        node("Mul", ["up_vy", "up_vy"], ["up_vy2"]),
        node("Add", ["up_vx2", "up_vy2"], ["up_v2"]),
        node("Sqrt", ["up_v2"], ["up_vlen"]),
        node("Mul", ["up_vlen", "up_cos_min"], ["up_needed_rise"]),
        node("Neg", ["up_vy"], ["up_rise"]),
        node("GreaterOrEqual", ["up_rise", "up_needed_rise"], ["up_upright"]),
        node("And", ["up_sure", "up_big"], ["up_sure_big"]),
        node("And", ["up_sure_big", "up_upright"], [UPRIGHT_OK]),
        # the palm path's crops: the whole batch if some crop failed, else none
        *palm.nodes(x, UPRIGHT_OK),
        *palm.first_rows(x, PALM_CROPS),
    ]
    after = [
        *palm.padded(palm_rows, "up_palm_rows", NET_ROW),
        node("Where", [UPRIGHT_OK, "first_view_raw", "up_palm_rows"], [output], name=output),
    ]
    return before, after, inits + palm.inits()


# landmarks_first: MediaPipe's own lite landmark network (hand_landmark_lite, the same wheel)
# only places the hand; the full network reads it in the box those landmarks give. On 150
# gesture hands of the sample cut 7 ways, the full network's landmarks read that way differ
# from the palm path's by a median 0.7-1.5 % of the hand's size at 1.0x-2.0x cuts (as when
# the full network places the hand itself). The lite network's box is followed only where it
# is this sure of a hand: in 3x crops, where the hand is small, it also "finds" hands at
# 0.5-0.8 that are not the one the palm path finds (15 of 49); at 0.9 none of those is left,
# and 70-98 % of the hands in 1.0x-2.0x crops still are (22 % at 3.0x: the palm path takes
# the rest). The lite network costs about half of the full one.
LITE_PRESENCE = 0.9
LITE_NET = "lite_net/"             # the lite network's own names (weights included)
REREAD = "reread/"                 # the re-read's own tensor names
REREAD_OK = "reread_ok"            # [N, 1] bool: the crop's hand was read in the lite box


def landmarks_first_nodes(x: str, size: int, lite_onnx: bytes, net_nodes: list,
                          palm_rows: str, output: str, threshold: float
                          ) -> tuple[list, list, list]:
    """``localization: landmarks_first``, MediaPipe's video-mode step used within one crop:

    1. the lite landmark network on the NHWC crop ``x`` as it is;
    2. where it is sure of a hand (presence >= LITE_PRESENCE), the full network
       (``net_nodes``) reads the hand in the box those landmarks give
       (``landmark_rect_nodes``), warped upright; taken where the full network finds the hand
       too (presence >= ``threshold``);
    3. else the palm detector's path (``localised_nodes`` on ``PALM_CROPS``, giving
       ``palm_rows``).

    Steps 2 and 3 run on the whole batch when some crop needs them, else on no crop at all,
    their rows padded back with zeros: no control flow, as in the views' fallback, and each
    crop's result depends on that crop alone. (nodes before the palm path, nodes after it,
    initializers)"""
    from onnx import TensorProto, helper

    node = helper.make_node
    lite, lite_inits = _lite_nodes(x, lite_onnx, "lite_raw")
    rect_nodes, rect_inits = landmark_rect_nodes("reread_rows_in", size)
    back_nodes, _ = map_back_nodes("palm_view_raw", "palm_raw", size)  # the palm path's inits
    reread = prefixed([*rect_nodes, *warp_nodes("reread_crops_in"),
                       *net_copy(net_nodes, VIEW, "palm_net/", "palm_view_raw"), *back_nodes],
                      REREAD)
    inits = lite_inits + rect_inits + [
        helper.make_tensor("lf_c1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("lf_lm_end", TensorProto.INT64, [1], [POINTS_END]),
        helper.make_tensor("lf_presence_end", TensorProto.INT64, [1], [PRESENCE + 1]),
        helper.make_tensor("lf_threshold", TensorProto.FLOAT, [], [threshold]),
        helper.make_tensor("lf_lite_threshold", TensorProto.FLOAT, [], [LITE_PRESENCE])]
    reread_gate, palm = BatchGate("reread_gate"), BatchGate("lf_palm_gate")

    def found(rows: str, name: str, bar: str) -> list:
        return [node("Slice", [rows, "lf_lm_end", "lf_presence_end", "lf_c1"],
                     [f"{name}_presence"]),
                node("GreaterOrEqual", [f"{name}_presence", bar], [f"{name}_found"])]

    before = [
        *lite,
        *found("lite_raw", "lite", "lf_lite_threshold"),
        # 2. the re-read: the whole batch if the lite network is sure of a hand in some crop
        node("Not", ["lite_found"], ["lite_lost"]),
        *reread_gate.nodes(x, "lite_lost"),
        *reread_gate.first_rows(x, "reread_crops_in"),
        *reread_gate.first_rows("lite_raw", "reread_rows_in"),
        *reread,
        *reread_gate.padded(REREAD + "palm_raw", "reread_rows", NET_ROW),
        *found("reread_rows", "reread", "lf_threshold"),
        node("And", ["lite_found", "reread_found"], [REREAD_OK]),
        # 3. the palm path: the whole batch if some crop's hand was not read that way
        *palm.nodes(x, REREAD_OK),
        *palm.first_rows(x, PALM_CROPS),
    ]
    after = [
        *palm.padded(palm_rows, "lf_palm_rows", NET_ROW),
        node("Where", [REREAD_OK, "reread_rows", "lf_palm_rows"], [output], name=output),
    ]
    return before, after, inits + reread_gate.inits() + palm.inits()


def _lite_nodes(x: str, lite_onnx: bytes, output: str) -> tuple[list, list]:
    """The lite landmark network reading the NHWC crop ``x``, every name of it (weights
    too) prefixed LITE_NET, its outputs joined into ``output`` [N, NET_ROW] like
    ``net_copy``'s. (nodes, initializers)"""
    import onnx
    from onnx import compose, helper

    from gesturenet_lib.families.hand_landmarks.assets import NET_INPUT

    net = compose.add_prefix(onnx.load_from_string(lite_onnx), LITE_NET)
    return [helper.make_node("Identity", [x], [LITE_NET + NET_INPUT], name=LITE_NET + "input"),
            *net.graph.node, _joined_outputs(LITE_NET, output)], list(net.graph.initializer)


def _fallback_nodes(x: str, net_nodes: list, view_front: list, kinds: int,
                    view_back: list) -> tuple[list, list]:
    """``palm_ok`` -> ``views_best``: the ``kinds`` fallback views of each crop, made from no
    crop at all unless some crop of the batch needs them (an empty batch costs nothing
    downstream), their outputs padded back to kinds*N rows with zeros. (nodes, inits)"""
    views = BatchGate("views_gate")
    nodes = [
        *views.nodes(x, "palm_ok"),
        *views.first_rows(x, VIEWS_CROPS),
        *view_front,
        *net_copy(net_nodes, "views_input", "views_net/", "views_ran"),
        *views.padded("views_ran", "views_raw", NET_ROW, per_crop=kinds),
        *view_back,
    ]
    return nodes, views.inits()


def net_copy(net_nodes: list, input_name: str, prefix: str, output: str) -> list:
    """The landmark network's nodes reading ``input_name``, every tensor they make renamed
    ``<prefix><name>`` (the weights are shared), then its three outputs joined into
    ``output`` [N, NET_ROW] (landmarks, presence, handedness, world landmarks)."""
    from gesturenet_lib.families.hand_landmarks.assets import NET_INPUT

    copies = []
    for original in net_nodes:
        copy = type(original)()
        copy.CopyFrom(original)
        for k, name in enumerate(copy.input):
            if name == NET_INPUT:
                copy.input[k] = input_name
        copies.append(copy)
    return prefixed(copies, prefix) + [_joined_outputs(prefix, output)]


def _joined_outputs(prefix: str, output: str):
    """The node joining a landmark network's outputs, named ``<prefix><output name>``, into
    ``output`` [N, NET_ROW]: landmarks, presence, handedness, world landmarks."""
    from onnx import helper

    from gesturenet_lib.families.hand_landmarks.assets import (
        NET_HANDEDNESS,
        NET_LANDMARKS,
        NET_PRESENCE,
        NET_WORLD,
    )

    outputs = [prefix + name for name in (NET_LANDMARKS, NET_PRESENCE, NET_HANDEDNESS,
                                          NET_WORLD)]
    return helper.make_node("Concat", outputs, [output], axis=1, name=output)


def prefixed(nodes: list, prefix: str) -> list:
    """``nodes`` with every tensor they produce (and their own uses of it) renamed
    ``<prefix><name>``; what comes from outside (inputs, weights) keeps its name."""
    made = {name for n in nodes for name in n.output if name}
    out = []
    for original in nodes:
        copy = type(original)()
        copy.CopyFrom(original)
        copy.name = prefix + (copy.name or copy.output[0])
        for field in (copy.input, copy.output):
            for k, name in enumerate(field):
                if name in made:
                    field[k] = prefix + name
        out.append(copy)
    return out


def reachable(nodes: list, output: str | list[str], given: frozenset[str] = frozenset()
              ) -> list:
    """The nodes ``output`` (one name or several) depends on, in their original order; the
    tensors named in ``given`` count as supplied (their producers are not needed)."""
    producer = {name: i for i, node in enumerate(nodes) for name in node.output}
    needed, stack = set(), [output] if isinstance(output, str) else list(output)
    while stack:
        name = stack.pop()
        i = producer.get(name)
        if i is None or i in needed or name in given:
            continue
        needed.add(i)
        stack.extend(used_names([nodes[i]]))
    return [node for i, node in enumerate(nodes) if i in needed]


def used_names(nodes) -> set[str]:
    """Every tensor name the nodes read, subgraphs included."""
    used = set()
    for n in nodes:
        used.update(n.input)
        for attribute in n.attribute:
            if attribute.HasField("g"):
                used |= used_names(attribute.g.node)
    return used
