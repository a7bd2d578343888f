"""The reductions of LANGUAGE.md 10.2 beyond `mean` and `sum`: `amax`, `amin` and `var`."""

from __future__ import annotations

import numpy as np

from .base import Kernel
from .shape import _axes


def _kept(dy: np.ndarray, axes: tuple[int, ...], keepdim: bool) -> np.ndarray:
    """dL/dy with the reduced dimensions back as size 1, to broadcast over the input."""
    return dy if keepdim else np.expand_dims(dy, axes)


def _extreme(f) -> Kernel:
    """torch.amax / torch.amin: equal extremes share the gradient evenly."""
    def forward(a, p, xs, ctx):
        (x,) = xs
        axes = _axes(a, x.ndim)
        y = f(x, axis=axes, keepdims=True)
        hit = x == y
        return (y if a["keepdim"] else np.squeeze(y, axes)), (hit, axes, a["keepdim"])

    def backward(dy, cache):
        hit, axes, keepdim = cache
        share = hit / hit.sum(axis=axes, keepdims=True)
        return [(_kept(dy, axes, keepdim) * share).astype(dy.dtype)], {}

    return Kernel(forward, backward)


def _var_fwd(a, p, xs, ctx):
    (x,) = xs
    axes = _axes(a, x.ndim)
    centred = x - x.mean(axis=axes, keepdims=True)
    n = int(np.prod([x.shape[i] for i in axes])) - (1 if a["unbiased"] else 0)
    # an array even when every dimension is reduced: NumPy would give a scalar, which the
    # tape (tracking arrays) would not follow back
    y = np.asarray((centred * centred).sum(axis=axes, keepdims=a["keepdim"]) / n)
    return y, (centred, n, axes, a["keepdim"])


def _var_back(dy, cache):
    centred, n, axes, keepdim = cache
    return [_kept(dy, axes, keepdim) * centred * (2 / n)], {}


KERNELS: dict[str, Kernel] = {
    "amax": _extreme(np.max), "amin": _extreme(np.min), "var": Kernel(_var_fwd, _var_back),
}
