"""Initial values of parameters and buffers, as PyTorch's modules initialise them.

`describe` turns a layer's parameter into a plain, printable recipe (`("uniform", -b, b)`,
`("normal", 0.0, 1.0)`, ...) that generated code can carry as data; `draw` samples it.
"""

from __future__ import annotations

import math

import numpy as np

from archdsl.graph import Layer, ParamSpec

Init = tuple  # ("uniform", low, high) | ("normal", mean, std) | ("trunc_normal", std, cut)
# | ("zeros",) | ("ones",)


def _fan_in_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """PyTorch's fan_in, fan_out: dims 1 and 0 times the receptive field."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {shape}")
    field = math.prod(shape[2:])
    return shape[1] * field, shape[0] * field


def _xavier(shape: tuple[int, ...]) -> Init:
    fan_in, fan_out = _fan_in_out(shape)
    bound = math.sqrt(6 / (fan_in + fan_out))
    return ("uniform", -bound, bound)


def _kaiming(weight: tuple[int, ...]) -> Init:
    """Linear/Conv: kaiming_uniform(a=sqrt(5)) is U(+-1/sqrt(fan_in)); the bias uses it too."""
    bound = 1 / math.sqrt(_fan_in_out(weight)[0])
    return ("uniform", -bound, bound)


def named(init: str, shape: tuple[int, ...]) -> Init:
    """The `init` choices of `Parameter` (docs/language.md)."""
    return {"normal": lambda: ("normal", 0.0, 1.0), "zeros": lambda: ("zeros",),
            "ones": lambda: ("ones",), "uniform": lambda: ("uniform", 0.0, 1.0),
            "xavier_uniform": lambda: _xavier(shape),
            "trunc_normal": lambda: ("trunc_normal", 0.02, 0.04)}[init]()


_NORMS = ("BatchNorm1d", "BatchNorm2d", "LayerNorm")


def describe(layer: Layer, spec: ParamSpec) -> Init:
    """The recipe PyTorch's module for `layer.op` uses for parameter or buffer `spec`."""
    op, name = layer.op, spec.name
    if spec.init != "default":
        return named(spec.init, spec.shape)
    if spec.dtype in ("i32", "i64") or op in _NORMS:
        return ("ones",) if name in ("weight", "running_var") else ("zeros",)
    if op in ("Embedding", "PositionalEmbedding"):
        return ("normal", 0.0, 1.0)
    if op in ("RNN", "LSTM", "GRU"):
        bound = 1 / math.sqrt(layer.args["hidden"])
        return ("uniform", -bound, bound)
    if op == "MultiHeadAttention" and name != "out_proj.weight":
        return _xavier(spec.shape) if name.endswith("weight") else ("zeros",)
    # Linear, convolutions, out_proj.weight, AdditiveAttention: a bias uses its weight's fan_in
    shapes = {p.name: p.shape for p in layer.params}
    return _kaiming(shapes[name.removesuffix("bias") + "weight"] if name.endswith("bias")
                    else spec.shape)


def draw(init: Init, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    kind, *a = init
    if kind == "uniform":
        return rng.uniform(a[0], a[1], shape)
    if kind == "normal":
        return rng.normal(a[0], a[1], shape)
    if kind == "trunc_normal":  # redraw outside +-cut, as trunc_normal_(std, -cut, cut)
        x = rng.normal(0, a[0], shape)
        while (bad := np.abs(x) > a[1]).any():
            x[bad] = rng.normal(0, a[0], int(bad.sum()))
        return x
    return np.zeros(shape) if kind == "zeros" else np.ones(shape)
