"""Pooling. PyTorch's `ceil_mode` output size drops a last window that would start past the
input and its left padding; ONNX's formula in opset 17 does not, so a window that ceil mode
adds is written as extra padding after the input (which a maximum never picks and an
average's divisor leaves out), and the `ceil_mode` attribute is set only where a size is
symbolic, which the checker allows only when no window can be dropped. An average's divisor
counts the cells inside the padded input (`count_include_pad`) or inside the input, never
the cells ceil mode lets hang past it: with an overhang, explicit zero padding makes those
cells part of the input and the average counts input cells only."""

from __future__ import annotations

from typing import Any

from ..site import Site
from .conv import pad


def _windows(s: Site) -> tuple[list[int], list[int], bool]:
    """Padding before and after each spatial axis, and whether ONNX's ceil mode is needed."""
    a, x = s.args, s.ins[0]
    before, after, ceil = [], [], False
    for h, k, st, p, n in zip(x.shape[2:], a["kernel"], a["stride"], a["padding"],
                              s.out.shape[2:], strict=True):
        extra = 0
        if a["ceil_mode"] and isinstance(h, int):
            extra = max(0, (n - 1) * st + k - (h + 2 * p))
        elif a["ceil_mode"]:
            ceil = True
        before.append(p)
        after.append(p + extra)
    return before, after, ceil


def max_pool(s: Site) -> str:
    a = s.args
    before, after, ceil = _windows(s)
    return s.op("MaxPool", s.x, kernel_shape=a["kernel"], strides=a["stride"],
                pads=before + after, ceil_mode=1 if ceil else None)


def avg_pool(s: Site) -> str:
    a = s.args
    before, after, ceil = _windows(s)
    attrs: dict[str, Any] = {"kernel_shape": a["kernel"], "strides": a["stride"],
                             "ceil_mode": 1 if ceil else None}
    overhang = ceil or after != before
    if a["count_include_pad"] and not overhang:
        return s.op("AveragePool", s.x, pads=before + after, count_include_pad=1, **attrs)
    x = s.x
    if a["count_include_pad"]:  # the padding becomes input, the overhang stays padding
        x = pad(s, x, {axis: (p, p) for axis, p in enumerate(before, start=2)}, "constant")
        after = [q - p for p, q in zip(before, after, strict=True)]
        before = [0] * len(before)
    return s.op("AveragePool", x, pads=before + after, count_include_pad=0, **attrs)


def _adaptive(pool: str, reduce: str):
    def rule(s: Site) -> str:
        """PyTorch's bins [floor(i n / m), ceil((i + 1) n / m)): one pooling when every bin
        has the same size, otherwise each bin reduced, one axis at a time (the mean or
        maximum over a rectangle is that of its rows' means or maxima)."""
        sizes, out = s.ins[0].shape[2:], s.args["size"]
        if all(n % m == 0 for n, m in zip(sizes, out, strict=True)):
            kernel = [n // m for n, m in zip(sizes, out, strict=True)]
            return s.op(pool, s.x, kernel_shape=kernel, strides=kernel)
        y = s.x
        for axis, (n, m) in enumerate(zip(sizes, out, strict=True), start=2):
            if n == m:
                continue
            axes = s.const([axis], "axis")
            bins = [(i * n // m, -(-(i + 1) * n // m)) for i in range(m)]
            parts = [s.op(reduce, s.op("Slice", y, s.const([lo], "start"),
                                       s.const([hi], "end"), axes, hint=f"bin{axis}"),
                          axes=[axis], keepdims=1, hint=f"bin{axis}") for lo, hi in bins]
            y = s.op("Concat", *parts, axis=axis)
        return y
    return rule


def _global(reduce: str):
    return lambda s: s.op(reduce, s.x, axes=list(range(2, s.ins[0].rank)), keepdims=0)


RULES = {
    **{f"MaxPool{n}d": max_pool for n in (1, 2, 3)},
    **{f"AvgPool{n}d": avg_pool for n in (1, 2, 3)},
    "AdaptiveAvgPool1d": _adaptive("AveragePool", "ReduceMean"),
    "AdaptiveAvgPool2d": _adaptive("AveragePool", "ReduceMean"),
    "AdaptiveMaxPool2d": _adaptive("MaxPool", "ReduceMax"),
    "GlobalAvgPool": _global("ReduceMean"),
    "GlobalMaxPool": _global("ReduceMax"),
}
