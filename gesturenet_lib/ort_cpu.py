"""ONNX Runtime sessions for the CPU: one place that builds them, with the graph put in the form
ONNX Runtime's CPU provider runs fastest.

That provider runs convolutions in a blocked channel layout (NCHWc) and fuses Relu and Add
into them, but it has no blocked PRelu: each PRelu (MediaPipe's palm detector has 31) takes
the tensor out of that layout and back, and the PRelus and the layout changes were 14 of the
detector's 32 ms. Since PRelu(y) = (1 - s) * Relu(y) + s * y, a Relu and two per-channel 1x1
convolutions (added) compute it inside the layout: the detector then ran in 13-19 ms instead of
21-27 on this 2-core CPU, its outputs equal to 1e-4. Only the sessions built here are
rewritten: stored and exported graphs keep their PRelu (TensorRT runs it natively).

A branch of an If (the hand_landmarks crop graph's second look) that reads the main graph's
weights runs its convolutions outside that blocked layout: ONNX Runtime's layout pass takes
only a graph's own constants. The session's copy of the model gives each branch its own copy
of the weights it reads (the crop graph's second look then ran in 28 ms instead of 55-61 ms);
stored and exported graphs keep one copy."""

from __future__ import annotations

import numpy as np

PREFIX = "cpu_prelu/"   # names of the nodes and weights this module adds


def cpu_session(onnx_bytes: bytes, options=None):
    """An ``onnxruntime.InferenceSession`` on the CPU for ``onnx_bytes`` in the form above
    (bytes that do not parse as ONNX go to ONNX Runtime as they are, for its error)."""
    import onnxruntime as ort

    return ort.InferenceSession(in_cpu_form(onnx_bytes), options,
                                providers=["CPUExecutionProvider"])


def in_cpu_form(onnx_bytes: bytes) -> bytes:
    """``onnx_bytes`` with both rewrites (PRelu as convolutions, each branch with its own
    constants), parsed and written once; the same bytes when neither applies."""
    model = _parsed(onnx_bytes, (b"PRelu", b"_branch"))
    if model is None:
        return onnx_bytes
    changed = _rewrite_prelu(model)
    changed = _copy_branch_constants(model) or changed
    return model.SerializeToString() if changed else onnx_bytes


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
    model = _parsed(onnx_bytes, (b"PRelu",))
    return model.SerializeToString() if model is not None and _rewrite_prelu(model) \
        else onnx_bytes


def _rewrite_prelu(model) -> bool:
    """``without_prelu`` on ``model`` in place; whether anything changed."""
    import onnx

    graphs = _graphs(model.graph)   # the main graph and the branches of its If nodes
    if not any(node.op_type == "PRelu" for graph in graphs for node in graph.node):
        return False
    try:
        ranks = _ranks(onnx.shape_inference.infer_shapes(_inlined(model)))
    except Exception:  # onnx's inference errors; the graph then runs as it is
        return False
    slopes = _constants(model)
    replaced = set()
    for graph in reversed(graphs):   # branches first: a graph's rewrite copies its nodes
        nodes = []
        for node in graph.node:
            slope = slopes.get(node.input[1]) if node.op_type == "PRelu" else None
            channels = _channels(slope) if slope is not None else None
            if channels is None or ranks.get(node.input[0]) != 4:
                nodes.append(node)
                continue
            nodes += _as_convs(model, node, onnx.numpy_helper.to_array(slope), channels)
            replaced.add(slope.name)
        del graph.node[:]
        graph.node.extend(nodes)
    used = {name for graph in _graphs(model.graph) for node in graph.node for name in node.input}
    for tensor in [slopes[name] for name in replaced if name not in used]:
        model.graph.initializer.remove(tensor)   # ONNX Runtime warns of each unused one
    return bool(replaced)


def with_branch_constants(onnx_bytes: bytes) -> bytes:
    """``onnx_bytes`` with every subgraph holding its own copy of each of the main graph's
    constants it reads (same name); the same bytes when there is no subgraph."""
    model = _parsed(onnx_bytes, (b"_branch",))   # an If's then_branch / else_branch attribute
    return model.SerializeToString() if model is not None and _copy_branch_constants(model) \
        else onnx_bytes


def _copy_branch_constants(model) -> bool:
    """``with_branch_constants`` on ``model`` in place; whether anything changed."""
    constants = _constants(model)
    copied = set()
    for graph in _graphs(model.graph)[1:]:
        own = {t.name for t in graph.initializer}
        read = {name for node in graph.node for name in node.input}
        for name in sorted(read & constants.keys() - own):
            graph.initializer.append(constants[name])
            copied.add(name)
    # what only the branches read now lives in them alone (ONNX Runtime warns of each unused)
    kept = {name for node in model.graph.node for name in node.input} | {
        v.name for v in model.graph.output}
    for name in sorted(copied - kept):
        model.graph.initializer.remove(constants[name])
    return bool(copied)


def _parsed(onnx_bytes: bytes, markers: tuple[bytes, ...]):
    """The ModelProto of ``onnx_bytes``, or None where none of ``markers`` (names a rewrite
    looks for) is in them or they do not parse (ONNX Runtime will name that problem)."""
    from onnx.onnx_pb import ModelProto

    if not any(marker in onnx_bytes for marker in markers):
        return None
    model = ModelProto()
    try:
        model.ParseFromString(onnx_bytes)
    except Exception:  # protobuf's DecodeError
        return None
    return model


def _constants(model) -> dict:
    """The main graph's initializers by name, but those that are also graph inputs (a caller
    may override them at run time: not constants)."""
    inputs = {v.name for v in model.graph.input}
    return {t.name: t for t in model.graph.initializer if t.name not in inputs}


def _graphs(graph) -> list:
    """``graph`` and every graph inside its nodes' attributes (an If's branches), nested."""
    found = [graph]
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                found += _graphs(attribute.g)
    return found


def _inlined(model):
    """A copy of ``model`` for shape inference alone: each subgraph's nodes and constants also
    placed in the main graph, before the node that holds it (a model's tensor names are unique
    across its graphs). Inference inside a branch cannot read the values of constants from
    outside it (a Resize's sizes, say) and gives up there; in one graph it reads them."""
    from onnx.onnx_pb import ModelProto

    def nodes_of(graph) -> list:
        flat = []
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    flat += nodes_of(attribute.g)
            flat.append(node)
        return flat

    copy = ModelProto()
    copy.CopyFrom(model)
    nodes = nodes_of(copy.graph)
    inner = [t for graph in _graphs(copy.graph)[1:] for t in graph.initializer]
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    copy.graph.initializer.extend(inner)
    return copy


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
