"""Resampling: `Upsample` / `interpolate` (modes nearest, linear, bilinear, bicubic, as
F.interpolate with recompute_scale_factor=None) and `PixelShuffle` / `PixelUnshuffle`.

Every mode is separable: along each spatial axis an output is a weighted sum of a few inputs,
written as an (out, in) matrix. `nearest` gathers in the forward pass; the others multiply.
Source coordinates are computed as PyTorch's CPU kernels compute them, in the same precision
(the input's own; `nearest` then rounds to float32), so `nearest` picks the same pixel where
a coordinate falls on a boundary.
"""

from __future__ import annotations

import math

import numpy as np

from .base import Kernel

_CUBIC_A = -0.75  # PyTorch's bicubic convolution coefficient


def _scale(n_in: int, n_out: int, scale: float | None, dtype) -> np.floating:
    """compute_scales_value: 1/scale when a scale was given, else in/out."""
    t = np.dtype(dtype).type
    return t(1.0 / scale) if scale is not None else t(n_in) / t(n_out)


def _nearest(n_in: int, n_out: int, scale: float | None, dtype) -> np.ndarray:
    """Source index of each output: floor(dst * scale), the product in the input's precision
    rounded to float32 (PyTorch's nearest_idx calls floorf), at most the last input."""
    src = (np.arange(n_out, dtype=dtype) * _scale(n_in, n_out, scale, dtype)).astype(np.float32)
    return np.minimum(np.floor(src).astype(np.int64), n_in - 1)


def _source(n_in: int, n_out: int, scale: float | None, align: bool, cubic: bool, dtype
            ) -> np.ndarray:
    """area_pixel_compute_source_index of every output, in `dtype`."""
    t = np.dtype(dtype).type
    dst = np.arange(n_out, dtype=dtype)
    if align:
        return dst * (t(n_in - 1) / t(n_out - 1) if n_out > 1 else t(0))
    src = _scale(n_in, n_out, scale, dtype) * (dst + t(0.5)) - t(0.5)
    return src if cubic else np.maximum(src, t(0))


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """The four weights of inputs floor(src) - 1 .. floor(src) + 2 at fraction t."""
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _matrix(n_in: int, n_out: int, scale: float | None, a: dict, dtype) -> np.ndarray:
    """(n_out, n_in) weights of one axis; sources past the border are clamped to it."""
    rows = np.arange(n_out)
    m = np.zeros((n_out, n_in), dtype)
    if a["mode"] == "nearest":
        m[rows, _nearest(n_in, n_out, scale, dtype)] = 1
        return m
    cubic = a["mode"] == "bicubic"
    src = _source(n_in, n_out, scale, a["align_corners"], cubic, dtype)
    base = np.floor(src)
    frac = src - base
    base = base.astype(np.int64)
    if cubic:
        taps = [(base - 1 + k, w) for k, w in enumerate(_cubic_weights(frac))]
    else:
        taps = [(base, 1 - frac), (base + 1, frac)]
    for index, weight in taps:
        np.add.at(m, (rows, np.clip(index, 0, n_in - 1)), weight)
    return m


def _along(x: np.ndarray, m: np.ndarray, axis: int) -> np.ndarray:
    """x with `axis` (size m.shape[1]) mapped through m (out, in)."""
    return np.moveaxis(np.moveaxis(x, axis, -1) @ m.T, -1, axis)


def _sizes(a: dict, x: np.ndarray) -> list[int]:
    """The output sizes: `size`, or floor(in * scale) in double precision."""
    if a["size"] is not None:
        return list(a["size"])
    return [math.floor(float(n) * s) for n, s in zip(x.shape[2:], a["scale"], strict=True)]


def _resample_fwd(a, p, xs, ctx):
    (x,) = xs
    scales = a["scale"] or [None] * (x.ndim - 2)
    mats = [_matrix(n, m, s, a, x.dtype)
            for n, m, s in zip(x.shape[2:], _sizes(a, x), scales, strict=True)]
    y = x
    for axis, m in enumerate(mats, 2):
        y = np.take(y, m.argmax(1), axis) if a["mode"] == "nearest" else _along(y, m, axis)
    return np.ascontiguousarray(y), mats


def _resample_back(dy, mats):
    for axis, m in enumerate(mats, 2):
        dy = _along(dy, m.T, axis)
    return [np.ascontiguousarray(dy)], {}


def _shuffle(x: np.ndarray, r: int) -> np.ndarray:
    """[B, C·r², H, W] -> [B, C, H·r, W·r]."""
    b, c, h, w = x.shape
    y = x.reshape(b, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(b, c // (r * r), h * r, w * r)


def _unshuffle(x: np.ndarray, r: int) -> np.ndarray:
    """[B, C, H·r, W·r] -> [B, C·r², H, W]."""
    b, c, h, w = x.shape
    y = x.reshape(b, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4)
    return y.reshape(b, c * r * r, h // r, w // r)


def _moving(f, inverse) -> Kernel:
    return Kernel(lambda a, p, xs, ctx: (f(xs[0], a["r"]), a["r"]),
                  lambda dy, r: ([inverse(dy, r)], {}))


_resample = Kernel(_resample_fwd, _resample_back)
KERNELS: dict[str, Kernel] = {
    "Upsample": _resample, "interpolate": _resample,
    "PixelShuffle": _moving(_shuffle, _unshuffle),
    "PixelUnshuffle": _moving(_unshuffle, _shuffle),
}
