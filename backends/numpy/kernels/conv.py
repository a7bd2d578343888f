"""Convolutions (1-d, 2-d) and the transposed 2-d convolution, channels first.

Three primitives cover every case. Matrices are "channels-major": one row per (input channel,
kernel offset), one column per (batch, output position), so the copies read long runs.

- `conv`: im2col (a `sliding_window_view` copied once) and one batched matrix product;
- `conv_weight_grad`: the same im2col and one product with dL/dy;
- `conv_input_grad`, the transposed convolution: one product gives every window's gradient,
  then col2im adds the windows into place with one strided add per kernel offset. That loop
  is the only one: an overlapping scatter-add has no NumPy view, np.add.at and bincount are
  several times slower, and correlating zero-stuffed dL/dy costs O*K copies and stride^2
  times the products where col2im needs C*K.

ConvTranspose2d is `conv_input_grad` forwards and `conv` / `conv_weight_grad` backwards.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import Kernel

Pads = list[list[int]]


def pad(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """Pad (or, for negative amounts, crop) the trailing spatial dims by [before, after] pairs."""
    lead = [(0, 0)] * (x.ndim - len(pads))
    grow = [(max(b, 0), max(e, 0)) for b, e in pads]
    if any(b or e for b, e in grow):
        x = np.pad(x, lead + grow, constant_values=value)
    if any(b < 0 or e < 0 for b, e in pads):
        crop = tuple(slice(max(-b, 0), n - max(-e, 0))
                     for (b, e), n in zip(pads, x.shape[len(lead):], strict=True))
        x = x[(..., *crop)]
    return x


def windows(xp: np.ndarray, kernel, stride, dilation) -> np.ndarray:
    """View (B, C, *out, *kernel) of every window of a padded (B, C, *size) array."""
    n = len(kernel)
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    v = sliding_window_view(xp, span, axis=tuple(range(2, 2 + n)))
    return v[(slice(None), slice(None), *(slice(None, None, s) for s in stride),
              *(slice(None, None, d) for d in dilation))]


def regions(kernel, stride, dilation, out):
    """For each kernel offset, the strided index of the padded input it meets at every output."""
    for offset in np.ndindex(*kernel):
        yield (slice(None), slice(None), *(slice(i * d, i * d + s * (m - 1) + 1, s) for i, d, s, m
                                           in zip(offset, dilation, stride, out, strict=True)))


def _im2col(xp: np.ndarray, kernel, stride, dilation, groups: int
            ) -> tuple[np.ndarray, tuple[int, ...]]:
    """(G, C/G * prod(kernel), B * prod(out)) and the output size."""
    n = len(kernel)
    win = windows(xp, kernel, stride, dilation)  # (B, C, *out, *K)
    out = win.shape[2:2 + n]
    order = (1, *range(2 + n, 2 + 2 * n), 0, *range(2, 2 + n))  # (C, *K, B, *out)
    return win.transpose(order).reshape(groups, -1, xp.shape[0] * int(np.prod(out))), out


def _rows(dy: np.ndarray, groups: int) -> np.ndarray:
    """(B, O, *out) -> (G, O/G, B * prod(out))."""
    b, o = dy.shape[:2]
    return dy.reshape(b, o, -1).transpose(1, 0, 2).reshape(groups, o // groups, -1)


def conv(xp: np.ndarray, w: np.ndarray, stride, dilation, groups: int) -> np.ndarray:
    """Cross-correlation of a padded (B, C, *size) input with w (O, C/G, *kernel)."""
    cols, out = _im2col(xp, w.shape[2:], stride, dilation, groups)
    y = w.reshape(groups, w.shape[0] // groups, -1) @ cols  # (G, O/G, B*P)
    b = xp.shape[0]
    return y.reshape(w.shape[0], b, *out).swapaxes(0, 1).copy()  # (B, O, *out)


def conv_weight_grad(xp: np.ndarray, dy: np.ndarray, kernel, stride, dilation,
                     groups: int) -> np.ndarray:
    """dL/dw (O, C/G, *kernel) of `conv` from its padded input and dL/dy."""
    cols, _ = _im2col(xp, kernel, stride, dilation, groups)
    dw = _rows(dy, groups) @ cols.swapaxes(1, 2)  # (G, O/G, C/G*K)
    return dw.reshape(dy.shape[1], xp.shape[1] // groups, *kernel)


def conv_input_grad(dy: np.ndarray, w: np.ndarray, size, stride, padding: Pads, dilation,
                    groups: int) -> np.ndarray:
    """dL/dx (B, C, *size) of `conv` of the input padded by `padding`: a transposed conv."""
    kernel = w.shape[2:]
    b, out = dy.shape[0], dy.shape[2:]
    wm = w.reshape(groups, w.shape[0] // groups, -1).swapaxes(1, 2)  # (G, C/G*K, O/G)
    cols = (wm @ _rows(dy, groups)).reshape(-1, int(np.prod(kernel)), b, *out)  # (C, K, B, *out)
    padded = [m + before + after for m, (before, after) in zip(size, padding, strict=True)]
    dxp = np.zeros((cols.shape[0], b, *padded), dy.dtype)  # (C, B, *padded)
    for k, index in enumerate(regions(kernel, stride, dilation, out)):
        dxp[index] += cols[:, k]
    dx = pad(dxp, [[-before, -after] for before, after in padding])
    return np.ascontiguousarray(dx.swapaxes(0, 1))


def _conv_fwd(a, p, xs, ctx):
    (x,) = xs
    xp = pad(x, a["padding"])
    y = conv(xp, p["weight"], a["stride"], a["dilation"], a["groups"])
    if "bias" in p:
        y += p["bias"].reshape(-1, *[1] * (x.ndim - 2))
    return y, (a, p["weight"], xp, x.shape[2:], "bias" in p)


def _conv_back(dy, cache):
    a, w, xp, size, has_bias = cache
    dx = conv_input_grad(dy, w, size, a["stride"], a["padding"], a["dilation"], a["groups"])
    grads = {"weight": conv_weight_grad(xp, dy, w.shape[2:], a["stride"], a["dilation"],
                                        a["groups"])}
    if has_bias:
        grads["bias"] = dy.sum(axis=(0, *range(2, dy.ndim)))
    return [dx], grads


def _convt_fwd(a, p, xs, ctx):
    (x,) = xs
    w = p["weight"]  # (C_in, C_out/G, kh, kw)
    size = [(h - 1) * s - 2 * q + k + o for h, s, q, k, o in
            zip(x.shape[2:], a["stride"], a["padding"], w.shape[2:], a["output_padding"],
                strict=True)]
    pads = [[q, q] for q in a["padding"]]
    y = conv_input_grad(x, w, size, a["stride"], pads, [1, 1], a["groups"])
    if "bias" in p:
        y += p["bias"].reshape(-1, 1, 1)
    return y, (a, w, x, pads, "bias" in p)


def _convt_back(dy, cache):
    a, w, x, pads, has_bias = cache
    dyp = pad(dy, pads)
    dx = conv(dyp, w, a["stride"], [1, 1], a["groups"])
    grads = {"weight": conv_weight_grad(dyp, x, w.shape[2:], a["stride"], [1, 1], a["groups"])}
    if has_bias:
        grads["bias"] = dy.sum(axis=(0, 2, 3))
    return [dx], grads


_conv = Kernel(_conv_fwd, _conv_back)
KERNELS: dict[str, Kernel] = {
    "Conv1d": _conv, "Conv2d": _conv, "ConvTranspose2d": Kernel(_convt_fwd, _convt_back),
}
