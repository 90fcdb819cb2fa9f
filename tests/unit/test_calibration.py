"""INT8 calibration (``export.calibration``) on graphs whose inner tensors change size."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from gesturenet_lib.errors import UserInputError
from gesturenet_lib.export.calibration import calibrate


def _all_or_none_graph(path) -> None:
    """input_1 [N, 4] -> y: a Relu on all of the batch's rows when some value of the batch is over
    0.5, on none of them otherwise (the crop graph's cascades do this), padded back."""
    node = helper.make_node
    nodes = [
        node("ReduceMax", ["input_1"], ["top"], keepdims=0),
        node("Greater", ["top", "half"], ["hot"]),
        node("Cast", ["hot"], ["hot_i"], to=TensorProto.INT64),
        node("Shape", ["input_1"], ["shape"]),
        node("Slice", ["shape", "c0", "c1"], ["batch"]),
        node("Mul", ["batch", "hot_i"], ["k"]),
        node("Slice", ["input_1", "c0", "k", "c0"], ["some"]),
        node("Mul", ["some", "two"], ["some_doubled"]),
        node("Relu", ["some_doubled"], ["some_relu"]),
        node("Slice", ["input_1", "k", "end", "c0"], ["rest"]),
        node("Concat", ["some_relu", "rest"], ["y"], axis=0)]
    inits = [helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
             helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
             helper.make_tensor("c0", TensorProto.INT64, [1], [0]),
             helper.make_tensor("c1", TensorProto.INT64, [1], [1]),
             helper.make_tensor("end", TensorProto.INT64, [1], [2 ** 62])]
    batch = ["N", 4]
    graph = helper.make_graph(
        nodes, "all_or_none", [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, batch)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, batch)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_calibration_takes_batches_whose_inner_tensors_differ_in_size(tmp_path):
    """One batch runs the inner stage on all its rows, the next on none: the entropy and
    minmax calibrators give ranges (ONNX Runtime stacks the batches of one collection into one
    array, which fails on such tensors), the inner tensor's range that of the batches that
    ran it; the percentile calibrator says it cannot."""
    path = tmp_path / "model.onnx"
    _all_or_none_graph(path)
    rng = np.random.default_rng(0)
    hot = rng.uniform(0.0, 0.9, (4, 4)).astype(np.float32)
    hot[0, 0] = 0.9
    cold = rng.uniform(0.0, 0.4, (4, 4)).astype(np.float32)
    for calibrator in ("entropy", "minmax"):
        ranges = calibrate(str(path), np.concatenate([hot, cold, hot]), 4, calibrator)
        low, high = ranges["some_doubled"]
        assert 0.0 <= low and 1.0 < high <= 1.81, (calibrator, low, high)
    # ONNX Runtime's percentile collector takes every batch at once, which cannot work here:
    # one line that says which calibrators can, not a numpy traceback; where no tensor's size
    # differs between batches it calibrates
    with pytest.raises(UserInputError, match="percentile calibrator cannot calibrate"):
        calibrate(str(path), np.concatenate([hot, cold, hot]), 4, "percentile")
    assert calibrate(str(path), np.concatenate([hot, hot]), 4, "percentile")["some_doubled"]
