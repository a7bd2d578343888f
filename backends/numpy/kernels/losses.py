"""The losses of the `train` section, each returning (mean loss, dloss/dprediction).

cross_entropy takes logits (N, C) or (N, T, C) with integer targets (N,) or (N, T): the class
dimension is always the last one (PyTorch's F.cross_entropy wants it at dim 1, so for
sequence outputs it equals F.cross_entropy(logits.transpose(1, 2), targets)).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .base import sigmoid, softmax

Loss = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


def cross_entropy(logits: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    t = target[..., None].astype(np.intp)
    grad = softmax(logits)
    np.put_along_axis(grad, t, np.take_along_axis(grad, t, -1) - 1, -1)
    return float(-np.take_along_axis(logp, t, -1).mean()), grad / target.size


def bce_with_logits(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    loss = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    return float(loss.mean()), ((sigmoid(x) - y) / x.size).astype(x.dtype)


def mse(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    d = (x - y).astype(x.dtype, copy=False)
    value = float((d * d).mean())
    d *= 2 / x.size
    return value, d


def l1(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    d = x - y
    return float(np.abs(d).mean()), (np.sign(d) / x.size).astype(x.dtype)


LOSSES: dict[str, Loss] = {"cross_entropy": cross_entropy, "bce_with_logits": bce_with_logits,
                           "mse": mse, "l1": l1}
