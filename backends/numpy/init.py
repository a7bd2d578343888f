"""Initial values of parameters and buffers, drawn from the recipes the ops declare.

`describe` turns a layer's parameter into a plain, printable recipe (`("uniform", -b, b)`,
`("normal", 0.0, 1.0)`, ...) that generated code can carry as data; `draw` samples it.
"""

from __future__ import annotations

import numpy as np

from archdsl.graph import Layer, ParamSpec
from archdsl.ops.init import Init, resolve


def describe(layer: Layer, spec: ParamSpec) -> Init:
    """The plain distribution PyTorch's module for `layer.op` draws `spec` from."""
    return resolve(spec.init, spec.shape, {p.name: p.shape for p in layer.params})


def draw(init: Init, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    kind, *a = init
    if kind == "zero_row":  # nn.Embedding's padding row
        x = draw(tuple(a[1:]), shape, rng)
        x[a[0]] = 0
        return x
    if kind == "uniform":
        return rng.uniform(a[0], a[1], shape)
    if kind == "normal":
        return rng.normal(a[0], a[1], shape)
    if kind == "trunc_normal":  # redraw outside +-cut, as trunc_normal_(std, -cut, cut)
        x = rng.normal(0, a[0], shape)
        while (bad := np.abs(x) > a[1]).any():
            x[bad] = rng.normal(0, a[0], int(bad.sum()))
        return x
    if kind == "constant":
        return np.full(shape, a[0])
    return np.zeros(shape) if kind == "zeros" else np.ones(shape)
