"""Padding by mode, as F.pad: `Pad` and `pad`, and what fills a convolution's padding
(`padding_mode`, see extended.py). `constant` fills with a value; `reflect` mirrors without
repeating the edge, `replicate` repeats it, `circular` wraps around. The backward pass adds
each padded cell's gradient back to the cell it was copied from, one strided add per border."""

from __future__ import annotations

import numpy as np

from .base import Kernel

_NUMPY_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
               "circular": "wrap"}
Pairs = list[tuple[int, int]]  # (before, after) per padded axis, from axis `len(x) - len` on


def pad_by_mode(x: np.ndarray, pads: Pairs, mode: str, value: float = 0.0) -> np.ndarray:
    """x padded on its trailing `len(pads)` axes."""
    around = [(0, 0)] * (x.ndim - len(pads)) + list(pads)
    if mode == "constant":
        return np.pad(x, around, constant_values=value)
    return np.pad(x, around, mode=_NUMPY_MODE[mode])


def _fold(g: np.ndarray, axis: int, before: int, after: int, mode: str) -> np.ndarray:
    """dL/dx along one axis from dL/d(padded x): the inner part, plus each border's gradient
    added where that border was copied from."""
    n = g.shape[axis] - before - after

    def at(start: int, stop: int, step: int = 1) -> tuple:
        index = [slice(None)] * g.ndim
        index[axis] = slice(start, stop, step)
        return tuple(index)

    dx = g[at(before, before + n)].copy()
    head, tail = g[at(0, before)], g[at(before + n, before + n + after)]
    if mode == "reflect":  # x[before - i] gets padded cell i; x[n - 2 - j] gets tail cell j
        dx[at(1, before + 1)] += np.flip(head, axis)
        dx[at(n - 1 - after, n - 1)] += np.flip(tail, axis)
    elif mode == "replicate":
        dx[at(0, 1)] += head.sum(axis, keepdims=True)
        dx[at(n - 1, n)] += tail.sum(axis, keepdims=True)
    elif mode == "circular":
        dx[at(n - before, n)] += head
        dx[at(0, after)] += tail
    return dx


def unpad_by_mode(g: np.ndarray, pads: Pairs, mode: str) -> np.ndarray:
    """The backward pass of `pad_by_mode`: the gradient of its input from that of its output."""
    first = g.ndim - len(pads)
    for axis, (before, after) in reversed(list(enumerate(pads, first))):
        g = _fold(g, axis, before, after, mode)
    return g


def _pairs(flat: list[int]) -> Pairs:
    """F.pad's flat (left, right, top, bottom, ...) order, last dimension first, as
    (before, after) pairs in dimension order."""
    return [(flat[i], flat[i + 1]) for i in range(len(flat) - 2, -1, -2)]


def _pad_fwd(a, p, xs, ctx):
    (x,) = xs
    pads = _pairs(a["padding"])
    return pad_by_mode(x, pads, a["mode"], a["value"]), (pads, a["mode"])


def _pad_back(dy, cache):
    return [unpad_by_mode(dy, *cache)], {}


_pad = Kernel(_pad_fwd, _pad_back)
KERNELS: dict[str, Kernel] = {"Pad": _pad, "pad": _pad}
