"""All of a batch or none: how a crop graph skips a costly stage that only some crops need,
without control flow.

The stage (the lift's curve, the palm detector's path, the fallback views, the re-read in the
lite network's box) runs on the first ``k`` rows of its input, where ``k`` is the whole batch
when some crop needs it and 0 when none does: an empty batch costs nothing downstream. Its
rows are then brought back to the batch (padded with zero rows, or joined to the rows it did
not touch), and a later Where takes, per crop, the rows that crop needs, so each crop's result
depends on that crop alone. No ONNX If: ONNX Runtime's INT8 calibrators read the main graph
alone, and a stage inside a branch would get no scales. The cost: each node of a skipped stage
still runs, on an empty batch (about 1.5 us a node on this CPU). The crop graph's second look,
a whole copy of the steps, is an If instead (``extractor._second_look_nodes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BatchGate:
    """One gate; every tensor and constant it makes is named ``<name>_...``. ``nodes`` first,
    then any of ``first_rows``, ``other_rows`` and ``padded``; ``inits()`` last (the constants
    its nodes use, each once). ``needed_nodes`` alone gives an If its condition."""
    name: str
    _inits: dict = field(default_factory=dict, repr=False)

    @property
    def k(self) -> str:
        """The rows the stage runs on: the batch or 0 ([1], int64)."""
        return f"{self.name}_k"

    @property
    def batch(self) -> str:
        """The batch of the gated input ([1], int64)."""
        return f"{self.name}_batch"

    @property
    def needed(self) -> str:
        """Whether some crop needs the stage (a bool scalar; false for an empty batch)."""
        return f"{self.name}_needed"

    def needed_nodes(self, skip: str) -> list:
        """``needed``: not every crop may ``skip`` the stage (bool, one per crop)."""
        from onnx import TensorProto, helper

        node, n = helper.make_node, self.name
        return [
            node("Cast", [skip], [f"{n}_skip_f"], to=TensorProto.FLOAT, name=f"{n}_skip_f"),
            node("Reshape", [f"{n}_skip_f", self._int(-1)], [f"{n}_skip_flat"],
                 name=f"{n}_skip_flat"),
            # a 1 ("skip") beside the crops' flags: an empty batch skips with a finite
            # minimum (ReduceMin of nothing is +inf, which INT8 calibrators cannot bin)
            node("Concat", [f"{n}_skip_flat", self._float("one", 1.0, [1])],
                 [f"{n}_skip_all"], axis=0, name=f"{n}_skip_all"),
            node("ReduceMin", [f"{n}_skip_all"], [f"{n}_all_skip"], keepdims=0,
                 name=f"{n}_all_skip"),
            node("Less", [f"{n}_all_skip", self._float("half", 0.5, [])], [self.needed],
                 name=self.needed)]

    def nodes(self, x: str, skip: str) -> list:
        """``k``: the batch of ``x``, unless every crop may ``skip`` the stage (bool, one per
        crop), then 0. An empty ``x`` gives 0."""
        from onnx import TensorProto, helper

        node, n = helper.make_node, self.name
        return [
            *self.needed_nodes(skip),
            node("Cast", [self.needed], [f"{n}_needed_i"], to=TensorProto.INT64,
                 name=f"{n}_needed_i"),
            node("Shape", [x], [f"{n}_x_shape"], name=f"{n}_x_shape"),
            node("Slice", [f"{n}_x_shape", self._int(0), self._int(1)], [self.batch],
                 name=self.batch),
            node("Mul", [self.batch, f"{n}_needed_i"], [self.k], name=self.k)]

    def first_rows(self, tensor: str, out: str) -> list:
        """``out``: the first ``k`` rows of ``tensor`` (the stage's input)."""
        from onnx import helper

        return [helper.make_node("Slice", [tensor, self._int(0), self.k, self._int(0)], [out],
                                 name=out)]

    def other_rows(self, tensor: str, out: str) -> list:
        """``out``: the rows of ``tensor`` after the first ``k`` (those the stage left)."""
        from onnx import helper

        return [helper.make_node("Slice", [tensor, self.k, self._int(2 ** 62), self._int(0)],
                                 [out], name=out)]

    def padded(self, rows: str, out: str, width: int, per_crop: int = 1) -> list:
        """``out``: the stage's ``rows`` ([k * per_crop, width]) and zero rows after them, to
        ``per_crop`` rows for every crop of the batch."""
        from onnx import TensorProto, helper

        node, n = helper.make_node, f"{self.name}_{out}"
        total, taken = self.batch, self.k
        nodes = []
        if per_crop != 1:
            total, taken = f"{n}_total", f"{n}_taken"
            nodes += [node("Mul", [self.batch, self._int(per_crop)], [total], name=total),
                      node("Mul", [self.k, self._int(per_crop)], [taken], name=taken)]
        zero_row = f"{self.name}_zero_row_{width}"
        self._inits.setdefault(zero_row, helper.make_tensor(
            zero_row, TensorProto.FLOAT, [1, width], [0.0] * width))
        return nodes + [
            node("Sub", [total, taken], [f"{n}_missing"], name=f"{n}_missing"),
            node("Concat", [f"{n}_missing", self._int(width)], [f"{n}_pad_shape"], axis=0,
                 name=f"{n}_pad_shape"),
            node("Expand", [zero_row, f"{n}_pad_shape"], [f"{n}_pad"], name=f"{n}_pad"),
            node("Concat", [rows, f"{n}_pad"], [out], axis=0, name=out)]

    def inits(self) -> list:
        return list(self._inits.values())

    def _int(self, value: int) -> str:
        from onnx import TensorProto, helper

        name = f"{self.name}_i{value}"
        self._inits.setdefault(name, helper.make_tensor(name, TensorProto.INT64, [1], [value]))
        return name

    def _float(self, suffix: str, value: float, dims: list[int]) -> str:
        from onnx import TensorProto, helper

        name = f"{self.name}_{suffix}"
        self._inits.setdefault(name, helper.make_tensor(name, TensorProto.FLOAT, dims, [value]))
        return name
