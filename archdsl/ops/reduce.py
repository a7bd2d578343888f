"""Reductions beyond `mean` and `sum` (archdsl/ops/shape.py): `amax`, `amin` and `var`, each
over one dimension, a list of them or every one (`dim` omitted), with `keepdim`."""

from __future__ import annotations

from archdsl.graph import TensorType
from archdsl.ops.registry import Arg, Flops, OpDef, need_float, numel, register
from archdsl.ops.shape import reduce_norm, reduced


def _per_input(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
    return Flops(other=numel(ins[0].shape))


for _name in ("amax", "amin"):
    register(OpDef(name=_name, kind="function", category="reduce",
                   args=(Arg("dim", "any", None), Arg("keepdim", "bool", False)),
                   normalize=reduce_norm(_name), shape=lambda a, ins: reduced(ins[0], a),
                   flops=_per_input,
                   doc=f"torch.{_name}(x, dim, keepdim=false): the "
                       f"{'largest' if _name == 'amax' else 'smallest'} element, any dtype."))


def _var_shape(a: dict, ins: list[TensorType]) -> TensorType:
    need_float("var", ins[0])
    return reduced(ins[0], a)


register(OpDef(name="var", kind="function", category="reduce",
               args=(Arg("dim", "any", None), Arg("keepdim", "bool", False),
                     Arg("unbiased", "bool", False)),
               normalize=reduce_norm("var"), shape=_var_shape, flops=_per_input,
               doc="torch.var(x, dim, keepdim, correction=1 if unbiased else 0): the population "
                   "variance by default, as norms use it."))
