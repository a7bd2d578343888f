"""Elementwise activations, softmax and dropout. Layers and functions share one kernel."""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial.chebyshev import Chebyshev, cheb2poly

from .base import BLOCK, Kernel, blocks, dropout_mask, sigmoid, softmax, softmax_back

_SQRT_PI = math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2 * math.pi)
_TANH_C, _TANH_K = math.sqrt(2 / math.pi), 0.044715  # GELU's tanh form


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


# The float32 normal CDF: Phi(x) = (1 + tanh(x P(x^2))) / 2 on |x| <= CDF_LIMIT; x is clipped
# outside, which moves Phi by at most 1 - Phi(5.5) = 1.9e-8.
CDF_LIMIT, CDF_DEGREE = 5.5, 12


def _cdf_coefficients(limit: float, degree: int) -> np.ndarray:
    """P's coefficients, highest power first, in s = x^2 - limit^2 / 2 (centred, so float32
    Horner steps do not cancel): the Chebyshev interpolant, on x^2 in [0, limit^2], of the
    exact atanh(2 Phi(x) - 1) / x = atanh(1 - erfc(x / sqrt 2)) / x, from `math.erfc`."""
    def target(v: np.ndarray) -> np.ndarray:
        x = np.sqrt(v)  # Chebyshev points of the first kind: never 0
        e = np.array([math.erfc(t / math.sqrt(2)) for t in x])
        return 0.5 * np.log(2 / e - 1) / x

    half = limit * limit / 2
    fit = Chebyshev.interpolate(target, degree, domain=[0, 2 * half])
    return (cheb2poly(fit.coef) / half ** np.arange(degree + 1))[::-1]


_CDF_COEF = _cdf_coefficients(CDF_LIMIT, CDF_DEGREE).astype(np.float32)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2 in x's dtype: float64 to double precision (`erf`),
    any other float in float32 within 1e-7 (PyTorch's float32 is within 7e-8), one
    cache-sized block at a time (`blocks`)."""
    if x.dtype == np.float64:
        return 0.5 * (1 + erf(x * (1 / math.sqrt(2))))
    dtype, x = x.dtype, np.ascontiguousarray(x, np.float32)
    cdf = np.empty_like(x)
    z, acc = (np.empty(min(x.size, BLOCK), np.float32) for _ in range(2))
    for xb, cb in blocks(x, cdf):
        zb, ab = z[:xb.size], acc[:xb.size]
        np.clip(xb, -CDF_LIMIT, CDF_LIMIT, out=zb)
        np.multiply(zb, zb, out=cb)  # cb holds s until it holds Phi
        cb -= np.float32(CDF_LIMIT * CDF_LIMIT / 2)
        np.multiply(cb, _CDF_COEF[0], out=ab)
        for c in _CDF_COEF[1:-1]:
            ab += c
            ab *= cb
        ab += _CDF_COEF[-1]
        ab *= zb
        np.tanh(ab, out=ab)
        np.multiply(ab, np.float32(0.5), out=cb)
        cb += np.float32(0.5)
    return cdf.astype(dtype, copy=False)


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


def _gelu_fwd(a, p, xs, ctx):
    """y = x Phi(x); the tanh form approximates Phi(x) by (1 + tanh(c (x + k x^3))) / 2."""
    (x,) = xs
    if a["approximate"] == "tanh":
        t = x * x
        t *= _TANH_C * _TANH_K
        t += _TANH_C
        t *= x
        np.tanh(t, out=t)
        return 0.5 * x * (1 + t), (x, t, a)
    cdf = normal_cdf(x)
    return x * cdf, (x, cdf, a)


def _gelu_back(dy, cache):
    """dy (Phi(x) + x Phi'(x)), where Phi'(x) = exp(-x^2 / 2) / sqrt(2 pi) in the exact form."""
    x, s, a = cache  # s: the tanh of the tanh form, Phi(x) in the exact one
    if a["approximate"] == "tanh":
        d = x * x
        d *= 3 * _TANH_C * _TANH_K
        d += _TANH_C
        d *= x
        d *= 1 - s * s
        d += s
        d += 1
        d *= 0.5
        d *= dy
        return [d], {}
    d = np.empty(x.shape, s.dtype)
    for xb, sb, gb, db in blocks(x, s, dy, d):
        np.multiply(xb, xb, out=db)
        db *= -0.5
        np.exp(db, out=db)
        db *= xb
        db *= 1 / _SQRT_2PI
        db += sb
        db *= gb
    return [d], {}


def _silu_grad(x, y, a):
    s = sigmoid(x)
    return s * (1 + x * (1 - s))


relu = _pointwise(lambda x, a: np.maximum(x, 0), lambda x, y, a: (x > 0).astype(x.dtype))


def _leaky_relu(x, a):
    """x where x > 0, else slope x: for 0 <= slope <= 1 that is max(x, slope x), exactly
    (NaN, -0.0 and 0 * -inf included), and a maximum costs a tenth of `np.where` on random
    signs."""
    s = a["slope"]
    if not 0 <= s <= 1:
        return np.where(x > 0, x, s * x)
    y = x * s
    return np.maximum(y, x, out=y)


def _leaky_relu_grad(x, y, a):
    """1 where x > 0, else slope: max(x > 0, slope) for 0 <= slope <= 1."""
    s = a["slope"]
    if not 0 <= s <= 1:
        return np.where(x > 0, 1, s).astype(x.dtype)
    d = (x > 0).astype(x.dtype)
    return np.maximum(d, s, out=d)


leaky_relu = _pointwise(_leaky_relu, _leaky_relu_grad)
gelu = Kernel(_gelu_fwd, _gelu_back)
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
