"""`Builder`: an ONNX graph under construction, one node at a time.

It hands out unique names (values and nodes live in separate namespaces), keeps constants as
deduplicated initializers, and turns a dimension of the typed graph, known or symbolic, into
an int64 tensor computed from the inputs' shapes at run time (`dim`, `shape`), so a spec's
`B` and `T` stay free in the exported model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import NodeProto, TensorProto, TypeProto, helper, numpy_helper

from archdsl.graph import TensorType
from archdsl.symbolic import Dim, format_dim

# The typed graph's dtypes as ONNX element types and NumPy dtypes.
ELEMENT = {"f16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16, "f32": TensorProto.FLOAT,
           "f64": TensorProto.DOUBLE, "i32": TensorProto.INT32, "i64": TensorProto.INT64,
           "bool": TensorProto.BOOL}
NUMPY = {"f16": np.float16, "f32": np.float32, "f64": np.float64, "i32": np.int32,
         "i64": np.int64, "bool": np.bool_}


def tensor_type(t: TensorType) -> TypeProto:
    """`t` as an ONNX type; a symbolic dimension becomes a `dim_param` named by its formula."""
    dims = [d if isinstance(d, int) else format_dim(d) for d in t.shape]
    return helper.make_tensor_type_proto(ELEMENT[t.dtype], dims)


class Builder:
    def __init__(self, reserved: set[str], claimable: set[str],
                 symbols: dict[str, tuple[str, int]]):
        self.nodes: list[NodeProto] = []
        self.constants: list[TensorProto] = []
        self.value_info: list[Any] = []
        self.inputs: list[Any] = []  # graph inputs a rule adds (`graph_input`)
        # Graph inputs and state keys keep their names; outputs are kept for `rename`.
        self._values = reserved | claimable
        self._claimable = set(claimable)
        self._node_names: set[str] = set()
        self._symbols = symbols  # symbol -> (input value, axis) it is read from
        self._consts: dict[tuple, str] = {}
        self._dims: dict[str, str] = {}
        self._producer: dict[str, NodeProto] = {}

    # -- names ------------------------------------------------------------------------------
    @staticmethod
    def _unique(want: str, taken: set[str]) -> str:
        name, k = want, 0
        while name in taken:
            k += 1
            name = f"{want}_{k}"
        taken.add(name)
        return name

    def value_name(self, want: str) -> str:
        return self._unique(want, self._values)

    def node_name(self, want: str) -> str:
        return self._unique(want, self._node_names)

    # -- nodes and constants ------------------------------------------------------------------
    def node(self, op_type: str, inputs: list[str], name: str, outputs: int = 1,
             **attrs: Any) -> list[str]:
        """Append one node named `name` (made unique); its outputs are named after it."""
        name = self.node_name(name)
        outs = [self.value_name(name if outputs == 1 else f"{name}:{i}") for i in range(outputs)]
        node = helper.make_node(op_type, inputs, outs, name=name,
                                **{k: v for k, v in attrs.items() if v is not None})
        self.nodes.append(node)
        for o in outs:
            self._producer[o] = node
        return outs

    def rename(self, value: str, want: str) -> str:
        """Give a value made by a node of this builder the name `want` (made unique unless it
        is an output's), before any other node reads it."""
        node = self._producer[value]
        if want in self._claimable:
            self._claimable.remove(want)
            name = want
        else:
            name = self.value_name(want)
        node.output[list(node.output).index(value)] = name
        self._producer[name] = self._producer.pop(value)
        return name

    def rename_node(self, value: str, want: str) -> None:
        node = self._producer[value]
        self._node_names.discard(node.name)
        node.name = self.node_name(want)

    def producer(self, value: str) -> NodeProto | None:
        return self._producer.get(value)

    def const(self, value: Any, hint: str, dtype: Any = None) -> str:
        """A constant initializer; equal constants are stored once."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            name = self.value_name(hint)
            self.constants.append(numpy_helper.from_array(array, name))
            self._consts[key] = name
        return self._consts[key]

    def graph_input(self, want: str, t: TensorType) -> str:
        """A graph input of type `t` after the spec's, named `want` (made unique)."""
        name = self.value_name(want)
        self.inputs.append(helper.make_value_info(name, tensor_type(t)))
        return name

    def typed(self, value: str, t: TensorType) -> None:
        """Record the type the checker proved for `value`: viewers show it on the edge, and
        `onnx.checker`'s strict shape inference compares it with what the nodes compute."""
        self.value_info.append(helper.make_value_info(value, tensor_type(t)))

    # -- run-time sizes -----------------------------------------------------------------------
    def dim(self, d: Dim) -> str:
        """An int64 tensor of shape [1] holding the size `d` at run time."""
        if isinstance(d, int):
            return self.const([d], "size", np.int64)
        key = format_dim(d)
        if key not in self._dims:
            self._dims[key] = self._symbolic(d, key)
        return self._dims[key]

    def _symbolic(self, d: Dim, key: str) -> str:
        total: str | None = None
        for monomial, coeff in d.terms:  # type: ignore[union-attr]
            term: str | None = None
            for atom in monomial:
                if atom[0] == "sym":
                    value, axis = self._symbols[atom[1]]
                    factor = self.node("Shape", [value], f"size/{atom[1]}", start=axis,
                                       end=axis + 1)[0]
                else:  # ("fdiv", inner, n): sizes are never negative, so Div truncates as //
                    factor = self.node("Div", [self.dim(atom[1]), self.dim(atom[2])],
                                       f"size/{format_dim(atom[1])}//{atom[2]}")[0]
                term = factor if term is None else self.node("Mul", [term, factor],
                                                             f"size/{key}")[0]
            if term is None:
                term = self.dim(coeff)
            elif coeff != 1:
                term = self.node("Mul", [term, self.dim(coeff)], f"size/{key}")[0]
            total = term if total is None else self.node("Add", [total, term],
                                                         f"size/{key}")[0]
        assert total is not None
        return total

    def shape(self, dims: list[str | int], hint: str) -> str:
        """An int64 shape tensor from known sizes (ints) and run-time ones (`dim` tensors)."""
        if all(isinstance(d, int) for d in dims):
            return self.const(dims, hint, np.int64)
        parts = [self.const([d], "size", np.int64) if isinstance(d, int) else d for d in dims]
        return self.node("Concat", parts, hint, axis=0)[0]
