"""The hand_landmarks family: a pretrained hand-landmark network (frozen) + a trained head.

    crop (input_1, the ResNet family's convention: N,C,H,W or N,H,W,C at 224x224, RGB in [0,1])
      -> border of ``padding`` x side on each side, resized back to 224     } the *extractor*,
      -> MediaPipe's hand-landmark network                                  } one ONNX graph run
      -> 21 landmarks, presence, handedness, 21 world landmarks             } by ONNX Runtime
      -> MediaPipe's gesture embedder on them (normalised as MediaPipe's
         gesture graph does): a 128-d hand embedding; Google's canned
         gesture classifier on it: 8 scores
      -> raw vector [N, 264]: the network's row [128], embedding, scores    }
      -> features: the embedding, the canned scores, LandmarkFeatures (wrist-
         relative landmarks, scaled by hand size, one handedness mirrored,
         fingertip distances; orientation kept: stop vs stop_inverted)      } the *head*, a
      -> MLP -> softmax                                                     } Keras model that
      -> NoHandFallback: presence < threshold -> "random" (or uniform)      } trains
      -> predictions

Training runs the extractor once per crop and trains the head on its output (the network is
frozen, so this is the same function as running it inside the model). A `.tlt` of this family
holds the head as a Keras model and the extractor's ONNX bytes. Export converts the head with
tf2onnx and joins both into ONE graph with outputs ``predictions`` and ``hand_found``.

This module needs no TensorFlow (ONNX and ONNX Runtime only); the head is in ``landmark_head``.
"""

from __future__ import annotations

import numpy as np

from gesturenet_lib.export.onnx_export import HAND_FOUND
from gesturenet_lib.families.hand_landmarks.batch_gate import BatchGate
from gesturenet_lib.families.hand_landmarks.layout import (
    NET_ROW,
    POINTS_END,
    PRESENCE,
    RAW_SIZE,
    WORLD_START,
)
from gesturenet_lib.families.hand_landmarks.onnx_constants import floats, ints
from gesturenet_lib.specs.experiment import LANDMARK_INPUT_SIZE, HandLandmarks

EXTRACTOR_OUTPUT = "landmark_features"
ROWS = "landmark_rows"   # the network's rows [N, NET_ROW] for the crops, before the embedder

# ------------------------------------------------------------------- the extractor (ONNX graph)

def build_extractor(network_onnx: bytes, settings: HandLandmarks, data_format: str,
                    palm_onnx: bytes | None = None, *, embedder_onnx: bytes,
                    canned_onnx: bytes, lite_onnx: bytes | None = None) -> bytes:
    """``input_1`` (crop at 224x224, RGB in [0,1], declared layout, dynamic batch) -> border ->
    the hand found (``settings.localization``) -> the landmark network -> the gesture
    embedder -> Google's canned classifier -> ``landmark_features`` [N, RAW_SIZE]: landmarks
    in the bordered crop's pixels, presence, handedness, world landmarks, embedding, canned
    scores. ``palm_onnx``: the palm detector, needed by every localization but ``views`` and
    ``none`` (``localization_networks``); ``lite_onnx``: the lite landmark network, needed by
    ``landmarks_first``; ``embedder_onnx``,
    ``canned_onnx``: MediaPipe's gesture embedder and Google's canned gesture classifier."""
    import onnx
    from onnx import TensorProto, helper

    from gesturenet_lib.families.hand_landmarks import palm_graph

    model = onnx.load_from_string(network_onnx)
    graph = model.graph
    size = LANDMARK_INPUT_SIZE
    net_nodes = list(graph.node)
    nodes, inits = [], []
    x = "input_1"
    if data_format == "channels_first":
        nodes.append(helper.make_node("Transpose", [x], ["crop_nhwc"], perm=[0, 2, 3, 1],
                                      name="to_nhwc"))
        x = "crop_nhwc"
    lifting, lifting_inits, x = lift_nodes(x)
    nodes += lifting
    inits += lifting_inits
    border_nodes, border_inits, x = _border_nodes(x, settings.padding,
                                                  settings.padding_mode, size)
    nodes += border_nodes
    inits += border_inits
    palm_needed, lite_needed = localization_networks(settings.localization)
    if palm_needed and (palm_onnx is None or (lite_needed and lite_onnx is None)):
        raise ValueError(f"localization {settings.localization} needs the palm detector's "
                         "ONNX" + (" and the lite landmark network's" if lite_needed else ""))

    def localization(crop: str, rows: str) -> tuple[list, list]:
        return _localization_nodes(crop, settings, size, net_nodes, palm_onnx, lite_onnx, rows)

    if settings.second_look_border and settings.localization != "none":
        found, found_inits = _second_look_nodes(x, size, settings, localization, ROWS)
    else:
        found, found_inits = localization(x, ROWS)
    nodes += found
    inits += found_inits
    if palm_needed:
        for opset in model.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = max(opset.version, palm_graph.OPSET)
        model.ir_version = max(model.ir_version, palm_graph.IR_VERSION)
    from gesturenet_lib.families.hand_landmarks.embedding_graph import embedding_nodes

    embedding, embedding_inits = embedding_nodes(ROWS, size, embedder_onnx, canned_onnx,
                                                 EXTRACTOR_OUTPUT)
    nodes += embedding
    inits += embedding_inits
    del graph.node[:]
    graph.node.extend(palm_graph.reachable(nodes, EXTRACTOR_OUTPUT))
    graph.initializer.extend(inits)
    used = palm_graph.used_names(graph.node)
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    shape = ["N", 3, size, size] if data_format == "channels_first" else ["N", size, size, 3]
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info("input_1", TensorProto.FLOAT, shape))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(EXTRACTOR_OUTPUT, TensorProto.FLOAT,
                                                      ["N", RAW_SIZE]))
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _localization_nodes(x: str, settings: HandLandmarks, size: int, net_nodes: list,
                        palm_onnx: bytes | None, lite_onnx: bytes | None, output: str
                        ) -> tuple[list, list]:
    """The NHWC crop ``x`` -> the landmark network's row for the hand found in it, as
    ``settings.localization`` finds it: ``output`` [N, NET_ROW]. (nodes, initializers)"""
    from gesturenet_lib.families.hand_landmarks import palm_graph

    rotations = settings.try_rotations and settings.localization != "none"
    palm_needed, _ = localization_networks(settings.localization)
    if not palm_needed:
        return _views_alone(x, size, net_nodes, rotations, output)
    nodes, inits = [], []
    front, kinds, back, view_inits = _views(palm_graph.VIEWS_CROPS, size, rotations,
                                            "views_best")
    palm_input, palm_output, after = x, output, []
    if settings.localization in ("upright_first", "landmarks_first"):
        if settings.localization == "upright_first":
            before, after, first_inits = palm_graph.upright_first_nodes(
                x, size, net_nodes, "palm_rows", output)
        else:
            before, after, first_inits = palm_graph.landmarks_first_nodes(
                x, size, lite_onnx, net_nodes, "palm_rows", output,
                settings.presence_threshold)
        nodes += before
        inits += first_inits
        palm_input, palm_output = palm_graph.PALM_CROPS, "palm_rows"
    found, found_inits = palm_graph.localised_nodes(
        palm_input, size, palm_onnx, net_nodes, (front, kinds, back),
        settings.presence_threshold, palm_output)
    return nodes + found + after, inits + view_inits + found_inits


def _second_look_nodes(x: str, size: int, settings: HandLandmarks, localization,
                       output: str) -> tuple[list, list]:
    """The hand found in the NHWC crop ``x`` by ``localization`` (crop name, rows name ->
    (nodes, initializers)), and where the landmark network is not sure of it, found again in
    the crop on a border of ``second_look_border`` of its side on each side (filled as
    ``second_look_border_mode`` says: the edge pixels repeated, or black): the surer
    of the two rows, the second's landmarks mapped back into the crop's frame. A hand that
    fills its crop (a tight box, as a detector or a labelling tool cuts it) is out of the
    networks' habit, which is a hand with room around it. "Not sure": presence under
    ``second_look_below``, or under ``second_look_below_at_edge`` for a hand that fills its
    crop (a landmark within ``second_look_edge`` of the side from the crop's edge): a small
    hand in a loose crop gains little from more room and is not worth a second pass at the
    higher bar. The second look is the then-branch of an ``If``: it runs on the whole batch
    when some crop needs it and costs nothing otherwise (a copy of the steps run on an empty
    batch still pays every node's launch: about 1 ms a crop on the CPU). ``output``
    [N, NET_ROW]; (nodes, initializers)."""
    from onnx import TensorProto, helper

    from gesturenet_lib.families.hand_landmarks.palm_graph import prefixed, reachable

    node = helper.make_node
    first, first_inits = localization(x, "first_look_rows")
    gate = BatchGate("second_look_gate")
    border = settings.second_look_border
    bordered, border_inits, x_bordered = _border_nodes(
        x, border, settings.second_look_border_mode, size, "second_look_border")
    second, second_inits = localization(x_bordered, "second_look_raw")
    pixels = int(round(border * size))
    scale = (size + 2 * pixels) / size   # the bordered crop was resized back to ``size``
    mul = [scale] * POINTS_END + [1.0] * (NET_ROW - POINTS_END)
    sub = [float(pixels), float(pixels), 0.0] * (POINTS_END // 3) + [0.0] * (
        NET_ROW - POINTS_END)
    inits = [floats("second_look_mul", [NET_ROW], mul),
             floats("second_look_sub", [NET_ROW], sub),
             ints("second_look_presence_at", [PRESENCE]),
             ints("second_look_presence_end", [PRESENCE + 1]),
             ints("second_look_axis", [1])]

    def presence(rows: str) -> list:
        return [node("Slice", [rows, "second_look_presence_at", "second_look_presence_end",
                               "second_look_axis"], [f"{rows}_presence"])]

    looked = [*bordered, *prefixed(second, "second_look/"),
              node("Mul", ["second_look/second_look_raw", "second_look_mul"],
                   ["second_look_scaled"]),
              node("Sub", ["second_look_scaled", "second_look_sub"], ["second_look_mapped"])]
    then_branch = helper.make_graph(
        reachable(looked, "second_look_mapped"), "second_look", [],
        [helper.make_tensor_value_info("second_look_mapped", TensorProto.FLOAT, None)])
    else_branch = helper.make_graph(
        [node("Identity", ["first_look_rows"], ["second_look_skipped"])], "no_second_look", [],
        [helper.make_tensor_value_info("second_look_skipped", TensorProto.FLOAT, None)])
    bar, bar_inits = _second_look_bar_nodes("first_look_rows", size, settings,
                                            "first_look_bar")
    nodes = [
        *first,
        *presence("first_look_rows"),
        *bar,
        node("Less", ["first_look_rows_presence", "first_look_bar"], ["first_look_unsure"]),
        node("Not", ["first_look_unsure"], ["first_look_sure"]),
        *gate.needed_nodes("first_look_sure"),
        node("If", [gate.needed], ["second_look_rows"], name="second_look",
             then_branch=then_branch, else_branch=else_branch),
        *presence("second_look_rows"),
        node("Greater", ["second_look_rows_presence", "first_look_rows_presence"],
             ["second_look_surer"]),
        node("And", ["first_look_unsure", "second_look_surer"], ["second_look_taken"]),
        node("Where", ["second_look_taken", "second_look_rows", "first_look_rows"], [output],
             name=output)]
    # the second look's own copy shares the first's weights and constants (same names)
    shared = {t.name: t for t in [*first_inits, *second_inits]}
    return nodes, [*shared.values(), *border_inits, *inits, *bar_inits, *gate.inits()]


def _second_look_bar_nodes(rows: str, size: int, settings: HandLandmarks, out: str
                           ) -> tuple[list, list]:
    """``out`` [N, 1]: the presence under which each crop gets the second look, from the
    first look's ``rows``: ``second_look_below_at_edge`` where a landmark lies within
    ``second_look_edge`` of the side from the crop's edge (or outside it), else
    ``second_look_below``. (nodes, initializers)"""
    from onnx import helper

    node, n = helper.make_node, "second_look_edge"
    inits = [floats(f"{n}_bar", [], [settings.second_look_below]),
             floats(f"{n}_bar_at_edge", [], [settings.second_look_below_at_edge]),
             floats(f"{n}_side", [], [float(size)]),
             floats(f"{n}_margin", [], [settings.second_look_edge * size]),
             ints(f"{n}_i0", [0]), ints(f"{n}_i1", [1]), ints(f"{n}_i2", [2]),
             ints(f"{n}_points_end", [POINTS_END]),
             ints(f"{n}_points_shape", [-1, POINTS_END // 3, 3])]
    nodes = [
        node("Slice", [rows, f"{n}_i0", f"{n}_points_end", f"{n}_i1"], [f"{n}_flat"]),
        node("Reshape", [f"{n}_flat", f"{n}_points_shape"], [f"{n}_points"]),
        node("Slice", [f"{n}_points", f"{n}_i0", f"{n}_i2", f"{n}_i2"], [f"{n}_xy"]),
        node("ReduceMin", [f"{n}_xy"], [f"{n}_low"], axes=[1, 2], keepdims=0),
        node("ReduceMax", [f"{n}_xy"], [f"{n}_high"], axes=[1, 2], keepdims=0),
        node("Sub", [f"{n}_side", f"{n}_high"], [f"{n}_room_high"]),
        # the room between the hand and the crop's nearest edge (negative: past it)
        node("Min", [f"{n}_low", f"{n}_room_high"], [f"{n}_room_flat"]),
        node("Unsqueeze", [f"{n}_room_flat", f"{n}_i1"], [f"{n}_room"]),
        node("Less", [f"{n}_room", f"{n}_margin"], [f"{n}_fills"]),
        node("Where", [f"{n}_fills", f"{n}_bar_at_edge", f"{n}_bar"], [out], name=out)]
    return nodes, inits


def localization_networks(localization: str) -> tuple[bool, bool]:
    """(the palm detector, the lite landmark network): which of them a localization's graph
    holds besides the full landmark network."""
    return (localization in ("palm_detector", "upright_first", "landmarks_first"),
            localization == "landmarks_first")


def _views(x: str, size: int, rotations: bool, out: str) -> tuple[list, int, list, list]:
    """The views of the NHWC crop ``x``: the crop as it is, or with ``rotations`` it and its
    two quarter turns. (front nodes: ``x`` -> ``views_input`` [V*N, ...], V, back nodes:
    ``views_raw`` [V*N, 128], the network's output on them -> ``out``, the surest view per crop
    with its landmarks back in the crop's frame, initializers)"""
    from onnx import helper

    if rotations:
        front, back, inits = _rotation_views(x, size, out)
        return front, 3, back, inits
    return ([helper.make_node("Identity", [x], ["views_input"], name="views_input")], 1,
            [helper.make_node("Identity", ["views_raw"], [out], name=out)], [])


def _views_alone(x: str, size: int, net_nodes: list, rotations: bool, output: str
                 ) -> tuple[list, list]:
    """The views with the network between them, ``x`` -> ``output``."""
    from gesturenet_lib.families.hand_landmarks.palm_graph import net_copy

    front, _, back, inits = _views(x, size, rotations, output)
    return front + net_copy(net_nodes, "views_input", "", "views_raw") + back, inits


def lift_nodes(x: str) -> tuple[list, list, str]:
    """Nodes that lift a dark NHWC crop ``x`` as the hand finder lifts a dark photo
    (``hand_finder.lifted``: a mean of the values that are not black under DARK_MEAN, so a
    letterbox's border does not count; a gamma curve to a mean of LIFTED_MEAN; each crop of
    the batch by its own mean): (nodes, initializers, the lifted tensor's name)."""
    from onnx import TensorProto, helper

    from gesturenet_lib.families.hand_landmarks.hand_finder import DARK_MEAN, LIFTED_MEAN

    def scalar(name: str, value: float):
        return floats(name, [], [value])

    inits = [scalar("lift_dark", DARK_MEAN / 255), scalar("lift_floor", 1 / 255),
             scalar("lift_log_target", float(np.log(LIFTED_MEAN))), scalar("lift_one", 1.0),
             scalar("lift_zero", 0.0), scalar("lift_tiny", 1e-6)]
    curve = BatchGate("lift_gate")
    node = helper.make_node
    nodes = [
        # the mean of the values that are not black: mean(x) / mean(x > 0)
        node("ReduceMean", [x], ["lift_mean_all"], axes=[1, 2, 3], keepdims=1,
             name="lift_mean_all"),
        node("Greater", [x, "lift_zero"], ["lift_lit"], name="lift_lit"),
        node("Cast", ["lift_lit"], ["lift_lit_f"], to=TensorProto.FLOAT, name="lift_lit_f"),
        node("ReduceMean", ["lift_lit_f"], ["lift_lit_share"], axes=[1, 2, 3], keepdims=1,
             name="lift_lit_share"),
        node("Max", ["lift_lit_share", "lift_tiny"], ["lift_lit_share_floored"],
             name="lift_share_floor"),
        node("Div", ["lift_mean_all", "lift_lit_share_floored"], ["lift_mean"],
             name="lift_mean"),
        node("Max", ["lift_mean", "lift_floor"], ["lift_mean_floored"], name="lift_floor"),
        node("Log", ["lift_mean_floored"], ["lift_log_mean"], name="lift_log_mean"),
        node("Div", ["lift_log_target", "lift_log_mean"], ["lift_gamma"], name="lift_gamma"),
        node("Less", ["lift_mean", "lift_dark"], ["lift_is_dark"], name="lift_is_dark"),
        node("Where", ["lift_is_dark", "lift_gamma", "lift_one"], ["lift_power"],
             name="lift_power"),
        # the curve runs on the whole batch when some crop of it is dark, else on no crop
        # (Pow costs about 1 ms a crop at 224x224 even where its power is 1)
        node("Not", ["lift_is_dark"], ["lift_is_lit"], name="lift_is_lit"),
        *curve.nodes(x, "lift_is_lit"),
        *curve.first_rows(x, "lift_curved_in"),
        *curve.first_rows("lift_power", "lift_curved_power"),
        node("Pow", ["lift_curved_in", "lift_curved_power"], ["lift_curved"], name="lift"),
        *curve.other_rows(x, "lift_kept"),
        node("Concat", ["lift_curved", "lift_kept"], ["crop_lifted"], axis=0,
             name="lift_joined")]
    return nodes, inits + curve.inits(), "crop_lifted"


def _border_nodes(x: str, fraction: float, mode: str, size: int, name: str = "border"
                  ) -> tuple[list, list, str]:
    """Nodes that pad the NHWC crop ``x`` by ``fraction`` of its side on each side (``mode``:
    ONNX Pad's "edge" or "constant", black) and resize it back to ``size``: (nodes,
    initializers, the bordered tensor's name); every name begins with ``name``."""
    from onnx import TensorProto, helper

    border = int(round(fraction * size))
    if not border:
        return [], [], x
    n = name
    inits = [helper.make_tensor(f"{n}_pads", TensorProto.INT64, [8],
                                [0, border, border, 0, 0, border, border, 0]),
             helper.make_tensor(f"{n}_roi", TensorProto.FLOAT, [0], []),
             helper.make_tensor(f"{n}_scales", TensorProto.FLOAT, [0], []),
             helper.make_tensor(f"{n}_hwc", TensorProto.INT64, [3], [size, size, 3]),
             helper.make_tensor(f"{n}_batch_start", TensorProto.INT64, [1], [0]),
             helper.make_tensor(f"{n}_batch_end", TensorProto.INT64, [1], [1])]
    nodes = [
        helper.make_node("Pad", [x, f"{n}_pads"], [f"{n}_padded"], mode=mode, name=n),
        helper.make_node("Shape", [f"{n}_padded"], [f"{n}_padded_shape"],
                         name=f"{n}_padded_shape"),
        helper.make_node("Slice", [f"{n}_padded_shape", f"{n}_batch_start", f"{n}_batch_end"],
                         [f"{n}_batch"], name=f"{n}_batch_dim"),
        helper.make_node("Concat", [f"{n}_batch", f"{n}_hwc"], [f"{n}_sizes"], axis=0,
                         name=f"{n}_sizes"),
        helper.make_node("Resize", [f"{n}_padded", f"{n}_roi", f"{n}_scales", f"{n}_sizes"],
                         [f"{n}_out"], mode="linear", name=f"{n}_resize")]
    return nodes, inits, f"{n}_out"


def _map_back_nodes(kind: str) -> list:
    """A turned view's row -> its 21 landmarks and 21 world landmarks in the crop's own frame
    (the world landmarks turn with the crop; their offset is removed by the embedder's
    normalisation), its scores as they are: ``<kind>_raw`` -> ``<kind>_mapped``."""
    from onnx import helper

    node = helper.make_node
    return [
        node("Slice", [f"{kind}_raw", "points_start", "points_end", "axis_h"],
             [f"{kind}_flat"], name=f"{kind}_points"),
        node("Slice", [f"{kind}_raw", "world_start", "raw_end", "axis_h"],
             [f"{kind}_world_flat"], name=f"{kind}_world"),
        node("Concat", [f"{kind}_flat", f"{kind}_world_flat"], [f"{kind}_both_flat"], axis=1,
             name=f"{kind}_both"),
        node("Reshape", [f"{kind}_both_flat", "points_shape"], [f"{kind}_points"],
             name=f"{kind}_points_3d"),
        node("MatMul", [f"{kind}_points", f"{kind}_matrix"], [f"{kind}_turned"],
             name=f"{kind}_turn"),
        node("Add", [f"{kind}_turned", f"{kind}_offset"], [f"{kind}_placed"],
             name=f"{kind}_place"),
        node("Reshape", [f"{kind}_placed", "flat_shape"], [f"{kind}_mapped_both"],
             name=f"{kind}_flat_again"),
        node("Slice", [f"{kind}_mapped_both", "points_start", "points_end", "axis_h"],
             [f"{kind}_mapped_points"], name=f"{kind}_mapped_points"),
        node("Slice", [f"{kind}_mapped_both", "points_end", "both_end", "axis_h"],
             [f"{kind}_mapped_world"], name=f"{kind}_mapped_world"),
        node("Slice", [f"{kind}_raw", "points_end", "world_start", "axis_h"],
             [f"{kind}_scores"], name=f"{kind}_scores"),
        node("Concat", [f"{kind}_mapped_points", f"{kind}_scores", f"{kind}_mapped_world"],
             [f"{kind}_mapped"], axis=1, name=f"{kind}_mapped"),
    ]


def _rotation_inits(size: int) -> list:
    """The constants of ``_rotation_views``."""
    from onnx import TensorProto, helper

    lowest = -(2 ** 63) + 1
    return [
        helper.make_tensor("flip_start", TensorProto.INT64, [1], [-1]),
        helper.make_tensor("flip_end", TensorProto.INT64, [1], [lowest]),
        helper.make_tensor("flip_step", TensorProto.INT64, [1], [-1]),
        helper.make_tensor("axis_h", TensorProto.INT64, [1], [1]),
        helper.make_tensor("axis_w", TensorProto.INT64, [1], [2]),
        helper.make_tensor("views_shape", TensorProto.INT64, [3], [3, -1, NET_ROW]),
        helper.make_tensor("presence_shape", TensorProto.INT64, [2], [3, -1]),
        helper.make_tensor("onehot_depth", TensorProto.INT64, [], [3]),
        helper.make_tensor("onehot_values", TensorProto.FLOAT, [2], [0.0, 1.0]),
        helper.make_tensor("axis0", TensorProto.INT64, [1], [0]),
        # A view's landmark (x', y', z) back in the crop's frame: a linear map plus an offset,
        # [x y z] = [x' y' z] @ M + b, applied to the 21 points at once. Clockwise view:
        # x = y', y = S - x'; counter-clockwise view: x = S - y', y = x'.
        helper.make_tensor("cw_matrix", TensorProto.FLOAT, [3, 3],
                           [0, -1, 0, 1, 0, 0, 0, 0, 1]),
        helper.make_tensor("cw_offset", TensorProto.FLOAT, [3], [0, size, 0]),
        helper.make_tensor("ccw_matrix", TensorProto.FLOAT, [3, 3],
                           [0, 1, 0, -1, 0, 0, 0, 0, 1]),
        helper.make_tensor("ccw_offset", TensorProto.FLOAT, [3], [size, 0, 0]),
        helper.make_tensor("points_shape", TensorProto.INT64, [3], [-1, 42, 3]),
        helper.make_tensor("flat_shape", TensorProto.INT64, [2], [-1, 126]),
        helper.make_tensor("world_start", TensorProto.INT64, [1], [WORLD_START]),
        helper.make_tensor("both_end", TensorProto.INT64, [1], [126]),
    ]


def _rotation_views(x: str, size: int, out: str):
    """Nodes that stack three views of the NHWC crop ``x`` along the batch (as is, turned 90
    degrees clockwise, counter-clockwise) into ``views_input``, and, after the network, keep per
    crop the view with the highest presence score, its landmarks mapped back into the crop's
    own frame. (front nodes, back nodes, initializers)"""
    from onnx import TensorProto, helper

    inits = _rotation_inits(size)
    node = helper.make_node
    front = [
        node("Transpose", [x], ["view_swapped"], perm=[0, 2, 1, 3], name="view_swap"),
        node("Slice", ["view_swapped", "flip_start", "flip_end", "axis_w", "flip_step"],
             ["view_cw"], name="view_cw"),
        node("Slice", ["view_swapped", "flip_start", "flip_end", "axis_h", "flip_step"],
             ["view_ccw"], name="view_ccw"),
        node("Concat", [x, "view_cw", "view_ccw"], ["views_input"], axis=0, name="views"),
    ]
    back = [
        node("Reshape", ["views_raw", "views_shape"], ["views_by_kind"], name="views_by_kind"),
    ]
    mapped = []
    for k, kind in enumerate(("upright", "cw", "ccw")):
        start = helper.make_tensor(f"{kind}_index", TensorProto.INT64, [1], [k])
        end = helper.make_tensor(f"{kind}_index_end", TensorProto.INT64, [1], [k + 1])
        inits += [start, end]
        back.append(node("Slice", ["views_by_kind", f"{kind}_index", f"{kind}_index_end",
                                   "axis0"], [f"{kind}_sliced"], name=f"{kind}_slice"))
        back.append(node("Squeeze", [f"{kind}_sliced", "axis0"], [f"{kind}_raw"],
                         name=f"{kind}_raw"))
        if kind == "upright":
            mapped.append("upright_raw")
            continue
        back += _map_back_nodes(kind)
        mapped.append(f"{kind}_mapped")
    inits += [helper.make_tensor("points_start", TensorProto.INT64, [1], [0]),
              helper.make_tensor("points_end", TensorProto.INT64, [1], [63]),
              helper.make_tensor("raw_end", TensorProto.INT64, [1], [NET_ROW]),
              helper.make_tensor("presence_end", TensorProto.INT64, [1], [PRESENCE + 1]),
              helper.make_tensor("unsqueeze_last", TensorProto.INT64, [1], [2])]
    back += [
        node("Slice", ["views_raw", "points_end", "presence_end", "axis_h"], ["views_p"],
             name="views_p"),
        node("Reshape", ["views_p", "presence_shape"], ["views_presence"],
             name="views_presence"),
        node("ArgMax", ["views_presence"], ["best_view"], axis=0, keepdims=0, name="best_view"),
        node("OneHot", ["best_view", "onehot_depth", "onehot_values"], ["best_onehot"],
             axis=0, name="best_onehot"),
        node("Unsqueeze", ["best_onehot", "unsqueeze_last"], ["best_weights"],
             name="best_weights"),
        *[node("Unsqueeze", [m, "axis0"], [f"{m}_u"], name=f"{m}_u") for m in mapped],
        node("Concat", [f"{m}_u" for m in mapped], ["views_mapped"], axis=0,
             name="views_mapped"),
        # the one-hot weights keep the best view's row and zero the other two
        node("Mul", ["views_mapped", "best_weights"], ["views_weighted"], name="views_weighted"),
        node("ReduceSum", ["views_weighted", "axis0"], [out], keepdims=0, name=out),
    ]
    return front, back, inits


def from_rows(onnx_bytes: bytes, outputs: list[str]) -> bytes | None:
    """The part of a hand_landmarks graph (the extractor or the exported model) from the rows
    tensor [N, NET_ROW] to ``outputs``; None for a graph without that tensor (another
    family's)."""
    import onnx
    from onnx import TensorProto, helper

    from gesturenet_lib.families.hand_landmarks.palm_graph import reachable, used_names

    model = onnx.load_from_string(onnx_bytes)
    graph = model.graph
    if not any(ROWS in node.output for node in graph.node):
        return None
    nodes = reachable(list(graph.node), outputs, frozenset([ROWS]))
    used = used_names(nodes)
    if graph.input[0].name in used:
        raise ValueError(f"{outputs} do not depend on the crop through {ROWS} alone")
    initializers = [t for t in graph.initializer if t.name in used]
    rows = helper.make_tensor_value_info(ROWS, TensorProto.FLOAT, ["N", NET_ROW])
    kept_outputs = [o for name in outputs for o in graph.output if o.name == name]
    part = helper.make_graph(nodes, "from_rows", [rows], kept_outputs, initializers)
    return helper.make_model(part, opset_imports=list(model.opset_import),
                             ir_version=model.ir_version).SerializeToString()


class Extractor:
    """Runs the extractor graph with ONNX Runtime, in batches."""

    def __init__(self, extractor_onnx: bytes, batch_size: int = 64):
        from gesturenet_lib.ort_cpu import cpu_session

        self.session = cpu_session(extractor_onnx)
        self.batch_size = batch_size

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = [self.session.run(None, {"input_1": np.ascontiguousarray(
            batch[i:i + self.batch_size], dtype=np.float32)})[0]
            for i in range(0, len(batch), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, RAW_SIZE), np.float32)


def fallback_probabilities(classes: dict[str, int]) -> list[float]:
    """What a crop without a hand is given: one-hot "random" when the classes have it, else
    uniform (reports then count it as wrong)."""
    n = len(classes)
    if "random" in classes:
        return [1.0 if i == classes["random"] else 0.0 for i in range(n)]
    return [1.0 / n] * n


def hand_found(raw: np.ndarray, threshold: float) -> np.ndarray:
    return raw[:, PRESENCE] >= threshold


# ------------------------------------------------------------------------ one graph for export

def merge_for_export(extractor_onnx: bytes, head_onnx: bytes, threshold: float):
    """Extractor + head (converted by tf2onnx) -> one graph (an unchecked ModelProto, for the
    caller to finish): ``input_1`` -> ``predictions`` [N, C] and ``hand_found`` [N, 1] (1.0
    where the presence score reaches ``threshold``)."""
    import onnx
    from onnx import TensorProto, helper

    extractor = onnx.load_from_string(extractor_onnx)
    head = onnx.load_from_string(head_onnx)
    merged = _merge(extractor, head)
    graph = merged.graph
    graph.initializer.extend([
        helper.make_tensor("presence_threshold", TensorProto.FLOAT, [], [threshold]),
        helper.make_tensor("presence_from", TensorProto.INT64, [1], [PRESENCE]),
        helper.make_tensor("presence_to", TensorProto.INT64, [1], [PRESENCE + 1]),
        helper.make_tensor("presence_axis", TensorProto.INT64, [1], [1])])
    graph.node.extend([
        helper.make_node("Slice", [EXTRACTOR_OUTPUT, "presence_from", "presence_to",
                                   "presence_axis"], ["hand_presence"], name="hand_presence"),
        helper.make_node("GreaterOrEqual", ["hand_presence", "presence_threshold"],
                         ["hand_found_bool"], name="hand_found_compare"),
        helper.make_node("Cast", ["hand_found_bool"], [HAND_FOUND], to=TensorProto.FLOAT,
                         name="hand_found_cast")])
    graph.output.append(helper.make_tensor_value_info(HAND_FOUND, TensorProto.FLOAT, ["N", 1]))
    return merged


def _merge(extractor, head):
    """Prefix the head's names with ``head/``, feed it the extractor's output, keep its output
    named as it was (``predictions``)."""
    import onnx
    from onnx import compose

    out_name = head.graph.output[0].name
    head = compose.add_prefix(head, "head/")
    merged = compose.merge_models(extractor, head,
                                  io_map=[(EXTRACTOR_OUTPUT, head.graph.input[0].name)])
    # merge_models lists each opset of both models; tools (ORT's quantizer) want one per domain
    versions: dict[str, int] = {}
    for opset in merged.opset_import:
        versions[opset.domain] = max(opset.version, versions.get(opset.domain, 0))
    del merged.opset_import[:]
    merged.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in sorted(versions.items()))
    for node in merged.graph.node:
        for k, name in enumerate(node.output):
            if name == f"head/{out_name}":
                node.output[k] = out_name
    for value in merged.graph.output:
        if value.name == f"head/{out_name}":
            value.name = out_name
    return merged
