"""Convolution primitives on channels-first arrays (B, C, *size), the im2col matrix
"channels-major": one row per (input channel, kernel offset), one column per (batch, output
position), so the window copies read runs along the output's width. The choice for few
output positions (deep layers on small images) and for thin kernel rows (one input channel):
see `conv.py`.

- `correlate`: im2col (a `sliding_window_view` copied once) and one batched matrix product
  (groups are the batch);
- `weight_grad`: the same im2col and one product with dL/dy;
- `input_grad`, the transposed convolution: one product gives every window's gradient, then
  col2im adds the windows into place with one strided add per kernel offset (a copy where
  windows do not overlap, on no zeros where they also tile the input; for a 1x1 kernel at
  stride 1 the product is the gradient).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .windows import Pads, pad, regions


def _im2col(xp: np.ndarray, kernel, stride, dilation, groups: int
            ) -> tuple[np.ndarray, tuple[int, ...]]:
    """(G, C/G * prod(kernel), B * prod(out)) and the output size."""
    n = len(kernel)
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    win = sliding_window_view(xp, span, axis=tuple(range(2, 2 + n)))
    win = win[(slice(None), slice(None), *(slice(None, None, s) for s in stride),
               *(slice(None, None, d) for d in dilation))]  # (B, C, *out, *K)
    out = win.shape[2:2 + n]
    order = (1, *range(2 + n, 2 + 2 * n), 0, *range(2, 2 + n))  # (C, *K, B, *out)
    return win.transpose(order).reshape(groups, -1, xp.shape[0] * math.prod(out)), out


def _rows(dy: np.ndarray, groups: int) -> np.ndarray:
    """(B, O, *out) -> (G, O/G, B * prod(out))."""
    b, o = dy.shape[:2]
    return dy.reshape(b, o, -1).transpose(1, 0, 2).reshape(groups, o // groups, -1)


def correlate(xp: np.ndarray, w: np.ndarray, stride, dilation, groups: int) -> np.ndarray:
    """Cross-correlation of a padded (B, C, *size) input with w (O, C/G, *kernel)."""
    cols, out = _im2col(xp, w.shape[2:], stride, dilation, groups)
    y = w.reshape(groups, w.shape[0] // groups, -1) @ cols  # (G, O/G, B*P)
    return np.ascontiguousarray(y.reshape(w.shape[0], xp.shape[0], *out).swapaxes(0, 1))


def weight_grad(xp: np.ndarray, dy: np.ndarray, kernel, stride, dilation, groups: int
                ) -> np.ndarray:
    """dL/dw (O, C/G, *kernel) of `correlate` from its padded input and dL/dy."""
    cols, _ = _im2col(xp, kernel, stride, dilation, groups)
    dw = _rows(dy, groups) @ cols.swapaxes(1, 2)  # (G, O/G, C/G*K)
    return dw.reshape(dy.shape[1], xp.shape[1] // groups, *kernel)


def input_grad(dy: np.ndarray, w: np.ndarray, size, stride, padding: Pads, dilation,
               groups: int) -> np.ndarray:
    """dL/dx (B, C, *size) of `correlate` of the input padded by `padding`: a transposed
    convolution."""
    kernel = w.shape[2:]
    b, out = dy.shape[0], dy.shape[2:]
    wm = w.reshape(groups, w.shape[0] // groups, -1).swapaxes(1, 2)  # (G, C/G*K, O/G)
    cols = (wm @ _rows(dy, groups)).reshape(-1, math.prod(kernel), b, *out)  # (C, K, B, *out)
    padded = [m + before + after for m, (before, after) in zip(size, padding, strict=True)]
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    apart = all(s >= n for s, n in zip(stride, spans, strict=True))  # no window overlaps
    tiled = apart and all(s == k == n and m % k == 0 for s, k, n, m
                          in zip(stride, kernel, spans, padded, strict=True))
    if tiled and math.prod(kernel) == 1:  # a 1x1 kernel at stride 1: the product is dL/dx
        dxp = cols[:, 0]
    else:
        dxp = (np.empty if tiled else np.zeros)((cols.shape[0], b, *padded), dy.dtype)
        for k, index in enumerate(regions(kernel, stride, dilation, out)):
            if apart:  # each cell gets one window's value
                dxp[index] = cols[:, k]
            else:
                dxp[index] += cols[:, k]
    dx = pad(dxp, [[-before, -after] for before, after in padding])
    return np.ascontiguousarray(dx.swapaxes(0, 1))
