"""CPU sessions compute what the graph as stored computes, with PRelu in a form ONNX Runtime's
blocked layout keeps."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from gesturenet_lib.families.hand_landmarks.assets import palm_onnx_bytes
from gesturenet_lib.ort_cpu import cpu_session, without_prelu


def plain(onnx_bytes: bytes):
    return ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])


def ops(onnx_bytes: bytes) -> list[str]:
    return [node.op_type for node in onnx.load_from_string(onnx_bytes).graph.node]


def conv_prelu(slope: np.ndarray, rank2: bool = False) -> bytes:
    """x [N, 16, 9, 9] -> Conv 3x3 (16 channels) -> PRelu(slope) -> y; with ``rank2``, a
    PRelu on a [N, 16] tensor (no per-channel conv can stand for it)."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(size=(16, 16, 3, 3)).astype(np.float32), "w"),
               numpy_helper.from_array(slope.astype(np.float32), "slope")]
    if rank2:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])
        nodes = [helper.make_node("PRelu", ["x", "slope"], ["y"])]
        weights = weights[1:]
    else:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16, 9, 9])
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                 helper.make_node("PRelu", ["c", "slope"], ["y"])]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [x], [y], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]
                             ).SerializeToString()


@pytest.mark.parametrize("shape", [(1, 16, 1, 1), (16, 1, 1)])
def test_a_per_channel_prelu_becomes_convolutions_with_the_same_output(shape):
    # slopes of every sign and size: negative, zero, between 0 and 1, one, above one
    slope = np.linspace(-1.5, 3.0, 16).reshape(shape)
    model = conv_prelu(slope)
    rewritten = without_prelu(model)
    assert "PRelu" not in ops(rewritten) and ops(rewritten).count("Conv") == 3
    x = np.random.default_rng(1).normal(size=(2, 16, 9, 9)).astype(np.float32)
    expected = plain(model).run(None, {"x": x})[0]
    got = cpu_session(model).run(None, {"x": x})[0]
    assert (expected < 0).any() and (expected > 0).any()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_a_prelu_that_is_not_per_channel_on_an_image_stays():
    model = conv_prelu(np.linspace(-1.0, 2.0, 16), rank2=True)
    assert without_prelu(model) == model
    x = np.random.default_rng(2).normal(size=(3, 16)).astype(np.float32)
    np.testing.assert_array_equal(cpu_session(model).run(None, {"x": x})[0],
                                  plain(model).run(None, {"x": x})[0])


def test_a_slope_that_is_also_a_graph_input_stays():
    """An initializer that is also a graph input can be given at run time: not a constant."""
    model = onnx.load_from_string(conv_prelu(np.linspace(-1.0, 2.0, 16).reshape(16, 1, 1)))
    model.graph.input.append(helper.make_tensor_value_info("slope", TensorProto.FLOAT,
                                                           [16, 1, 1]))
    data = model.SerializeToString()
    assert without_prelu(data) == data


def test_bytes_that_are_not_onnx_get_onnx_runtimes_own_error():
    assert without_prelu(b"PRelu, but not a model") == b"PRelu, but not a model"
    with pytest.raises(Exception, match="(?i)protobuf|parse|load"):
        cpu_session(b"PRelu, but not a model")


def test_the_palm_detector_finds_the_same_palms_without_prelu():
    stored = palm_onnx_bytes()
    assert ops(stored).count("PRelu") == 31
    rewritten = onnx.load_from_string(without_prelu(stored)).graph
    assert "PRelu" not in [node.op_type for node in rewritten.node]
    used = {name for node in rewritten.node for name in node.input}
    assert not [t.name for t in rewritten.initializer if t.name not in used]
    batch = np.random.default_rng(3).random((2, 192, 192, 3), dtype=np.float32)
    for got, expected in zip(cpu_session(stored).run(None, {"input_1": batch}),
                             plain(stored).run(None, {"input_1": batch}), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def conv_prelu_in_a_branch(slope: np.ndarray) -> bytes:
    """x [N, 16, 9, 9] -> If (x's mean > 0): Conv 3x3 + PRelu(slope) in the then-branch, the
    main graph's weights read from inside it; x as it is in the else-branch -> y."""
    rng = np.random.default_rng(4)
    weights = [numpy_helper.from_array(rng.normal(size=(16, 16, 3, 3)).astype(np.float32), "w"),
               numpy_helper.from_array(slope.astype(np.float32), "slope"),
               numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    y_any = helper.make_tensor_value_info
    then_branch = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("PRelu", ["c", "slope"], ["looked"])], "then", [],
        [y_any("looked", TensorProto.FLOAT, None)])
    else_branch = helper.make_graph([helper.make_node("Identity", ["x"], ["kept"])], "else", [],
                                    [y_any("kept", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("ReduceMean", ["x"], ["mean"], keepdims=0),
             helper.make_node("Greater", ["mean", "zero"], ["positive"]),
             helper.make_node("If", ["positive"], ["y"], then_branch=then_branch,
                              else_branch=else_branch)]
    graph = helper.make_graph(nodes, "g", [y_any("x", TensorProto.FLOAT, ["N", 16, 9, 9])],
                              [y_any("y", TensorProto.FLOAT, None)], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]
                             ).SerializeToString()


def test_a_branch_gets_its_own_weights_and_its_prelu_rewritten_with_the_same_output():
    """An If's branch that reads the main graph's weights: the CPU session's copy holds them
    in the branch (ONNX Runtime's blocked layout takes only a graph's own constants), the
    PRelu in it rewritten, nothing left unused in the main graph; same outputs both ways."""
    from gesturenet_lib.ort_cpu import with_branch_constants

    model = conv_prelu_in_a_branch(np.linspace(-1.5, 3.0, 16).reshape(16, 1, 1))
    session_copy = onnx.load_from_string(with_branch_constants(without_prelu(model)))
    then_branch = next(a.g for a in session_copy.graph.node[-1].attribute
                       if a.name == "then_branch")
    assert "PRelu" not in [node.op_type for node in then_branch.node]
    assert {"w"} <= {t.name for t in then_branch.initializer}
    assert {t.name for t in session_copy.graph.initializer} == {"zero"}
    x = np.random.default_rng(5).normal(size=(2, 16, 9, 9)).astype(np.float32)
    for sign in (1.0, -1.0):   # the then-branch (mean > 0) and the else-branch
        shifted = x + sign * 5.0
        expected = plain(model).run(None, {"x": shifted})[0]
        np.testing.assert_allclose(cpu_session(model).run(None, {"x": shifted})[0], expected,
                                   rtol=1e-5, atol=1e-4)
    stored = onnx.load_from_string(model)
    assert {t.name for t in stored.graph.initializer} == {"w", "slope", "zero"}


def test_a_model_without_branches_is_left_as_it_is():
    from gesturenet_lib.ort_cpu import with_branch_constants

    model = conv_prelu(np.linspace(-1.0, 2.0, 16).reshape(16, 1, 1))
    assert with_branch_constants(model) == model
