"""Batch normalisation (training and evaluation, PyTorch's running statistics) and LayerNorm."""

from __future__ import annotations

import numpy as np

from .base import Kernel


def _bn_fwd(a, p, xs, ctx):
    (x,) = xs
    axes = (0, *range(2, x.ndim))
    shape = (1, -1, *[1] * (x.ndim - 2))  # broadcast a (C,) vector over (B, C, ...)
    if ctx.training:
        n = x.size // x.shape[1]
        if n < 2:
            raise ValueError(f"BatchNorm needs more than one value per channel in training, "
                             f"got input of shape {x.shape}")
        mean, var = x.mean(axes), x.var(axes)
        m = a["momentum"]
        p["running_mean"][...] = (1 - m) * p["running_mean"] + m * mean
        p["running_var"][...] = (1 - m) * p["running_var"] + m * var * (n / (n - 1))
        p["num_batches_tracked"] += 1
    else:
        mean, var = p["running_mean"], p["running_var"]
    inv = 1 / np.sqrt(var + a["eps"])
    xhat = (x - mean.reshape(shape)) * inv.reshape(shape)
    y = xhat * p["weight"].reshape(shape) + p["bias"].reshape(shape) if a["affine"] else xhat
    return y, (xhat, inv, p.get("weight"), shape, axes, ctx.training)


def _bn_back(dy, cache):
    xhat, inv, w, shape, axes, training = cache
    grads = {"weight": (dy * xhat).sum(axes), "bias": dy.sum(axes)} if w is not None else {}
    dxhat = dy if w is None else dy * w.reshape(shape)
    if training:
        dxhat = dxhat - dxhat.mean(axes, keepdims=True) \
            - xhat * (dxhat * xhat).mean(axes, keepdims=True)
    return [dxhat * inv.reshape(shape)], grads


def _ln_fwd(a, p, xs, ctx):
    (x,) = xs
    mean = x.mean(-1, keepdims=True)
    inv = 1 / np.sqrt(x.var(-1, keepdims=True) + a["eps"])
    xhat = (x - mean) * inv
    return xhat * p["weight"] + p["bias"], (xhat, inv, p["weight"])


def _ln_back(dy, cache):
    xhat, inv, w = cache
    lead = tuple(range(dy.ndim - 1))
    dxhat = dy * w
    dx = inv * (dxhat - dxhat.mean(-1, keepdims=True)
                - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return [dx], {"weight": (dy * xhat).sum(lead), "bias": dy.sum(lead)}


_bn = Kernel(_bn_fwd, _bn_back)
KERNELS: dict[str, Kernel] = {
    "BatchNorm1d": _bn, "BatchNorm2d": _bn, "LayerNorm": Kernel(_ln_fwd, _ln_back),
}
