"""Activations, both as layers (`|> ReLU`) and as functions (`relu(x)`)."""

from __future__ import annotations

from archdsl.graph import TensorType
from archdsl.ops.registry import Arg, Flops, OpDef, always, need_float, never, numel, register
from archdsl.ops.shape import normalize_axis

# name -> (function name or None, extra args, elementwise cost per element)
_ACTIVATIONS: dict[str, tuple[str | None, tuple[Arg, ...], int]] = {
    "ReLU": ("relu", (), 1),
    "LeakyReLU": (None, (Arg("slope", "float", 0.01),), 1),
    "GELU": ("gelu", (Arg("approximate", "str", "none", choices=("none", "tanh")),), 8),
    "Tanh": ("tanh", (), 4),
    "Sigmoid": ("sigmoid", (), 4),
    "SiLU": ("silu", (), 5),
    "Identity": (None, (), 0),
}


def _elementwise(op: str):
    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        need_float(op, ins[0])
        return ins[0]
    return shape


def _cost(per: int):
    return lambda a, ins, out: Flops(other=per * numel(out.shape))


# ReLU's backward reads only its output, so it may overwrite its input; so may LeakyReLU with
# a positive slope, whose output keeps the input's sign.
_INPLACE = {"ReLU": always, "LeakyReLU": lambda a: a["slope"] > 0}

for _layer, (_fn, _args, _per) in _ACTIVATIONS.items():
    register(OpDef(name=_layer, kind="layer", category="activation", args=_args,
                   shape=_elementwise(_layer) if _layer != "Identity" else (lambda a, ins: ins[0]),
                   flops=_cost(_per), inplace=_INPLACE.get(_layer, never),
                   alias=always if _layer == "Identity" else never,
                   doc=f"Elementwise {_layer}, as torch.nn.{_layer}."))
    if _fn:
        register(OpDef(name=_fn, kind="function", category="activation", args=_args,
                       shape=_elementwise(_fn), flops=_cost(_per),
                       inplace=_INPLACE.get(_layer, never),
                       doc=f"Elementwise {_fn}(x), the same as the layer `{_layer}`."))


def _softmax_norm(op: str):
    def norm(a: dict, ins: list[TensorType]) -> dict:
        need_float(op, ins[0])
        return {**a, "dim": normalize_axis(op, a["dim"], ins[0].rank, ins[0])}
    return norm


for _name, _kind in (("Softmax", "layer"), ("softmax", "function")):
    register(OpDef(name=_name, kind=_kind, category="activation",
                   args=(Arg("dim", "dim", -1),), normalize=_softmax_norm(_name),
                   shape=lambda a, ins: ins[0], flops=_cost(3),
                   doc="Softmax along `dim` (default the last)."))


register(OpDef(
    name="Dropout", kind="layer", category="activation",
    args=(Arg("p", "float", 0.5, min=0, max=1, max_exclusive=True),),
    shape=lambda a, ins: ins[0], flops=_cost(1), stem="drop",
    training=lambda a: a["p"] > 0, alias=lambda a: a["p"] == 0,
    doc="Zeroes each element with probability p in training and scales the rest by 1/(1-p); "
        "the identity in evaluation.",
))
