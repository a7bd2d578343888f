"""Reductions over a list of dimensions, or all of them (`dim` None). In opset 17
ReduceMean, ReduceMax and ReduceMin take their axes as an attribute and ReduceSum as an
input; ReduceMax and ReduceMin take no booleans before opset 20, so a boolean tensor is
reduced as int32 and cast back."""

from __future__ import annotations

import math
from typing import Any

from archdsl.ops.registry import numel

from ..site import Rule, Site


def _reduce(s: Site, op_type: str, x: str, keep: bool, hint: str = "") -> str:
    dims = s.args["dim"]
    if op_type == "ReduceSum":
        axes = [] if dims is None else [s.const(dims, "axes")]
        return s.op(op_type, x, *axes, keepdims=int(keep), hint=hint)
    return s.op(op_type, x, axes=dims, keepdims=int(keep), hint=hint)


def _sum_or_mean(op_type: str) -> Rule:
    """A sum of integers or booleans is int64, as torch.sum's."""
    def rule(s: Site) -> str:
        return _reduce(s, op_type, s.cast(s.x, s.ins[0].dtype, s.out.dtype), s.args["keepdim"])
    return rule


def _extreme(op_type: str) -> Rule:
    def rule(s: Site) -> str:
        dtype = s.ins[0].dtype
        if dtype != "bool":
            return _reduce(s, op_type, s.x, s.args["keepdim"])
        y = _reduce(s, op_type, s.cast(s.x, "bool", "i32"), s.args["keepdim"])
        return s.cast(y, "i32", "bool")
    return rule


def var(s: Site) -> str:
    """The mean squared deviation from the mean, times N / (N - 1) when `unbiased` (N the
    number of elements reduced, computed at run time when a size is symbolic)."""
    a, t = s.args, s.ins[0]
    deviation = s.op("Sub", s.x, _reduce(s, "ReduceMean", s.x, True, "mean"), hint="deviation")
    y = _reduce(s, "ReduceMean", s.op("Mul", deviation, deviation, hint="square"),
                a["keepdim"])
    if not a["unbiased"]:
        return y
    dims = range(t.rank) if a["dim"] is None else a["dim"]
    n: Any = numel([t.shape[i] for i in dims])
    if isinstance(n, int):  # one element: 0 · inf is NaN, as PyTorch's 0 / 0
        return s.op("Mul", y, s.scalar(n / (n - 1) if n > 1 else math.inf, t.dtype),
                    hint="unbiased")
    count = s.op("Squeeze", s.dim(n), hint="n")  # 0-d: y may be
    less = s.op("Sub", count, s.const(1, "one"), hint="n-1")
    return s.op("Div", s.op("Mul", y, s.cast(count, "i64", t.dtype), hint="unbiased"),
                s.cast(less, "i64", t.dtype), hint="unbiased")


RULES = {
    "mean": _sum_or_mean("ReduceMean"),
    "sum": _sum_or_mean("ReduceSum"),
    "amax": _extreme("ReduceMax"),
    "amin": _extreme("ReduceMin"),
    "var": var,
}
