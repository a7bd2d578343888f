"""Max and average pooling (1-d, 2-d), adaptive average pooling and global average pooling.

Pooling works on one strided view per kernel offset (`windows.regions`): the forward passes
keep a running maximum or sum, and both backward passes put each offset's share back with one
strided add per offset, so overlapping windows accumulate. Windows that do not overlap
(stride >= kernel, the common case) are written instead of added, and when they tile the
whole input nothing is zeroed first.
"""

from __future__ import annotations

import math

import numpy as np

from .base import Kernel
from .windows import channels_last, empty, out_size, pad, regions


def _regions(a, padded: tuple[int, ...]) -> list[tuple]:
    ones = [1] * len(a["kernel"])
    out = out_size(padded[2:], a["kernel"], a["stride"], ones)
    return list(regions(a["kernel"], a["stride"], ones, out))


def _scatter(a, padded: tuple[int, ...], shares, dy: np.ndarray) -> np.ndarray:
    """dL/dx from each kernel offset's share of dL/dy (one per region of the padded input),
    laid out as dL/dy is."""
    apart = all(s >= k for s, k in zip(a["stride"], a["kernel"], strict=True))
    tiled = apart and all(s == k and m % k == 0
                          for m, s, k in zip(padded[2:], a["stride"], a["kernel"], strict=True))
    dxp = empty(padded, dy.dtype, channels_last(dy))
    if not tiled:
        dxp[...] = 0
    for ix, share in zip(_regions(a, padded), shares, strict=True):
        if apart:
            dxp[ix] = share
        else:
            dxp[ix] += share
    return pad(dxp, [[-q, -q] for q in a["padding"]])


def _maxpool_fwd(a, p, xs, ctx):
    (x,) = xs
    xp = pad(x, [[q, q] for q in a["padding"]], -np.inf)
    index = _regions(a, xp.shape)
    y = xp[index[0]].copy(order="K")  # in the input's layout
    for ix in index[1:]:
        np.maximum(y, xp[ix], out=y)
    return y, (a, xp, y)


def _maxpool_back(dy, cache):
    """Each window's gradient goes to its first maximum, the element PyTorch picks."""
    a, xp, y = cache
    taken = np.zeros_like(y, bool)

    def shares():
        for ix in _regions(a, xp.shape):
            first = (xp[ix] == y) & ~taken
            taken[...] |= first
            yield dy * first
    return [_scatter(a, xp.shape, shares(), dy)], {}


def _avgpool_fwd(a, p, xs, ctx):
    (x,) = xs
    xp = pad(x, [[q, q] for q in a["padding"]])  # padded zeros count (count_include_pad)
    index = _regions(a, xp.shape)
    y = xp[index[0]].copy(order="K")
    for ix in index[1:]:
        y += xp[ix]
    y *= 1 / len(index)
    return y, (a, xp.shape)


def _avgpool_back(dy, cache):
    a, padded = cache
    share = dy * (1 / math.prod(a["kernel"]))
    return [_scatter(a, padded, [share] * math.prod(a["kernel"]), dy)], {}


def _bins(n_in: int, n_out: int, dtype) -> np.ndarray:
    """(n_out, n_in) averaging matrix of PyTorch's adaptive bins [floor(i*n/m), ceil((i+1)*n/m))."""
    i = np.arange(n_out)
    start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
    j = np.arange(n_in)
    m = (j >= start[:, None]) & (j < end[:, None])
    return (m / m.sum(1, keepdims=True)).astype(dtype)


def _adaptive_fwd(a, p, xs, ctx):
    (x,) = xs
    ah, aw = (_bins(n, s, x.dtype) for n, s in zip(x.shape[2:], a["size"], strict=True))
    return ah @ x @ aw.T, (ah, aw)


def _adaptive_back(dy, cache):
    ah, aw = cache
    return [ah.T @ dy @ aw], {}


def _global_fwd(a, p, xs, ctx):
    (x,) = xs
    return x.mean(axis=tuple(range(2, x.ndim))), x.shape


def _global_back(dy, shape):
    n = int(np.prod(shape[2:]))
    return [np.broadcast_to((dy / n).reshape(*dy.shape, *[1] * (len(shape) - 2)), shape)], {}


_max = Kernel(_maxpool_fwd, _maxpool_back)
_avg = Kernel(_avgpool_fwd, _avgpool_back)
KERNELS: dict[str, Kernel] = {
    "MaxPool1d": _max, "MaxPool2d": _max, "AvgPool1d": _avg, "AvgPool2d": _avg,
    "AdaptiveAvgPool2d": Kernel(_adaptive_fwd, _adaptive_back),
    "GlobalAvgPool": Kernel(_global_fwd, _global_back),
}
