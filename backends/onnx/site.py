"""`Site`: what a lowering rule sees of one node of the typed graph, and the calls it emits
ONNX nodes with.

A rule (`rules/<family>.py`, gathered in `lowering.LOWER`) takes a `Site` and returns the
name of the value holding the node's result, or for a multi-output node (docs/ir.md) the list
of its outputs' values. A case ONNX cannot express exactly raises `Refusal` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto, helper

from archdsl.graph import Node, TensorType
from archdsl.symbolic import Dim

from .builder import ELEMENT, NUMPY, Builder

END = np.iinfo(np.int64).max  # a Slice end meaning "to the end of the axis"


class Refusal(Exception):
    """A case ONNX cannot express exactly; the generator locates and reports it."""


@dataclass
class Site:
    """What a rule sees: the node, its inputs as value names and types, and the builder.

    `noise` is set when the export takes the draws of `randn_like` as graph inputs
    (`archdsl.noise`): it maps a `randn_like` node's id to the index of its draw."""

    node: Node
    xs: list[Any]  # value names; a multi-output input (read by `part`) is a list of them
    ins: list[TensorType]
    b: Builder
    base: str  # the node's name: its layer path, or its scope and op
    params: dict[str, str]  # the layer's parameter names -> state-dict keys
    used: set[str]  # state-dict keys some node reads
    cache: dict[Any, Any]  # tensors derived from parameters once per export
    noise: dict[int, int] | None = None

    @property
    def args(self) -> dict[str, Any]:
        return self.node.args

    @property
    def x(self) -> str:
        return self.xs[0]

    @property
    def out(self) -> TensorType:
        return self.node.type

    def op(self, op_type: str, *inputs: str, hint: str = "", outputs: int = 1,
           **attrs: Any) -> Any:
        """One ONNX node; its name (and its outputs') is `base/hint`. Returns the output's
        name, or the list of them when `outputs` > 1."""
        names = self.b.node(op_type, list(inputs), f"{self.base}/{hint or op_type}", outputs,
                            **attrs)
        return names if outputs > 1 else names[0]

    def param(self, name: str) -> str:
        key = self.params[name]
        self.used.add(key)
        return key

    def const(self, value: Any, hint: str, dtype: Any = np.int64) -> str:
        return self.b.const(value, f"{self.base}/{hint}", dtype)

    def scalar(self, value: float, dtype: str) -> str:
        """A number as a constant of the graph dtype `dtype`."""
        return self.array(value, dtype, "scalar")

    def array(self, value: Any, dtype: str, hint: str) -> str:
        """Numbers as a constant of the graph dtype `dtype`."""
        if dtype == "bf16":  # NumPy has no bfloat16
            return self.cast(self.const(value, hint, np.float32), "f32", "bf16")
        return self.const(value, hint, NUMPY[dtype])

    def cast(self, x: str, have: str, want: str) -> str:
        return x if have == want else self.op("Cast", x, to=ELEMENT[want])

    def dim(self, d: Dim) -> str:
        """The size `d` as an int64 tensor of shape [1], computed at run time if symbolic."""
        return self.b.dim(d)

    def sizes(self, dims: Any, hint: str) -> str:
        """An int64 shape tensor of known and symbolic sizes (0 and -1 as Reshape reads
        them)."""
        return self.b.shape([d if isinstance(d, int) else self.dim(d) for d in dims],
                            f"{self.base}/{hint}")

    def filled(self, shape: str, value: float, dtype: str, hint: str) -> str:
        """A tensor of `shape` (an int64 shape tensor) holding `value` everywhere."""
        element = TensorProto.FLOAT if dtype == "bf16" else ELEMENT[dtype]
        fill = helper.make_tensor("value", element, [1], [value])
        full = self.op("ConstantOfShape", shape, value=fill, hint=hint)
        return self.cast(full, "f32", dtype) if dtype == "bf16" else full


Rule = Callable[[Site], Any]
