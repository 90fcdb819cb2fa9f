"""Named constant tensors (ONNX initializers) for the graph builders of this family."""

from __future__ import annotations


def ints(name: str, values: list[int]):
    """An int64 initializer of shape [len(values)]."""
    from onnx import TensorProto, helper

    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def floats(name: str, shape: list[int], values: list[float]):
    """A float32 initializer of ``shape`` (``[]``: a scalar)."""
    from onnx import TensorProto, helper

    return helper.make_tensor(name, TensorProto.FLOAT, shape, values)
