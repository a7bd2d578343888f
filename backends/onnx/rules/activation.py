"""Activations, softmaxes and dropouts (the input itself in evaluation). Each is its ONNX op
where opset 17 has one with PyTorch's meaning, otherwise PyTorch's formula: GELU with Erf or
Tanh (Gelu is opset 20), Mish as x · tanh(softplus(x)) (Mish is opset 18), SiLU, Softplus
with PyTorch's `beta` and `threshold`."""

from __future__ import annotations

import math

from ..site import Rule, Site
from .norm import per_channel


def _unary(op_type: str) -> Rule:
    return lambda s: s.op(op_type, s.x)


def gelu(s: Site) -> str:
    """PyTorch's formulas: x/2 (1 + erf(x / sqrt 2)), or with tanh, x/2 (1 + tanh(sqrt(2/pi)
    (x + 0.044715 x^3)))."""
    dtype, x = s.ins[0].dtype, s.x
    if s.args.get("approximate", "none") == "tanh":
        cube = s.op("Mul", s.op("Mul", x, x), x)
        inner = s.op("Add", x, s.op("Mul", cube, s.scalar(0.044715, dtype)))
        curve = s.op("Tanh", s.op("Mul", inner, s.scalar(math.sqrt(2 / math.pi), dtype)))
    else:
        curve = s.op("Erf", s.op("Mul", x, s.scalar(1 / math.sqrt(2), dtype)))
    half = s.op("Mul", x, s.scalar(0.5, dtype))
    return s.op("Mul", half, s.op("Add", curve, s.scalar(1.0, dtype)))


def silu(s: Site) -> str:
    return s.op("Mul", s.x, s.op("Sigmoid", s.x))


def mish(s: Site) -> str:
    return s.op("Mul", s.x, s.op("Tanh", s.op("Softplus", s.x)))


def relu6(s: Site) -> str:
    dtype = s.ins[0].dtype
    return s.op("Clip", s.x, s.scalar(0.0, dtype), s.scalar(6.0, dtype))


def softplus(s: Site) -> str:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    a, dtype, x = s.args, s.ins[0].dtype, s.x
    scaled = x if a["beta"] == 1 else s.op("Mul", x, s.scalar(a["beta"], dtype), hint="beta_x")
    y = s.op("Softplus", scaled)
    if a["beta"] != 1:
        y = s.op("Div", y, s.scalar(a["beta"], dtype), hint="over_beta")
    linear = s.op("Greater", scaled, s.scalar(a["threshold"], dtype), hint="threshold")
    return s.op("Where", linear, x, y, hint="threshold")


def prelu(s: Site) -> str:
    """One slope, or one per channel (dim 1)."""
    weight, rank = s.param("weight"), s.ins[0].rank
    if s.args["num_parameters"] > 1:
        weight = per_channel(s, weight, rank)
    return s.op("PRelu", s.x, weight)


def alias(s: Site) -> str:
    """Dropout and Identity: the input itself in evaluation."""
    return s.x


RULES = {
    "ReLU": _unary("Relu"),
    "relu": _unary("Relu"),
    "LeakyReLU": lambda s: s.op("LeakyRelu", s.x, alpha=s.args["slope"]),
    "GELU": gelu,
    "gelu": gelu,
    "Tanh": _unary("Tanh"),
    "tanh": _unary("Tanh"),
    "Sigmoid": _unary("Sigmoid"),
    "sigmoid": _unary("Sigmoid"),
    "SiLU": silu,
    "silu": silu,
    "ReLU6": relu6,
    "relu6": relu6,
    "Hardswish": _unary("HardSwish"),
    "hardswish": _unary("HardSwish"),
    "Hardsigmoid": lambda s: s.op("HardSigmoid", s.x, alpha=1 / 6, beta=0.5),
    "hardsigmoid": lambda s: s.op("HardSigmoid", s.x, alpha=1 / 6, beta=0.5),
    "Mish": mish,
    "mish": mish,
    "ELU": lambda s: s.op("Elu", s.x, alpha=s.args["alpha"]),
    "elu": lambda s: s.op("Elu", s.x, alpha=s.args["alpha"]),
    "Softplus": softplus,
    "softplus": softplus,
    "PReLU": prelu,
    "Softmax": lambda s: s.op("Softmax", s.x, axis=s.args["dim"]),
    "softmax": lambda s: s.op("Softmax", s.x, axis=s.args["dim"]),
    "LogSoftmax": lambda s: s.op("LogSoftmax", s.x, axis=s.args["dim"]),
    "log_softmax": lambda s: s.op("LogSoftmax", s.x, axis=s.args["dim"]),
    "Dropout": alias,
    "Dropout1d": alias,
    "Dropout2d": alias,
    "DropPath": alias,
    "Identity": alias,
}
