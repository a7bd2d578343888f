"""The activations of LANGUAGE.md 10.3 (layers and functions share one kernel): ReLU6,
Hardswish, Hardsigmoid, Mish, ELU, Softplus, PReLU and LogSoftmax. Each gradient is PyTorch's
at the kinks (which side of a bound a point belongs to)."""

from __future__ import annotations

import numpy as np

from .activation import _pointwise
from .base import Kernel, sigmoid


def _hardswish_grad(x, y, a):
    """PyTorch: 0 up to -3, x/3 + 1/2 between, 1 from 3 on."""
    return np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1)).astype(x.dtype)


def _softplus(x, a):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch)."""
    bx = a["beta"] * x
    return np.where(bx > a["threshold"], x, np.logaddexp(0, bx) / a["beta"]).astype(x.dtype)


def _softplus_grad(x, y, a):
    bx = a["beta"] * x
    return np.where(bx > a["threshold"], 1, sigmoid(bx)).astype(x.dtype)


def _mish_grad(x, y, a):
    t = np.tanh(np.logaddexp(0, x))
    return t + x * sigmoid(x) * (1 - t * t)


def _elu(x, a):
    return np.where(x > 0, x, a["alpha"] * np.expm1(np.minimum(x, 0))).astype(x.dtype)


def _elu_grad(x, y, a):
    return np.where(x > 0, 1, a["alpha"] * np.exp(np.minimum(x, 0))).astype(x.dtype)


relu6 = _pointwise(lambda x, a: np.clip(x, 0, 6),
                   lambda x, y, a: ((x > 0) & (x < 6)).astype(x.dtype))
hardswish = _pointwise(lambda x, a: x * np.clip(x + 3, 0, 6) / 6, _hardswish_grad)
hardsigmoid = _pointwise(lambda x, a: np.clip(x + 3, 0, 6) / 6,
                         lambda x, y, a: ((x > -3) & (x < 3)).astype(x.dtype) / 6)
mish = _pointwise(lambda x, a: x * np.tanh(np.logaddexp(0, x)), _mish_grad)
elu = _pointwise(_elu, _elu_grad)
softplus = _pointwise(_softplus, _softplus_grad)


def _slopes(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """PReLU's weight broadcast over x: one slope, or one per channel (dim 1)."""
    return w.reshape(1, -1, *[1] * (x.ndim - 2)) if w.size > 1 else w.reshape(())


def _prelu_fwd(a, p, xs, ctx):
    (x,) = xs
    w = _slopes(p["weight"], x)
    return np.where(x > 0, x, w * x), (x, p["weight"])


def _prelu_back(dy, cache):
    x, w = cache
    neg = x <= 0
    dw = np.where(neg, dy * x, 0)
    axes = tuple(i for i in range(x.ndim) if not (w.size > 1 and i == 1))
    return [np.where(neg, _slopes(w, x) * dy, dy)], {"weight": dw.sum(axes).reshape(w.shape)}


def _log_softmax_fwd(a, p, xs, ctx):
    (x,) = xs
    z = x - x.max(axis=a["dim"], keepdims=True)
    y = z - np.log(np.exp(z).sum(axis=a["dim"], keepdims=True))
    return y, (y, a["dim"])


def _log_softmax_back(dy, cache):
    y, dim = cache
    return [dy - np.exp(y) * dy.sum(axis=dim, keepdims=True)], {}


log_softmax = Kernel(_log_softmax_fwd, _log_softmax_back)

KERNELS: dict[str, Kernel] = {
    "ReLU6": relu6, "relu6": relu6, "Hardswish": hardswish, "hardswish": hardswish,
    "Hardsigmoid": hardsigmoid, "hardsigmoid": hardsigmoid, "Mish": mish, "mish": mish,
    "ELU": elu, "elu": elu, "Softplus": softplus, "softplus": softplus,
    "PReLU": Kernel(_prelu_fwd, _prelu_back),
    "LogSoftmax": log_softmax, "log_softmax": log_softmax,
}
