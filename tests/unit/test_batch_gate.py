"""The all-of-the-batch-or-none gate of the crop graphs, run in ONNX Runtime on a tiny graph."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from gesturenet_lib.families.hand_landmarks.batch_gate import BatchGate


def _graph() -> ort.InferenceSession:
    """rows x [N, 3], skip [N, 1] -> staged: 2x for every row when some row may not skip, zero
    rows otherwise; left: the rows after the first k; k."""
    gate = BatchGate("g")
    node = helper.make_node
    nodes = [*gate.nodes("x", "skip"),
             *gate.first_rows("x", "taken"),
             node("Add", ["taken", "taken"], ["doubled"]),
             node("Concat", ["doubled", "doubled"], ["two_views"], axis=0),  # 2 rows a crop
             *gate.padded("doubled", "staged", 3),
             *gate.padded("two_views", "staged_twice", 3, per_crop=2),
             *gate.other_rows("x", "left")]
    graph = helper.make_graph(
        nodes, "gate",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3]),
         helper.make_tensor_value_info("skip", TensorProto.BOOL, [None, 1])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
         for name in ("staged", "staged_twice", "left")]
        + [helper.make_tensor_value_info(gate.k, TensorProto.INT64, None)],
        gate.inits())
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_the_stage_runs_on_the_whole_batch_or_on_none():
    session = _graph()
    x = np.arange(12, dtype=np.float32).reshape(4, 3)

    def run(skip):
        return session.run(None, {"x": x[:len(skip)],
                                  "skip": np.array(skip, bool).reshape(-1, 1)})

    staged, twice, left, k = run([True, False, True, True])  # one row needs it: all run
    assert k.tolist() == [4] and np.array_equal(staged, 2 * x) and left.shape == (0, 3)
    assert twice.shape == (8, 3) and np.array_equal(twice, np.concatenate([2 * x, 2 * x]))
    staged, twice, left, k = run([True, True, True, True])  # none needs it: none runs
    assert k.tolist() == [0] and staged.shape == (4, 3) and not staged.any()
    assert twice.shape == (8, 3) and not twice.any() and np.array_equal(left, x)
    staged, twice, left, k = run([])  # an empty batch
    assert k.tolist() == [0] and staged.shape == (0, 3) and twice.shape == (0, 3)


def test_constants_are_made_once_and_named_for_the_gate():
    gate = BatchGate("views")
    gate.nodes("x", "ok")
    gate.first_rows("x", "a")
    gate.first_rows("y", "b")
    gate.padded("r", "out", 128, per_crop=3)
    names = [t.name for t in gate.inits()]
    assert len(names) == len(set(names)) and all(n.startswith("views_") for n in names)
