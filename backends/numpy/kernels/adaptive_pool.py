"""Pooling to a fixed size: `AdaptiveAvgPool1d`, `AdaptiveMaxPool2d` (PyTorch's bins
[floor(i·n/m), ceil((i+1)·n/m)), which may overlap) and `GlobalMaxPool`."""

from __future__ import annotations

import numpy as np

from .base import Kernel
from .pool import _bins
from .reduce import KERNELS as REDUCE


def _avg1d_fwd(a, p, xs, ctx):
    (x,) = xs
    bins = _bins(x.shape[2], a["size"][0], x.dtype)  # (out, in)
    return x @ bins.T, bins


def _bin_members(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, widest bin) input indices of each bin; a shorter bin repeats its last index,
    which changes no maximum and, coming after it, is never the first one."""
    i = np.arange(n_out)
    start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
    width = int((end - start).max())
    return np.minimum(start[:, None] + np.arange(width), end[:, None] - 1)


def _max2d_fwd(a, p, xs, ctx):
    """Each bin's maximum; the gradient goes to its first maximum in row-major order, as
    PyTorch's kernel scans."""
    (x,) = xs
    b, c, h, w = x.shape
    rows, cols = (_bin_members(n, m) for n, m in zip((h, w), a["size"], strict=True))
    win = x[:, :, rows[:, :, None, None], cols[None, None]]  # (B, C, oh, kh, ow, kw)
    win = win.transpose(0, 1, 2, 4, 3, 5).reshape(b, c, *a["size"], -1)
    offsets = (rows[:, None, :, None] * w + cols[None, :, None, :]).reshape(*a["size"], -1)
    first = win.argmax(-1)[..., None]
    where = np.take_along_axis(np.broadcast_to(offsets, win.shape), first, -1)[..., 0]
    return np.take_along_axis(win, first, -1)[..., 0], (where, x.shape)


def _max2d_back(dy, cache):
    where, shape = cache
    b, c = shape[:2]
    dx = np.zeros((b * c, shape[2] * shape[3]), dy.dtype)
    rows = np.arange(b * c)[:, None]
    np.add.at(dx, (rows, where.reshape(b * c, -1)), dy.reshape(b * c, -1))
    return [dx.reshape(shape)], {}


def _global_max(a, p, xs, ctx):
    (x,) = xs
    return REDUCE["amax"].forward({"dim": list(range(2, x.ndim)), "keepdim": False}, p, xs, ctx)


KERNELS: dict[str, Kernel] = {
    "AdaptiveAvgPool1d": Kernel(_avg1d_fwd, lambda dy, bins: ([dy @ bins], {})),
    "AdaptiveMaxPool2d": Kernel(_max2d_fwd, _max2d_back),
    "GlobalMaxPool": Kernel(_global_max, REDUCE["amax"].backward),
}
