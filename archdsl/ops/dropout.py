"""Structured dropout: whole channels (`Dropout1d`, `Dropout2d`) or whole residual branches
per example (`DropPath`, stochastic depth). Each is the identity in evaluation; `Dropout`
(elementwise) lives with the activations."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import TensorType
from archdsl.ops.registry import Arg, Flops, OpDef, fmt, need_float, need_rank, numel, register

_P = Arg("p", "float", 0.5, min=0, max=1, max_exclusive=True)


def _per_element(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
    return Flops(other=numel(out.shape))


def _channel_shape(op: str, rank: int, layout: str):
    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        need_float(op, ins[0])
        need_rank(op, ins[0], (rank,), layout)
        return ins[0]
    return shape


for _name, _rank, _layout in (("Dropout1d", 3, "[B, C, L]"), ("Dropout2d", 4, "[B, C, H, W]")):
    register(OpDef(
        name=_name, kind="layer", category="dropout", args=(_P,),
        shape=_channel_shape(_name, _rank, _layout), flops=_per_element, stem="drop",
        training=lambda a: a["p"] > 0, alias=lambda a: a["p"] == 0,
        doc=f"torch.nn.{_name}: in training, zeroes each channel of each example {_layout} "
            "with probability p and scales the rest by 1/(1-p); the identity in evaluation.",
    ))


def _drop_path_shape(a: dict, ins: list[TensorType]) -> TensorType:
    (x,) = ins
    need_float("DropPath", x)
    if x.rank < 1:
        raise Problem("E0303", "`DropPath` drops per example: it needs a batch dimension",
                      label=f"got {fmt(x)}")
    return x


register(OpDef(
    name="DropPath", kind="layer", category="dropout",
    args=(Arg("p", "float", 0.0, min=0, max=1, max_exclusive=True),),
    shape=_drop_path_shape, flops=_per_element, stem="drop_path",
    training=lambda a: a["p"] > 0, alias=lambda a: a["p"] == 0,
    doc="Stochastic depth (timm's DropPath): in training, zeroes each example's whole input "
        "with probability p and scales survivors by 1/(1-p); the identity in evaluation.",
))
