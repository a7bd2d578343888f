"""Tensor arithmetic written with operators: `+ - * /` with NumPy broadcasting, unary `-`,
`**` by a number, the comparisons (a `bool` result), and `@` with torch.matmul's batching. One
operand may be a scalar (`x * 0.5`), held in the node's `scalar` argument; `scalar_first` marks
`1 - x`. Result dtypes are PyTorch's type promotion (`promote`, `promote_scalar`)."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import FLOAT_DTYPES, TensorType
from archdsl.ops.registry import Arg, Flops, OpDef, fmt, numel, register
from archdsl.symbolic import Dim

_ORDER = ("bool", "i32", "i64", "f16", "bf16", "f32", "f64")


def promote(a: str, b: str) -> str:
    """torch.promote_types: the wider kind wins; f16 with bf16 gives f32."""
    if {a, b} == {"f16", "bf16"}:
        return "f32"
    return a if _ORDER.index(a) >= _ORDER.index(b) else b


def promote_scalar(dtype: str, scalar: int | float) -> str:
    """A tensor with a Python number: a float makes an integer or bool tensor `f32`, an int
    makes a bool tensor `i64` (torch.result_type); otherwise the tensor's dtype stays."""
    if isinstance(scalar, float) and dtype not in FLOAT_DTYPES:
        return "f32"
    if dtype == "bool" and not isinstance(scalar, bool):
        return "i64"
    return dtype


def broadcast(op: str, a: TensorType, b: TensorType) -> tuple[Dim, ...]:
    out: list[Dim] = []
    for i in range(1, max(a.rank, b.rank) + 1):
        da = a.shape[-i] if i <= a.rank else 1
        db = b.shape[-i] if i <= b.rank else 1
        if da == db or db == 1:
            out.append(da)
        elif da == 1:
            out.append(db)
        else:
            raise Problem("E0302", f"shapes do not match for `{op}`",
                          label=f"left is {fmt(a)}, right is {fmt(b)}",
                          hint=_broadcast_hint(op, a, b))
    return tuple(reversed(out))


def _broadcast_hint(op: str, a: TensorType, b: TensorType) -> str | None:
    if op == "+" and a.rank == b.rank == 4 and a.shape[1] != b.shape[1]:
        return "a shortcut needs a projection when the stride or the channel count changes"
    if a.rank == b.rank:
        return "sizes must be equal or 1 in every dimension"
    return None


_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _no_bool(op: str, symbol: str, t: TensorType) -> None:
    """PyTorch refuses `-` on bool tensors (subtraction and negation)."""
    if t.dtype == "bool":
        raise Problem("E0308", f"`{symbol}` is not defined for a bool tensor",
                      label=f"got bool{fmt(t)}",
                      hint="invert a mask with `where(m, false_value, true_value)`, or convert "
                           "it first: `m * 1`")


def _binary_shape(op: str):
    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        symbol = _SYMBOL.get(op) or _COMPARE[op]
        if len(ins) == 1:
            x = ins[0]
            shape_ = x.shape
            dtype = promote_scalar(x.dtype, a["scalar"])
        else:
            x, y = ins
            shape_ = broadcast(symbol, x, y)
            dtype = promote(x.dtype, y.dtype)
        if op == "sub":
            for t in ins:
                _no_bool(op, symbol, t)
        if op in _COMPARE:
            return TensorType(dtype="bool", shape=shape_)
        if op == "div" and dtype not in FLOAT_DTYPES:
            dtype = "f32"
        return TensorType(dtype=dtype, shape=shape_)
    return shape


def _elementwise_cost(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
    return Flops(other=numel(out.shape))


for _op in (*_SYMBOL, *_COMPARE):
    _symbol = _SYMBOL.get(_op) or _COMPARE[_op]
    register(OpDef(name=_op, kind="function", category="arith", inputs=("a", "b"), min_inputs=1,
                   args=(Arg("scalar", "any", None), Arg("scalar_first", "bool", False)),
                   shape=_binary_shape(_op), flops=_elementwise_cost,
                   output_reusable=_op in ("add", "sub"), meta={"internal": True},
                   doc=f"Elementwise `{_symbol}` with broadcasting"
                   + (", giving a bool tensor." if _op in _COMPARE else ".")))


def _neg_shape(a: dict, ins: list[TensorType]) -> TensorType:
    _no_bool("neg", "-", ins[0])
    return ins[0]


register(OpDef(name="neg", kind="function", category="arith", args=(),
               shape=_neg_shape, flops=_elementwise_cost,
               meta={"internal": True}, doc="Unary minus."))


def _pow_shape(a: dict, ins: list[TensorType]) -> TensorType:
    """torch.pow(tensor, number); an integer tensor to a negative integer power is refused."""
    (x,) = ins
    p = a["exponent"]
    if x.dtype not in FLOAT_DTYPES and isinstance(p, int) and p < 0:
        raise Problem("E0308", "an integer tensor to a negative integer power",
                      label=f"{x.dtype}{fmt(x)} ** {p}",
                      hint=f"use a float exponent: `x ** {float(p)}`")
    return TensorType(dtype=promote_scalar(x.dtype, p), shape=x.shape)


register(OpDef(name="pow", kind="function", category="arith", args=(Arg("exponent", "any"),),
               shape=_pow_shape, flops=_elementwise_cost, meta={"internal": True},
               doc="`x ** p`: elementwise power by a number (torch.pow)."))


def _matmul_shape(a: dict, ins: list[TensorType]) -> TensorType:
    x, y = ins
    if x.rank < 1 or y.rank < 1:
        raise Problem("E0305", "`@` needs tensors of rank 1 or more",
                      label=f"left is {fmt(x)}, right is {fmt(y)}")
    if x.dtype != y.dtype:
        raise Problem("E0308", "`@` needs tensors of one dtype",
                      label=f"left is {x.dtype}, right is {y.dtype}")
    xs = list(x.shape) if x.rank > 1 else [1, *x.shape]
    ys = list(y.shape) if y.rank > 1 else [*y.shape, 1]
    if xs[-1] != ys[-2]:
        raise Problem("E0305", "inner dimensions differ for `@`",
                      label=f"left is {fmt(x)}, right is {fmt(y)}: {xs[-1]} vs {ys[-2]}",
                      hint="transpose one side: `transpose(w, 0, 1)`")
    batch = broadcast("@", TensorType(shape=tuple(xs[:-2])), TensorType(shape=tuple(ys[:-2])))
    out = [*batch, xs[-2], ys[-1]]
    if x.rank == 1:
        out.pop(-2)
    if y.rank == 1:
        out.pop(-1)
    return TensorType(dtype=promote(x.dtype, y.dtype), shape=tuple(out))


def _matmul_flops(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
    x = ins[0]
    k = x.shape[-1]
    return Flops(flops=2 * numel(out.shape) * k)


register(OpDef(name="matmul", kind="function", category="arith", inputs=("a", "b"), args=(),
               shape=_matmul_shape, flops=_matmul_flops, meta={"internal": True},
               doc="Matrix product with torch.matmul's broadcasting of batch dimensions."))

register(OpDef(name="param", kind="function", category="arith", inputs=(), min_inputs=0,
               args=(Arg("name", "str"), Arg("shape", "any")),
               shape=lambda a, ins: TensorType(dtype="f32", shape=tuple(a["shape"])),
               flops=lambda a, ins, out: Flops(), meta={"internal": True},
               doc="Reads a parameter of a bound layer (`wte.weight`); `layer` names the layer."))

register(OpDef(name="input", kind="function", category="arith", inputs=(), min_inputs=0,
               args=(Arg("name", "str"),), shape=lambda a, ins: ins[0],
               flops=lambda a, ins, out: Flops(), meta={"internal": True},
               doc="A model input."))
