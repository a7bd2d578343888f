"""Elementwise functions beyond the operators: `exp log sqrt rsqrt abs`, `clamp`, `maximum`,
`minimum`, `where`, `masked_fill`, and the tensors made like another (`zeros_like`,
`ones_like`, `randn_like`). Dtypes follow PyTorch's type promotion; none counts FLOPs."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import TensorType
from archdsl.ops.arith import broadcast, promote, promote_scalar
from archdsl.ops.registry import Arg, Flops, OpDef, fmt, need_float, numel, register


def _per_element(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
    return Flops(other=numel(out.shape))


def _floating(op: str):
    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        need_float(op, ins[0])
        return ins[0]
    return shape


for _name, _torch in (("exp", "exp"), ("log", "log"), ("sqrt", "sqrt"), ("rsqrt", "rsqrt"),
                      ("abs", "abs")):
    register(OpDef(name=_name, kind="function", category="elementwise", args=(),
                   shape=_floating(_name), flops=_per_element,
                   doc=f"Elementwise torch.{_torch} of a floating tensor."))


def _clamp_norm(a: dict, ins: list[TensorType]) -> dict:
    lo, hi = a["min"], a["max"]
    if lo is None and hi is None:
        raise Problem("E0401", "`clamp` needs at least one bound", label="no `min` or `max`",
                      hint="`clamp(x, min=0.0)`, `clamp(x, max=6.0)` or both")
    if lo is not None and hi is not None and lo > hi:
        raise Problem("E0403", "`min` of `clamp` is above its `max`",
                      label=f"min {lo}, max {hi}",
                      hint="PyTorch would give `max` everywhere; swap the bounds")
    return a


def _clamp_shape(a: dict, ins: list[TensorType]) -> TensorType:
    dtype = ins[0].dtype
    for bound in (a["min"], a["max"]):
        if bound is not None:
            dtype = promote_scalar(dtype, bound)
    return TensorType(dtype=dtype, shape=ins[0].shape)


register(OpDef(name="clamp", kind="function", category="elementwise",
               args=(Arg("min", "number", None), Arg("max", "number", None)),
               normalize=_clamp_norm, shape=_clamp_shape, flops=_per_element,
               doc="torch.clamp(x, min, max) with number bounds; at least one."))


def _binary(op: str):
    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        x, y = ins
        return TensorType(dtype=promote(x.dtype, y.dtype), shape=broadcast(op, x, y))
    return shape


for _name in ("maximum", "minimum"):
    register(OpDef(name=_name, kind="function", category="elementwise", inputs=("a", "b"),
                   args=(), shape=_binary(_name), flops=_per_element,
                   doc=f"torch.{_name}: elementwise, broadcasting, of two tensors."))


def need_bool(op: str, what: str, t: TensorType) -> None:
    if t.dtype != "bool":
        raise Problem("E0308", f"the {what} of `{op}` must be a bool tensor",
                      label=f"got {t.dtype}{fmt(t)}",
                      hint="a comparison gives one: `x > 0`")


def _where_shape(a: dict, ins: list[TensorType]) -> TensorType:
    """The broadcast of the condition and the tensor operands; the dtype promotes `a` and `b`
    as torch.where does, `f32` when both are numbers (LANGUAGE.md 10.2)."""
    cond, *tensors = ins
    need_bool("where", "condition", cond)
    shape = cond
    for t in tensors:
        shape = TensorType.model_construct(dtype=t.dtype, shape=broadcast("where", shape, t))
    operands = iter(tensors)
    dtypes = [next(operands).dtype if a[k] is None else a[k] for k in ("a", "b")]
    if all(not isinstance(d, str) for d in dtypes):
        dtype = "f32"
    elif all(isinstance(d, str) for d in dtypes):
        dtype = promote(*dtypes)
    else:
        tensor_dtype = next(d for d in dtypes if isinstance(d, str))
        dtype = promote_scalar(tensor_dtype, next(d for d in dtypes if not isinstance(d, str)))
    return TensorType(dtype=dtype, shape=shape.shape)


register(OpDef(name="where", kind="function", category="elementwise",
               inputs=("cond", "a", "b"), number_inputs=("a", "b"), args=(),
               shape=_where_shape, flops=_per_element,
               doc="torch.where(cond, a, b): `a` where `cond` holds, else `b`; `a` and `b` "
                   "are tensors or numbers (a number is held in the argument of its name)."))


def _masked_fill_norm(a: dict, ins: list[TensorType]) -> dict:
    x, mask = ins
    need_bool("masked_fill", "mask", mask)
    if broadcast("masked_fill", x, mask) != x.shape:
        raise Problem("E0302", "the mask of `masked_fill` must broadcast to the tensor's shape",
                      label=f"tensor {fmt(x)}, mask {fmt(mask)}",
                      hint="insert size-1 dimensions: `unsqueeze(mask, 1)`")
    return a


register(OpDef(name="masked_fill", kind="function", category="elementwise",
               inputs=("x", "mask"), args=(Arg("value", "number"),),
               normalize=_masked_fill_norm, shape=lambda a, ins: ins[0], flops=_per_element,
               doc="Tensor.masked_fill: `value` where the bool mask holds; the tensor's dtype."))

register(OpDef(name="zeros_like", kind="function", category="elementwise", args=(),
               shape=lambda a, ins: ins[0], flops=lambda a, ins, out: Flops(),
               doc="Zeros of the input's shape and dtype."))
register(OpDef(name="ones_like", kind="function", category="elementwise", args=(),
               shape=lambda a, ins: ins[0], flops=lambda a, ins, out: Flops(),
               doc="Ones of the input's shape and dtype."))
register(OpDef(name="randn_like", kind="function", category="elementwise", args=(),
               shape=_floating("randn_like"), flops=_per_element,
               doc="Standard normal noise of the input's shape and dtype, fresh at every call "
                   "and for every example, in training and evaluation alike; "
                   "`archdsl.noise(draws)` replaces the draws (LANGUAGE.md 10.2)."))
