"""Max and average pooling (1-d, 2-d), adaptive average pooling and global average pooling.

Pooling works on one strided view per kernel offset (see `conv.regions`): max pooling keeps
a running maximum, and both backward passes add each offset's share back with one strided add
per offset, so overlapping windows accumulate.
"""

from __future__ import annotations

import numpy as np

from .base import Kernel
from .conv import pad, regions, windows


def _geometry(a, xp: np.ndarray) -> tuple[list[tuple], list[list[int]]]:
    out = [(m - k) // s + 1 for m, k, s in zip(xp.shape[2:], a["kernel"], a["stride"],
                                                strict=True)]
    return list(regions(a["kernel"], a["stride"], [1] * len(out), out)), \
        [[-q, -q] for q in a["padding"]]


def _maxpool_fwd(a, p, xs, ctx):
    (x,) = xs
    xp = pad(x, [[q, q] for q in a["padding"]], -np.inf)
    index, _ = _geometry(a, xp)
    y = xp[index[0]].copy()
    for ix in index[1:]:
        np.maximum(y, xp[ix], out=y)
    return y, (a, xp, y)


def _maxpool_back(dy, cache):
    """Each window's gradient goes to its first maximum, the element PyTorch picks."""
    a, xp, y = cache
    dxp = np.zeros(xp.shape, dy.dtype)
    index, unpad = _geometry(a, xp)
    taken = np.zeros(y.shape, bool)
    for ix in index:
        first = (xp[ix] == y) & ~taken
        taken |= first
        dxp[ix] += dy * first
    return [pad(dxp, unpad)], {}


def _avgpool_fwd(a, p, xs, ctx):
    (x,) = xs
    n = len(a["kernel"])
    xp = pad(x, [[q, q] for q in a["padding"]])  # padded zeros count (count_include_pad)
    win = windows(xp, a["kernel"], a["stride"], [1] * n)
    return win.mean(axis=tuple(range(-n, 0))), (a, xp.shape)


def _avgpool_back(dy, cache):
    a, shape = cache
    dxp = np.zeros(shape, dy.dtype)
    index, unpad = _geometry(a, dxp)
    share = dy / len(index)
    for ix in index:
        dxp[ix] += share
    return [pad(dxp, unpad)], {}


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
