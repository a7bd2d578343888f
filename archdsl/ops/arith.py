"""Tensor arithmetic written with operators: `+ - * /` with NumPy broadcasting, unary `-`,
and `@` with torch.matmul's batching. One operand may be a scalar (`x * 0.5`), held in the
node's `scalar` argument; `scalar_first` marks `1 - x`."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import FLOAT_DTYPES, TensorType
from archdsl.ops.registry import Arg, Flops, OpDef, fmt, numel, register
from archdsl.symbolic import Dim

_ORDER = ("bool", "i32", "i64", "f16", "bf16", "f32", "f64")


def promote(a: str, b: str) -> str:
    return a if _ORDER.index(a) >= _ORDER.index(b) else b


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


def _no_bool(op: str, ins: list[TensorType]) -> None:
    """PyTorch refuses `-` (binary or unary) on a bool tensor; `+` and `*` of two are `or` and
    `and`, and a bool tensor meeting a number is promoted like an integer one."""
    for t in ins:
        if t.dtype == "bool":
            raise Problem("E0308", f"`{op}` of a bool tensor", label=f"got bool{fmt(t)}",
                          hint="count in integers first: `mask * 1`")


def _binary_shape(op: str):
    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        if op == "sub":
            _no_bool("-", ins)
        if len(ins) == 1:
            x = ins[0]
            dtype = x.dtype
            if isinstance(a["scalar"], float) and dtype not in FLOAT_DTYPES:
                dtype = "f32"
            elif dtype == "bool":
                dtype = "i64"  # bool + 1 is an i64 tensor, as in PyTorch
            if op == "div" and dtype not in FLOAT_DTYPES:
                dtype = "f32"
            return TensorType(dtype=dtype, shape=x.shape)
        x, y = ins
        dtype = promote(x.dtype, y.dtype)
        if op == "div" and dtype not in FLOAT_DTYPES:
            dtype = "f32"
        return TensorType(dtype=dtype, shape=broadcast(_SYMBOL[op], x, y))
    return shape


for _op in _SYMBOL:
    register(OpDef(name=_op, kind="function", category="arith", inputs=("a", "b"), min_inputs=1,
                   args=(Arg("scalar", "any", None), Arg("scalar_first", "bool", False)),
                   shape=_binary_shape(_op),
                   flops=lambda a, ins, out: Flops(other=numel(out.shape)),
                   meta={"internal": True},
                   doc=f"Elementwise `{_SYMBOL[_op]}` with broadcasting."))

def _neg_shape(a: dict, ins: list[TensorType]) -> TensorType:
    _no_bool("-", ins)
    return ins[0]


register(OpDef(name="neg", kind="function", category="arith", args=(),
               shape=_neg_shape, flops=lambda a, ins, out: Flops(other=numel(out.shape)),
               meta={"internal": True}, doc="Unary minus."))


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
