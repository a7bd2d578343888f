"""Resampling: `Upsample` and `interpolate` (nn.Upsample and F.interpolate), `PixelShuffle` and
`PixelUnshuffle`.

With `scale`, each output size is PyTorch's `floor(float(in) * scale)` in double precision. A
symbolic input size keeps that exact only for a scale with a short binary fraction
(`n / 2^m` with `n < 4096`: 2, 0.5, 1.5, 0.375), for which the product is exact in double
precision and the size is `(n * in) // 2^m`; any other scale (0.1, 1/3) needs a known size.
"""

from __future__ import annotations

import math
from typing import Any

from archdsl.diagnostics import Problem
from archdsl.graph import TensorType
from archdsl.ops.registry import (
    Arg,
    Flops,
    OpDef,
    fmt,
    need_float,
    need_rank,
    numel,
    pair,
    positive_out,
    register,
    show_value,
)
from archdsl.symbolic import Dim, Sym, exact_div, format_dim

MODES = ("nearest", "linear", "bilinear", "bicubic")
_RANKS = {"nearest": (3, 4, 5), "linear": (3,), "bilinear": (4,), "bicubic": (4,)}
_LAYOUTS = {3: "[B, C, L]", 4: "[B, C, H, W]", 5: "[B, C, D, H, W]"}
# Source values read per output element: the `other` work of each mode.
_READS = {"nearest": 0, "linear": 2, "bilinear": 4, "bicubic": 16}
_EXACT_NUMERATOR = 4096  # n * in stays below 2^53 for every in below Limits.max_dim (2^40)


def _positive_numbers(op: str, name: str, v: Any, n: int, sizes: bool) -> list:
    items = list(pair(tuple(v) if isinstance(v, list) else v, n, name, op))
    for x in items:
        ok = isinstance(x, (int, Sym)) if sizes else isinstance(x, (int, float))
        if isinstance(x, bool) or not ok:
            want = "an integer or a tuple of integers" if sizes else \
                "a number or a tuple of numbers"
            raise Problem("E0402", f"`{name}` of `{op}` must be {want}, one per spatial "
                          "dimension", label=f"got {show_value(v)}")
        if not isinstance(x, Sym) and x <= 0:
            raise Problem("E0403", f"`{name}` of `{op}` must be positive",
                          label=f"got {show_value(v)}")
    return items


def scaled_size(op: str, size: Dim, scale: float, x: TensorType) -> Dim:
    """`floor(float(size) * scale)` as PyTorch computes it (see the module's docstring)."""
    if not isinstance(size, Sym):
        return positive_out(op, "output", math.floor(float(size) * scale), x)
    num, den = float(scale).as_integer_ratio()
    if num >= _EXACT_NUMERATOR:
        raise Problem("E0405", f"`{op}` cannot size `{format_dim(size)}` times {scale} "
                      "exactly", label=f"the input {fmt(x)} has a symbolic size",
                      hint="give that size as a number, use `size=`, or a scale such as 2, "
                           "0.5 or 1.5 (a short binary fraction)")
    return (num * size) // den


def _resample_norm(op: str):
    def norm(a: dict, ins: list[TensorType]) -> dict:
        (x,) = ins
        mode = a["mode"]
        need_float(op, x)
        ranks = _RANKS[mode]
        need_rank(op, x, ranks, " or ".join(_LAYOUTS[r] for r in ranks) + f" in mode \"{mode}\"")
        if (a["size"] is None) == (a["scale"] is None):
            raise Problem("E0401", f"`{op}` takes exactly one of `size` and `scale`",
                          label="both given" if a["size"] is not None else "neither given",
                          hint=f"`{op}(scale=2)` or `{op}(size=...)`")
        n = x.rank - 2
        size = None if a["size"] is None else _positive_numbers(op, "size", a["size"], n, True)
        scale = None if a["scale"] is None else [
            float(s) for s in _positive_numbers(op, "scale", a["scale"], n, False)]
        align = a["align_corners"]
        if mode == "nearest":
            if align is not None:
                raise Problem("E0403", f"`align_corners` of `{op}` is only for the "
                              "interpolating modes", label="mode \"nearest\" takes none",
                              hint="choose mode \"linear\", \"bilinear\" or \"bicubic\", or "
                                   "drop `align_corners`")
        elif align is None:
            align = False
        elif not isinstance(align, bool):
            raise Problem("E0402", f"`align_corners` of `{op}` must be `true` or `false`",
                          label=f"got {show_value(align)}")
        return {**a, "size": size, "scale": scale, "align_corners": align}
    return norm


def _resample_shape(op: str):
    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        (x,) = ins
        if a["size"] is not None:
            dims = a["size"]
        else:
            dims = [scaled_size(op, d, s, x) for d, s in zip(x.shape[2:], a["scale"],
                                                              strict=True)]
        return x.with_shape((*x.shape[:2], *dims))
    return shape


for _name, _kind in (("Upsample", "layer"), ("interpolate", "function")):
    register(OpDef(
        name=_name, kind=_kind, category="resample",
        args=(Arg("size", "any", None), Arg("scale", "any", None),
              Arg("mode", "str", "nearest", choices=MODES), Arg("align_corners", "any", None)),
        normalize=_resample_norm(_name), shape=_resample_shape(_name), stem="up",
        output_reusable=True,
        flops=lambda a, ins, out: Flops(other=_READS[a["mode"]] * numel(out.shape)),
        doc="nn.Upsample / F.interpolate with PyTorch's default recompute_scale_factor=None: "
            "`size` (list) or `scale` (list of floats, one per spatial dimension); "
            "`align_corners` is None in mode nearest.",
    ))


def _shuffle_shape(a: dict, ins: list[TensorType]) -> TensorType:
    (x,) = ins
    need_rank("PixelShuffle", x, (4,), "[B, C, H, W]")
    r = a["r"]
    c = exact_div(x.shape[1], r * r)
    if c is None:
        raise Problem("E0303", "the channels of `PixelShuffle` must be a multiple of r²",
                      label=f"{format_dim(x.shape[1])} channels in {fmt(x)}, r² = {r * r}")
    return x.with_shape((x.shape[0], c, x.shape[2] * r, x.shape[3] * r))


def _unshuffle_shape(a: dict, ins: list[TensorType]) -> TensorType:
    (x,) = ins
    need_rank("PixelUnshuffle", x, (4,), "[B, C, H, W]")
    r = a["r"]
    out = [exact_div(d, r) for d in x.shape[2:]]
    for d, q in zip(x.shape[2:], out, strict=True):
        if q is None:
            raise Problem("E0303" if isinstance(d, int) else "E0405",
                          f"the height and width of `PixelUnshuffle` must be multiples of {r}",
                          label=f"{format_dim(d)} in {fmt(x)}",
                          hint="a symbolic size must be written as a multiple, e.g. `2*H`"
                          if isinstance(d, Sym) else None)
    return x.with_shape((x.shape[0], x.shape[1] * r * r, *out))


register(OpDef(name="PixelShuffle", kind="layer", category="resample",
               args=(Arg("r", "int", min=1),), shape=_shuffle_shape, stem="shuffle",
               output_reusable=True, flops=lambda a, ins, out: Flops(),
               doc="[B, C·r², H, W] -> [B, C, H·r, W·r], as nn.PixelShuffle(r)."))
register(OpDef(name="PixelUnshuffle", kind="layer", category="resample",
               args=(Arg("r", "int", min=1),), shape=_unshuffle_shape, stem="unshuffle",
               output_reusable=True, flops=lambda a, ins, out: Flops(),
               doc="[B, C, H·r, W·r] -> [B, C·r², H, W], as nn.PixelUnshuffle(r)."))
