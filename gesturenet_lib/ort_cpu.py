"""ONNX Runtime sessions for the CPU: one place that builds them, with the graph put in the form
ONNX Runtime's CPU provider runs fastest.

That provider runs convolutions in a blocked channel layout (NCHWc) and fuses Relu and Add
into them, but it has no blocked PRelu: each PRelu (MediaPipe's palm detector has 31) takes
the tensor out of that layout and back, and the PRelus and the layout changes were 14 of the
detector's 32 ms. Since PRelu(y) = (1 - s) * Relu(y) + s * y, a Relu and two per-channel 1x1
convolutions (added) compute it inside the layout: the detector then ran in 13-19 ms instead of
21-27 on this 2-core CPU, its outputs equal to 1e-4. Only the sessions built here are
rewritten: stored and exported graphs keep their PRelu (TensorRT runs it natively)."""

from __future__ import annotations

import numpy as np

PREFIX = "cpu_prelu/"   # names of the nodes and weights this module adds


def cpu_session(onnx_bytes: bytes, options=None):
    """An ``onnxruntime.InferenceSession`` on the CPU for ``onnx_bytes`` (PRelus rewritten as
    above; bytes that do not parse as ONNX go to ONNX Runtime as they are, for its error)."""
    import onnxruntime as ort

    return ort.InferenceSession(without_prelu(onnx_bytes), options,
                                providers=["CPUExecutionProvider"])


def quiet_between_runs(threads: int = 0):
    """ONNX Runtime session options for sessions that take turns (the detector, the landmark
    network, the classifier after them): by default a session's threads spin for a while
    after each run, taking the cores from the next session; on 2 cores that made finding the
    hands of a photo 1.7x slower (91 vs 53 ms). ``threads`` per run (0: ONNX Runtime's
    choice, one per core; 1 where several runs go on at once). This session's own setting."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    return options


def without_prelu(onnx_bytes: bytes) -> bytes:
    """``onnx_bytes`` with every PRelu on a 4-D tensor with per-channel constant slopes as a
    Relu, two depthwise 1x1 convolutions and an Add; the same bytes when there is none."""
    import onnx
    from onnx.onnx_pb import ModelProto

    if b"PRelu" not in onnx_bytes:
        return onnx_bytes
    model = ModelProto()
    try:
        model.ParseFromString(onnx_bytes)
    except Exception:  # protobuf's DecodeError; ONNX Runtime will name the problem
        return onnx_bytes
    if not any(node.op_type == "PRelu" for node in model.graph.node):
        return onnx_bytes
    try:
        ranks = _ranks(onnx.shape_inference.infer_shapes(model))
    except Exception:  # onnx's inference errors; the graph then runs as it is
        return onnx_bytes
    inputs = {v.name for v in model.graph.input}   # an initializer a caller may override
    slopes = {t.name: t for t in model.graph.initializer if t.name not in inputs}
    nodes, replaced = [], set()
    for node in model.graph.node:
        slope = slopes.get(node.input[1]) if node.op_type == "PRelu" else None
        channels = _channels(slope) if slope is not None else None
        if channels is None or ranks.get(node.input[0]) != 4:
            nodes.append(node)
            continue
        nodes += _as_convs(model, node, onnx.numpy_helper.to_array(slope), channels)
        replaced.add(slope.name)
    if not replaced:
        return onnx_bytes
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    for tensor in [slopes[name] for name in replaced if name not in used]:
        model.graph.initializer.remove(tensor)   # ONNX Runtime warns of each unused one
    return model.SerializeToString()


def _ranks(model) -> dict[str, int]:
    """Each tensor's rank where shape inference knows it."""
    infos = [*model.graph.input, *model.graph.value_info, *model.graph.output]
    return {v.name: len(v.type.tensor_type.shape.dim) for v in infos
            if v.type.tensor_type.HasField("shape")}


def _channels(slope) -> int | None:
    """The channel count of a per-channel float32 slope, shape [1, C, 1, 1] or [C, 1, 1]."""
    from onnx import TensorProto

    if slope.data_type != TensorProto.FLOAT:
        return None
    dims = list(slope.dims)
    if dims[:1] == [1] and len(dims) == 4:
        dims = dims[1:]
    return int(dims[0]) if len(dims) == 3 and dims[1:] == [1, 1] else None


def _as_convs(model, node, slope: np.ndarray, channels: int) -> list:
    """(1 - s) * Relu(y) + s * y for ``node`` = PRelu(y, s), writing its output."""
    from onnx import helper, numpy_helper

    s = slope.reshape(channels).astype(np.float32)
    y, out, name = node.input[0], node.output[0], PREFIX + node.output[0]
    model.graph.initializer.extend([
        numpy_helper.from_array((1 - s).reshape(channels, 1, 1, 1), name + "/relu_weight"),
        numpy_helper.from_array(s.reshape(channels, 1, 1, 1), name + "/linear_weight")])

    def depthwise(source: str, weight: str, target: str):
        return helper.make_node("Conv", [source, name + weight], [target], name=target,
                                group=channels, kernel_shape=[1, 1])

    return [helper.make_node("Relu", [y], [name + "/relu"], name=name + "/relu"),
            depthwise(name + "/relu", "/relu_weight", name + "/relu_part"),
            depthwise(y, "/linear_weight", name + "/linear_part"),
            helper.make_node("Add", [name + "/relu_part", name + "/linear_part"], [out],
                             name=name + "/sum")]
