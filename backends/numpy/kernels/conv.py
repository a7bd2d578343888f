"""Convolutions (1-d, 2-d) and the transposed 2-d convolution, channels first.

Three primitives cover every case, each a window view (sliding_window_view, no copy), one
reshape into an im2col matrix per group, and one batched matrix product:

- `conv`: y = x * w (cross-correlation) over an already padded input;
- `conv_weight_grad`: dL/dw from the padded input and dL/dy;
- `conv_input_grad`: dL/dx, i.e. the transposed convolution: dL/dy with stride-1 zeros
  inserted, padded, correlated with the flipped, group-transposed kernel.

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


def _im2col(xp: np.ndarray, kernel, stride, dilation, groups: int) -> np.ndarray:
    """(G, B * prod(out), C/G * prod(kernel)): one row per output position and group."""
    n = len(kernel)
    win = windows(xp, kernel, stride, dilation)
    b, c, out = win.shape[0], win.shape[1], win.shape[2:2 + n]
    win = win.reshape(b, groups, c // groups, *out, *kernel)
    order = (1, 0, *range(3, 3 + n), 2, *range(3 + n, 3 + 2 * n))
    return win.transpose(order).reshape(groups, b * int(np.prod(out)), -1)


def _from_rows(y: np.ndarray, b: int, out: tuple[int, ...]) -> np.ndarray:
    """(G, B * prod(out), O/G) -> (B, O, *out)."""
    g, _, og = y.shape
    n = len(out)
    y = y.reshape(g, b, *out, og).transpose(1, 0, n + 2, *range(2, n + 2))
    return y.reshape(b, g * og, *out)


def _to_rows(dy: np.ndarray, groups: int) -> np.ndarray:
    """(B, O, *out) -> (G, B * prod(out), O/G), the inverse of `_from_rows`."""
    b, o, out = dy.shape[0], dy.shape[1], dy.shape[2:]
    n = len(out)
    dy = dy.reshape(b, groups, o // groups, *out).transpose(1, 0, *range(3, 3 + n), 2)
    return dy.reshape(groups, -1, o // groups)


def conv(xp: np.ndarray, w: np.ndarray, stride, dilation, groups: int) -> np.ndarray:
    """Cross-correlation of a padded (B, C, *size) input with w (O, C/G, *kernel)."""
    kernel = w.shape[2:]
    cols = _im2col(xp, kernel, stride, dilation, groups)  # (G, B*P, C/G*K)
    wm = w.reshape(groups, w.shape[0] // groups, -1).transpose(0, 2, 1)  # (G, C/G*K, O/G)
    out = windows(xp[:1, :1], kernel, stride, dilation).shape[2:2 + len(kernel)]
    return _from_rows(cols @ wm, xp.shape[0], out)


def conv_weight_grad(xp: np.ndarray, dy: np.ndarray, kernel, stride, dilation,
                     groups: int) -> np.ndarray:
    """dL/dw (O, C/G, *kernel) of `conv` from its padded input and dL/dy."""
    cols = _im2col(xp, kernel, stride, dilation, groups)  # (G, B*P, C/G*K)
    dw = cols.transpose(0, 2, 1) @ _to_rows(dy, groups)  # (G, C/G*K, O/G)
    return dw.transpose(0, 2, 1).reshape(dy.shape[1], xp.shape[1] // groups, *kernel)


def conv_input_grad(dy: np.ndarray, w: np.ndarray, size, stride, padding: Pads, dilation,
                    groups: int) -> np.ndarray:
    """dL/dx (B, C, *size) of `conv` of the input padded by `padding`: a transposed conv."""
    n = len(size)
    kernel = w.shape[2:]
    b, o, out = dy.shape[0], dy.shape[1], dy.shape[2:]
    z = np.zeros((b, o, *(s * (m - 1) + 1 for s, m in zip(stride, out, strict=True))), dy.dtype)
    z[(slice(None), slice(None), *(slice(None, None, s) for s in stride))] = dy
    pads = []
    for k, d, (before, _), m, zn in zip(kernel, dilation, padding, size, z.shape[2:], strict=True):
        span = d * (k - 1) + 1
        left = span - 1 - before
        pads.append([left, m + span - 1 - zn - left])
    c = w.shape[1] * groups
    wt = w.reshape(groups, o // groups, w.shape[1], *kernel).swapaxes(1, 2)
    wt = wt.reshape(c, o // groups, *kernel)[(..., *([slice(None, None, -1)] * n))]
    return conv(pad(z, pads), wt, [1] * n, dilation, groups)


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
