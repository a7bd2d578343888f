"""Batch normalisation (training and evaluation, PyTorch's running statistics) and LayerNorm."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Kernel, row_blocks
from .windows import column_sums, first_view, last_view


@dataclass(frozen=True)
class _Channels:
    """How a (B, C, ...) array is viewed per channel: as (rows, C) when its channels lie
    innermost in memory (a channels-last convolution's output), else as (B, C, positions);
    either is a view of the arrays kernels make, and the outputs keep that layout."""

    last: bool
    shape: tuple[int, ...]

    @staticmethod
    def of(x: np.ndarray) -> _Channels:
        return _Channels(bool(last_view(x).flags.c_contiguous), x.shape)

    def view(self, x: np.ndarray) -> np.ndarray:
        if self.last:
            return last_view(x).reshape(-1, x.shape[1])
        return x.reshape(x.shape[0], x.shape[1], -1)

    def back(self, v: np.ndarray) -> np.ndarray:
        """A view made by `view` (or an array of its shape) as (B, C, ...)."""
        b, c, *size = self.shape
        return first_view(v.reshape(b, *size, c)) if self.last else v.reshape(self.shape)

    def vector(self, v: np.ndarray) -> np.ndarray:
        """A (C,) vector broadcast over a view."""
        return v if self.last else v.reshape(1, -1, 1)

    def sum(self, v: np.ndarray) -> np.ndarray:
        return column_sums(v) if self.last else v.sum(axis=(0, 2))

    def sum_products(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Per channel, the sum of u * v (`einsum`: one pass, no temporary)."""
        return np.einsum("rc,rc->c" if self.last else "bcn,bcn->c", u, v)


def _bn_fwd(a, p, xs, ctx):
    """y = (x - mean) inv w + b per channel; the cache keeps x - mean, from which the
    backward pass needs two sums per channel."""
    (x,) = xs
    ch = _Channels.of(x)
    v = ch.view(x)
    n = x.size // x.shape[1]
    if ctx.training:
        if n < 2:
            raise ValueError(f"BatchNorm needs more than one value per channel in training, "
                             f"got input of shape {x.shape}")
        mean = ch.sum(v) / n
        xc = v - ch.vector(mean)
        var = ch.sum_products(xc, xc) / n
        m = a["momentum"]
        p["running_mean"][...] = (1 - m) * p["running_mean"] + m * mean
        p["running_var"][...] = (1 - m) * p["running_var"] + m * var * (n / (n - 1))
        p["num_batches_tracked"] += 1
    else:
        xc, var = v - ch.vector(p["running_mean"]), p["running_var"]
    inv = (1 / np.sqrt(var + a["eps"])).astype(x.dtype)
    w = p["weight"] if a["affine"] else np.ones_like(inv)
    y = xc * ch.vector(inv * w)
    if a["affine"]:
        y += ch.vector(p["bias"])
    return ch.back(y), (ch, xc, inv, w, a["affine"], ctx.training)


def _bn_back(dy, cache):
    """With xhat = xc inv: dL/dx = w inv (dy - mean dy - xhat mean(dy xhat)) in training,
    w inv dy in evaluation, as three per-channel coefficients of dy, xc and 1."""
    ch, xc, inv, w, affine, training = cache
    g = ch.view(dy)  # a copy only where dy's layout differs from x's
    sum_dy = ch.sum(g)
    sum_dy_xhat = ch.sum_products(g, xc) * inv
    grads = {"weight": sum_dy_xhat, "bias": sum_dy} if affine else {}
    dx = g * ch.vector(w * inv)
    if training:
        n = xc.size // inv.size
        dx -= xc * ch.vector(w * inv * inv * sum_dy_xhat / n)
        dx -= ch.vector(w * inv * sum_dy / n)
    return [ch.back(dx)], grads


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
