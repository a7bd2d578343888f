"""How each parameter starts: PyTorch's initialisations as small recipes an op declares.

A recipe is a tuple that survives JSON. Some are relative to shapes, so generated code can
write them for any size (`("fan_in_uniform", "weight")`); `resolve` turns any recipe into
one of the plain distributions every backend can draw from:

- `("uniform", low, high)`, `("normal", mean, std)`: as written;
- `("trunc_normal", std, cut)`: N(0, std) redrawn outside [-cut, cut] (`trunc_normal_`);
- `("zeros",)`, `("ones",)`, `("constant", value)`;
- `("fan_in_uniform", name)`: U(±1/sqrt(fan_in of parameter `name`)), the default of Linear,
  the convolutions (`kaiming_uniform_(a=sqrt(5))` and its bias rule) and recurrent layers;
- `("xavier_uniform",)`: `nn.init.xavier_uniform_` of this parameter's shape;
- `("kaiming_uniform",)`, `("kaiming_normal",)`: `nn.init.kaiming_*_` with its defaults
  (a=0, fan_in, leaky_relu);
- `("zero_row", row, *inner)`: the recipe `inner`, then row `row` set to zero (the padding row
  of `nn.Embedding(padding_idx=row)`). It stays a `zero_row` once resolved, around the
  resolved `inner`.

fan_in is PyTorch's: `shape[1] * prod(shape[2:])`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

Init = tuple

ZEROS: Init = ("zeros",)
ONES: Init = ("ones",)
STANDARD_NORMAL: Init = ("normal", 0.0, 1.0)
XAVIER_UNIFORM: Init = ("xavier_uniform",)


def fan_in_uniform(of: str) -> Init:
    return ("fan_in_uniform", of)


def constant(value: float) -> Init:
    return ("constant", value)


def zero_row(inner: Init, row: int) -> Init:
    return ("zero_row", row, *inner)


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """PyTorch's fan_in and fan_out: dims 1 and 0 times the receptive field."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def resolve(init: Init, shape: tuple[int, ...], shapes: Mapping[str, tuple[int, ...]]) -> Init:
    """`init` as a plain distribution for a parameter of `shape` among the layer's `shapes`."""
    kind = init[0]
    if kind == "fan_in_uniform":
        bound = 1 / math.sqrt(fans(shapes[init[1]])[0])
        return ("uniform", -bound, bound)
    if kind == "xavier_uniform":
        fan_in, fan_out = fans(shape)
        bound = math.sqrt(6 / (fan_in + fan_out))
        return ("uniform", -bound, bound)
    if kind == "kaiming_uniform":
        bound = math.sqrt(6 / fans(shape)[0])  # gain sqrt(2) * sqrt(3 / fan_in)
        return ("uniform", -bound, bound)
    if kind == "kaiming_normal":
        return ("normal", 0.0, math.sqrt(2 / fans(shape)[0]))
    if kind == "zero_row":
        return ("zero_row", init[1], *resolve(init[2:], shape, shapes))
    return tuple(init)


# The `init` choices of the `Parameter` layer (docs/language.md), by name; `"constant"` takes
# its `value` from the layer's arguments.
NAMED: dict[str, Init] = {
    "normal": STANDARD_NORMAL,
    "zeros": ZEROS,
    "ones": ONES,
    "uniform": ("uniform", 0.0, 1.0),
    "xavier_uniform": XAVIER_UNIFORM,
    "trunc_normal": ("trunc_normal", 0.02, 0.04),
    "kaiming_uniform": ("kaiming_uniform",),
    "kaiming_normal": ("kaiming_normal",),
}
FAN_IN_INITS = ("xavier_uniform", "kaiming_uniform", "kaiming_normal")  # need 2+ dimensions
