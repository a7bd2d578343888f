"""Elementwise activations, softmax and dropout. Layers and functions share one kernel."""

from __future__ import annotations

import math

import numpy as np

from .base import Kernel, dropout_mask, sigmoid, softmax, softmax_back

_SQRT_PI = math.sqrt(math.pi)


def erf(x: np.ndarray) -> np.ndarray:
    """Error function to about double precision (NumPy has none).

    |x| < 3: the everywhere-positive series exp(-x^2) * sum (2x^2)^n x / (2n+1)!!, so no
    cancellation; |x| >= 3: the continued fraction of erfc, evaluated bottom-up.
    """
    a = np.abs(x).astype(np.float64)
    out = np.ones_like(a)
    small = a < 3
    s = a[small]
    term = s.copy()
    total = s.copy()
    n = 0
    while np.any(term > 1e-17 * total):
        n += 1
        term = term * (2 * s * s) / (2 * n + 1)
        total += term
    out[small] = 2 / _SQRT_PI * np.exp(-s * s) * total
    big = a[~small]
    frac = np.zeros_like(big)
    for k in range(40, 0, -1):
        frac = (k / 2) / (big + frac)
    out[~small] = 1 - np.exp(-big * big) / _SQRT_PI / (big + frac)
    return (np.sign(x) * out).astype(x.dtype)


def _pointwise(f, df) -> Kernel:
    """A kernel from y = f(x) and dy/dx = df(x, y)."""
    def forward(a, p, xs, ctx):
        (x,) = xs
        y = f(x, a)
        return y, (x, y, a)

    def backward(dy, cache):
        x, y, a = cache
        return [dy * df(x, y, a)], {}
    return Kernel(forward, backward)


def _gelu(x, a):
    if a["approximate"] == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def _gelu_grad(x, y, a):
    if a["approximate"] == "tanh":
        c = math.sqrt(2 / math.pi)
        t = np.tanh(c * (x + 0.044715 * x**3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    cdf = 0.5 * (1 + erf(x / math.sqrt(2)))
    return cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _silu_grad(x, y, a):
    s = sigmoid(x)
    return s * (1 + x * (1 - s))


relu = _pointwise(lambda x, a: np.maximum(x, 0), lambda x, y, a: (x > 0).astype(x.dtype))
leaky_relu = _pointwise(lambda x, a: np.where(x > 0, x, a["slope"] * x),
                        lambda x, y, a: np.where(x > 0, 1, a["slope"]).astype(x.dtype))
gelu = _pointwise(_gelu, _gelu_grad)
tanh = _pointwise(lambda x, a: np.tanh(x), lambda x, y, a: 1 - y * y)
sigmoid_k = _pointwise(lambda x, a: sigmoid(x), lambda x, y, a: y * (1 - y))
silu = _pointwise(lambda x, a: x * sigmoid(x), _silu_grad)
identity = Kernel(lambda a, p, xs, ctx: (xs[0], None), lambda dy, cache: ([dy], {}))


def _softmax_fwd(a, p, xs, ctx):
    y = softmax(xs[0], a["dim"])
    return y, (y, a["dim"])


softmax_k = Kernel(_softmax_fwd, lambda dy, c: ([softmax_back(c[0], dy, c[1])], {}))


def _dropout_fwd(a, p, xs, ctx):
    (x,) = xs
    mask = dropout_mask(x.shape, a["p"], ctx, x.dtype)
    return (x if mask is None else x * mask), mask


def _dropout_back(dy, mask):
    return [dy if mask is None else dy * mask], {}


dropout = Kernel(_dropout_fwd, _dropout_back)

KERNELS: dict[str, Kernel] = {
    "ReLU": relu, "relu": relu, "LeakyReLU": leaky_relu, "GELU": gelu, "gelu": gelu,
    "Tanh": tanh, "tanh": tanh, "Sigmoid": sigmoid_k, "sigmoid": sigmoid_k,
    "SiLU": silu, "silu": silu, "Identity": identity, "Softmax": softmax_k,
    "softmax": softmax_k, "Dropout": dropout,
}
