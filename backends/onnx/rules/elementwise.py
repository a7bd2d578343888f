"""Arithmetic, comparisons, powers and the elementwise functions. Operands are cast first
to the dtype PyTorch's type promotion gives (archdsl/ops/arith.py). ONNX's arithmetic has
no boolean type, so `+` and `*` of two boolean tensors are `Or` and `And`; Where, Less and
the like take no booleans in ONNX Runtime, so boolean operands go through int32 there."""

from __future__ import annotations

from archdsl.ops.arith import promote, promote_scalar

from ..builder import ELEMENT
from ..site import Rule, Site

_ARITHMETIC = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div"}
_LOGICAL = {"add": "Or", "mul": "And"}  # PyTorch's + and * of two bool tensors
_COMPARE = {"eq": "Equal", "ne": "Equal", "lt": "Less", "le": "LessOrEqual",
            "gt": "Greater", "ge": "GreaterOrEqual"}


def _operands(s: Site, dtype: str) -> list[str]:
    """The inputs cast to `dtype`, with the scalar operand (`x * 0.5`, `1 - x`) in place."""
    xs = [s.cast(x, t.dtype, dtype) for x, t in zip(s.xs, s.ins, strict=True)]
    if len(xs) == 1:
        c = s.scalar(s.args["scalar"], dtype)
        xs = [c, xs[0]] if s.args["scalar_first"] else [xs[0], c]
    return xs


def arithmetic(s: Site) -> str:
    op, dtype = s.node.op, s.out.dtype
    if dtype == "bool":  # the checker lets only + and * of two bool tensors stay bool
        return s.op(_LOGICAL[op], *s.xs)
    return s.op(_ARITHMETIC[op], *_operands(s, dtype))


def compare(s: Site) -> str:
    """Both sides in their promoted dtype (`i < 0.5` compares as f32), booleans ordered as
    int32 (false < true)."""
    if len(s.ins) == 1:
        dtype = promote_scalar(s.ins[0].dtype, s.args["scalar"])
    else:
        dtype = promote(s.ins[0].dtype, s.ins[1].dtype)
    xs = _operands(s, dtype)
    if dtype == "bool" and s.node.op not in ("eq", "ne"):
        xs = [s.cast(x, "bool", "i32") for x in xs]
    y = s.op(_COMPARE[s.node.op], *xs)
    return s.op("Not", y) if s.node.op == "ne" else y


def power(s: Site) -> str:
    dtype = s.out.dtype
    return s.op("Pow", s.cast(s.x, s.ins[0].dtype, dtype), s.scalar(s.args["exponent"], dtype))


def clamp(s: Site) -> str:
    dtype = s.out.dtype
    bounds = ["" if s.args[k] is None else s.scalar(s.args[k], dtype) for k in ("min", "max")]
    return s.op("Clip", s.cast(s.x, s.ins[0].dtype, dtype), *bounds)


def _extreme(op_type: str, logical: str) -> Rule:
    def rule(s: Site) -> str:
        dtype = s.out.dtype
        xs = [s.cast(x, t.dtype, dtype) for x, t in zip(s.xs, s.ins, strict=True)]
        return s.op(logical if dtype == "bool" else op_type, *xs)
    return rule


def _select(s: Site, cond: str, a: str, b: str, dtype: str) -> str:
    """Where(cond, a, b) of operands in `dtype`."""
    if dtype != "bool":
        return s.op("Where", cond, a, b)
    y = s.op("Where", cond, s.cast(a, "bool", "i32"), s.cast(b, "bool", "i32"))
    return s.cast(y, "i32", "bool")


def where(s: Site) -> str:
    """A number operand is held in the arguments `a`/`b`, a tensor is the next input."""
    dtype = s.out.dtype
    tensors = iter(zip(s.xs[1:], s.ins[1:], strict=True))
    operands = []
    for name in ("a", "b"):
        if s.args[name] is None:
            x, t = next(tensors)
            operands.append(s.cast(x, t.dtype, dtype))
        else:
            operands.append(s.scalar(s.args[name], dtype))
    return _select(s, s.xs[0], *operands, dtype)


def masked_fill(s: Site) -> str:
    """`value` in the tensor's dtype: an integer tensor truncates it, as PyTorch does."""
    dtype = s.ins[0].dtype
    return _select(s, s.xs[1], s.scalar(s.args["value"], dtype), s.x, dtype)


def _filled(value: float) -> Rule:
    return lambda s: s.filled(s.op("Shape", s.x), value, s.ins[0].dtype, "fill")


def randn_like(s: Site) -> str:
    """RandomNormalLike: fresh N(0, 1) draws at every run. Under `archdsl.noise` the runtime
    exports the model with the draws as inputs instead (`noise:k` for the k-th
    `randn_like` of the graph, dead ones counted) and feeds them."""
    if s.noise is not None:
        return s.b.graph_input(f"noise:{s.noise[s.node.id]}", s.out)
    if s.ins[0].dtype == "bf16":  # RandomNormalLike draws no bfloat16
        return s.cast(s.op("RandomNormalLike", s.x, dtype=ELEMENT["f32"]), "f32", "bf16")
    return s.op("RandomNormalLike", s.x)


RULES = {
    **{op: arithmetic for op in _ARITHMETIC},
    **{op: compare for op in _COMPARE},
    "neg": lambda s: s.op("Neg", s.x),  # the checker refuses `-` of a bool tensor
    "matmul": lambda s: s.op("MatMul", *s.xs),
    "pow": power,
    "exp": lambda s: s.op("Exp", s.x),
    "log": lambda s: s.op("Log", s.x),
    "sqrt": lambda s: s.op("Sqrt", s.x),
    "rsqrt": lambda s: s.op("Reciprocal", s.op("Sqrt", s.x)),
    "abs": lambda s: s.op("Abs", s.x),
    "clamp": clamp,
    "maximum": _extreme("Max", "Or"),
    "minimum": _extreme("Min", "And"),
    "where": where,
    "masked_fill": masked_fill,
    "zeros_like": _filled(0.0),
    "ones_like": _filled(1.0),
    "randn_like": randn_like,
}
