"""Max and average pooling (1-d, 2-d), adaptive average pooling and global average pooling.

Backward passes scatter window gradients back with one `np.bincount` over the flat indices
of every window element (a window view of `arange`), so overlapping windows accumulate.
"""

from __future__ import annotations

import numpy as np

from .base import Kernel
from .conv import pad, windows


def _scatter(shape: tuple[int, ...], index: np.ndarray, values: np.ndarray) -> np.ndarray:
    flat = np.bincount(index.ravel(), weights=values.ravel(), minlength=int(np.prod(shape)))
    return flat.reshape(shape).astype(values.dtype, copy=False)


def _window_index(shape: tuple[int, ...], kernel, stride) -> np.ndarray:
    """Flat indices into an array of `shape`, windowed like `windows`: (B, C, *out, *kernel)."""
    return windows(np.arange(int(np.prod(shape))).reshape(shape), kernel, stride, [1] * len(kernel))


def _maxpool_fwd(a, p, xs, ctx):
    (x,) = xs
    n = len(a["kernel"])
    xp = pad(x, [[q, q] for q in a["padding"]], -np.inf)
    win = windows(xp, a["kernel"], a["stride"], [1] * n)
    flat = win.reshape(*win.shape[:2 + n], -1)  # (B, C, *out, K)
    arg = flat.argmax(-1)[..., None]
    return np.take_along_axis(flat, arg, -1)[..., 0], (a, xp.shape, arg)


def _maxpool_back(dy, cache):
    a, shape, arg = cache
    n = len(a["kernel"])
    idx = _window_index(shape, a["kernel"], a["stride"])
    idx = np.take_along_axis(idx.reshape(*idx.shape[:2 + n], -1), arg, -1)
    dxp = _scatter(shape, idx, dy)
    return [pad(dxp, [[-q, -q] for q in a["padding"]])], {}


def _avgpool_fwd(a, p, xs, ctx):
    (x,) = xs
    n = len(a["kernel"])
    xp = pad(x, [[q, q] for q in a["padding"]])  # padded zeros count (count_include_pad)
    win = windows(xp, a["kernel"], a["stride"], [1] * n)
    return win.mean(axis=tuple(range(-n, 0))), (a, xp.shape)


def _avgpool_back(dy, cache):
    a, shape = cache
    n = len(a["kernel"])
    idx = _window_index(shape, a["kernel"], a["stride"])
    g = np.broadcast_to((dy / np.prod(a["kernel"]))[(..., *[None] * n)], idx.shape)
    return [pad(_scatter(shape, idx, g), [[-q, -q] for q in a["padding"]])], {}


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
