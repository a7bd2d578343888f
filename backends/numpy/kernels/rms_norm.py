"""RMSNorm over the last dimension: x / sqrt(mean(x²) + eps), times `weight` when affine."""

from __future__ import annotations

import numpy as np

from .base import Kernel


def _rms_fwd(a, p, xs, ctx):
    (x,) = xs
    inv = 1 / np.sqrt((x * x).mean(-1, keepdims=True) + a["eps"])
    xhat = x * inv
    w = p.get("weight")
    return (xhat if w is None else xhat * w), (xhat, inv, w)


def _rms_back(dy, cache):
    xhat, inv, w = cache
    grads = {}
    if w is not None:
        grads["weight"] = (dy * xhat).reshape(-1, dy.shape[-1]).sum(0)
        dy = dy * w
    return [inv * (dy - xhat * (dy * xhat).mean(-1, keepdims=True))], grads


KERNELS: dict[str, Kernel] = {"RMSNorm": Kernel(_rms_fwd, _rms_back)}
