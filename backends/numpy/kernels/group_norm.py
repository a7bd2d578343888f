"""GroupNorm and InstanceNorm1d/2d: each example's channels normalised in groups over their
channels and positions (InstanceNorm: one channel per group), then an optional learned scale
and shift per channel. InstanceNorm with `track_running_stats` keeps BatchNorm's running
statistics in training (the batch's mean of the per-instance ones, unbiased variances) and
normalises with them in evaluation, exactly as BatchNorm's evaluation does."""

from __future__ import annotations

import numpy as np

from .base import Kernel
from .norm import KERNELS as NORM


def _channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) vector broadcast over (B, C, ...)."""
    return v.reshape(1, -1, *[1] * (ndim - 2))


def _normalized(x: np.ndarray, groups: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """x̂ (B, G, n) of each group over its n values, and 1/sqrt(var + eps) (B, G, 1)."""
    xg = x.reshape(x.shape[0], groups, -1)
    xc = xg - xg.mean(-1, keepdims=True)
    inv = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps)
    return xc * inv, inv


def _normalized_back(dxhat: np.ndarray, xhat: np.ndarray, inv: np.ndarray) -> np.ndarray:
    return inv * (dxhat - dxhat.mean(-1, keepdims=True)
                  - xhat * (dxhat * xhat).mean(-1, keepdims=True))


def _grouped(groups, a, p, x) -> tuple[np.ndarray, tuple]:
    xhat, inv = _normalized(x, groups, a["eps"])
    y = xhat.reshape(x.shape)
    if "weight" in p:
        y = y * _channel(p["weight"], x.ndim) + _channel(p["bias"], x.ndim)
    return y, (xhat, inv, p.get("weight"), x.shape)


def _grouped_back(dy, cache):
    xhat, inv, w, shape = cache
    axes = (0, *range(2, dy.ndim))
    grads = {}
    if w is not None:
        grads = {"weight": (dy * xhat.reshape(shape)).sum(axes), "bias": dy.sum(axes)}
        dy = dy * _channel(w, dy.ndim)
    dxhat = dy.reshape(xhat.shape)
    return [_normalized_back(dxhat, xhat, inv).reshape(shape)], grads


def _group_norm_fwd(a, p, xs, ctx):
    return _grouped(a["groups"], a, p, xs[0])


def _instance_norm_fwd(a, p, xs, ctx):
    (x,) = xs
    tracking = a["track_running_stats"]
    if tracking and not ctx.training:
        y, cache = NORM["BatchNorm2d"].forward(a, p, xs, ctx)
        return y, ("running", cache)
    n = int(np.prod(x.shape[2:]))
    if n < 2:  # PyTorch refuses the statistics of one value
        raise ValueError(f"InstanceNorm needs more than one position per channel, got input "
                         f"of shape {x.shape}")
    y, cache = _grouped(x.shape[1], a, p, x)
    if tracking:
        per_instance = x.reshape(*x.shape[:2], -1)
        mean = per_instance.mean(-1).mean(0)
        var = per_instance.var(-1).mean(0) * (n / (n - 1))
        m = a["momentum"]
        p["running_mean"][...] = (1 - m) * p["running_mean"] + m * mean
        p["running_var"][...] = (1 - m) * p["running_var"] + m * var
    return y, ("instance", cache)


def _instance_norm_back(dy, cache):
    stats, inner = cache
    if stats == "running":
        return NORM["BatchNorm2d"].backward(dy, inner)
    return _grouped_back(dy, inner)


_instance = Kernel(_instance_norm_fwd, _instance_norm_back)
KERNELS: dict[str, Kernel] = {
    "GroupNorm": Kernel(_group_norm_fwd, _grouped_back),
    "InstanceNorm1d": _instance, "InstanceNorm2d": _instance,
}
