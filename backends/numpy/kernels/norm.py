"""Batch normalisation (training and evaluation, PyTorch's running statistics) and LayerNorm."""

from __future__ import annotations

import numpy as np

from .base import Kernel, row_blocks


def _per_channel(x: np.ndarray) -> np.ndarray:
    """(B, C, ...) as (B, C, positions), a view for the contiguous arrays kernels make."""
    return x.reshape(x.shape[0], x.shape[1], -1)


def _bn_fwd(a, p, xs, ctx):
    """y = (x - mean) inv w + b per channel; the cache keeps x - mean, from which the
    backward pass needs two sums per channel (`einsum`, one pass each)."""
    (x,) = xs
    shape = (1, -1, *[1] * (x.ndim - 2))  # broadcast a (C,) vector over (B, C, ...)
    n = x.size // x.shape[1]
    if ctx.training:
        if n < 2:
            raise ValueError(f"BatchNorm needs more than one value per channel in training, "
                             f"got input of shape {x.shape}")
        mean = x.mean(axis=(0, *range(2, x.ndim)))
        xc = x - mean.reshape(shape)
        var = np.einsum("bcn,bcn->c", _per_channel(xc), _per_channel(xc)) / n
        m = a["momentum"]
        p["running_mean"][...] = (1 - m) * p["running_mean"] + m * mean
        p["running_var"][...] = (1 - m) * p["running_var"] + m * var * (n / (n - 1))
        p["num_batches_tracked"] += 1
    else:
        xc, var = x - p["running_mean"].reshape(shape), p["running_var"]
    inv = (1 / np.sqrt(var + a["eps"])).astype(x.dtype)
    w = p["weight"] if a["affine"] else np.ones_like(inv)
    y = xc * (inv * w).reshape(shape)
    if a["affine"]:
        y += p["bias"].reshape(shape)
    return y, (xc, inv, w, a["affine"], ctx.training)


def _bn_back(dy, cache):
    """With xhat = xc inv: dL/dx = w inv (dy - mean dy - xhat mean(dy xhat)) in training,
    w inv dy in evaluation, as three per-channel coefficients of dy, xc and 1."""
    xc, inv, w, affine, training = cache
    shape = (1, -1, *[1] * (dy.ndim - 2))
    sum_dy = _per_channel(dy).sum(axis=(0, 2))
    sum_dy_xhat = np.einsum("bcn,bcn->c", _per_channel(dy), _per_channel(xc)) * inv
    grads = {"weight": sum_dy_xhat, "bias": sum_dy} if affine else {}
    dx = dy * (w * inv).reshape(shape)
    if training:
        n = dy.size // dy.shape[1]
        dx -= xc * (w * inv * inv * sum_dy_xhat / n).reshape(shape)
        dx -= (w * inv * sum_dy / n).reshape(shape)
    return [dx], grads


def _ln_fwd(a, p, xs, ctx):
    """Block by block of rows, so the chain stays in cache (`row_blocks`); row sums of
    products by `einsum` (one pass, no temporary)."""
    (x,) = xs
    n = x.shape[-1]
    x2 = x.reshape(-1, n)
    xhat, y = np.empty_like(x2), np.empty_like(x2)
    inv = np.empty((len(x2), 1), x.dtype)
    for r in row_blocks(len(x2), n):
        h, v = xhat[r], inv[r]
        np.subtract(x2[r], x2[r].mean(-1, keepdims=True), out=h)
        np.einsum("ij,ij->i", h, h, out=v[:, 0])
        v *= 1 / n
        v += a["eps"]
        np.sqrt(v, out=v)
        np.reciprocal(v, out=v)
        h *= v
        np.multiply(h, p["weight"], out=y[r])
        y[r] += p["bias"]
    return y.reshape(x.shape), (xhat, inv, p["weight"])


def _ln_back(dy, cache):
    xhat, inv, w = cache  # (rows, n), (rows, 1)
    n = xhat.shape[-1]
    d2 = dy.reshape(-1, n)
    dx = np.empty_like(d2)
    dw, db = np.zeros(n, dy.dtype), np.zeros(n, dy.dtype)
    for r in row_blocks(len(d2), n):
        g, h = dx[r], xhat[r]
        dw += np.einsum("ij,ij->j", d2[r], h)
        db += d2[r].sum(0)
        np.multiply(d2[r], w, out=g)  # dL/dxhat
        mean_g = g.mean(-1, keepdims=True)
        mean_gx = np.einsum("ij,ij->i", g, h)[:, None]
        mean_gx *= 1 / n
        g -= mean_g
        g -= h * mean_gx
        g *= inv[r]
    return [dx.reshape(dy.shape)], {"weight": dw, "bias": db}


_bn = Kernel(_bn_fwd, _bn_back)
KERNELS: dict[str, Kernel] = {
    "BatchNorm1d": _bn, "BatchNorm2d": _bn, "LayerNorm": Kernel(_ln_fwd, _ln_back),
}
