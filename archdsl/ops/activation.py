"""Activations, both as layers (`|> ReLU`) and as functions (`relu(x)`)."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import ParamSpec, TensorType
from archdsl.ops.init import constant
from archdsl.ops.registry import (
    POSITIVE,
    Arg,
    Flops,
    OpDef,
    always,
    fmt,
    need_float,
    need_known,
    never,
    numel,
    register,
)
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
    "ReLU6": ("relu6", (), 1),
    "Hardswish": ("hardswish", (), 4),
    "Hardsigmoid": ("hardsigmoid", (), 3),
    "Mish": ("mish", (), 8),
    "ELU": ("elu", (Arg("alpha", "float", 1.0),), 4),
    "Softplus": ("softplus", (Arg("beta", "float", 1.0, min=POSITIVE),
                              Arg("threshold", "float", 20.0)), 4),
}


def _elementwise(op: str):
    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        need_float(op, ins[0])
        return ins[0]
    return shape


def _cost(per: int):
    return lambda a, ins, out: Flops(other=per * numel(out.shape))


# ReLU's backward reads only its output, so it may overwrite its input; so may LeakyReLU with
# a positive slope, whose output keeps the input's sign, ReLU6 (0 < y < 6 exactly where
# 0 < x < 6) and ELU with a positive alpha (PyTorch's elu_backward from the result).
_INPLACE = {"ReLU": always, "LeakyReLU": lambda a: a["slope"] > 0, "ReLU6": always,
            "ELU": lambda a: a["alpha"] > 0}

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


for _name, _kind, _what in (("Softmax", "layer", "Softmax"), ("softmax", "function", "Softmax"),
                            ("LogSoftmax", "layer", "Log-softmax"),
                            ("log_softmax", "function", "Log-softmax")):
    register(OpDef(name=_name, kind=_kind, category="activation",
                   args=(Arg("dim", "dim", -1),), normalize=_softmax_norm(_name),
                   shape=lambda a, ins: ins[0], flops=_cost(3),
                   doc=f"{_what} along `dim` (default the last)."))


def _prelu_norm(a: dict, ins: list[TensorType]) -> dict:
    (x,) = ins
    need_float("PReLU", x)
    n = a["num_parameters"]
    if n != 1:
        if x.rank < 2:
            raise Problem("E0303", "`PReLU` with several parameters needs channels (dim 1)",
                          label=f"got {fmt(x)} with num_parameters={n}")
        c = need_known("PReLU", "channel count", x.shape[1])
        if n != c:
            raise Problem("E0403", "`num_parameters` of `PReLU` must be 1 or the channel count",
                          label=f"got {n}, the input {fmt(x)} has {c} channels",
                          hint=f"`PReLU(num_parameters={c})` or `PReLU`")
    return a


register(OpDef(
    name="PReLU", kind="layer", category="activation",
    args=(Arg("num_parameters", "int", 1, min=1), Arg("init", "float", 0.25)),
    normalize=_prelu_norm, shape=lambda a, ins: ins[0], stem="prelu", output_reusable=True,
    params=lambda a, ins: [ParamSpec(name="weight", shape=(a["num_parameters"],),
                                     init=constant(a["init"]))],
    flops=_cost(2),
    doc="max(0, x) + weight * min(0, x), one learned slope or one per channel (dim 1).",
))


register(OpDef(
    name="Dropout", kind="layer", category="activation",
    args=(Arg("p", "float", 0.5, min=0, max=1, max_exclusive=True),),
    shape=lambda a, ins: ins[0], flops=_cost(1), stem="drop",
    training=lambda a: a["p"] > 0, alias=lambda a: a["p"] == 0,
    doc="Zeroes each element with probability p in training and scales the rest by 1/(1-p); "
        "the identity in evaluation.",
))
