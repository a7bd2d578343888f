"""The arguments and siblings LANGUAGE.md section 10 gives existing ops, built on their
kernels (conv.py, pool.py, norm.py, dense.py) without changing them. `KERNELS` here replaces
those files' entries for the same ops (kernels/__init__.py merges it last).

- `padding_mode` of `Conv1d/2d/3d`: PyTorch pads with F.pad's mode, then convolves unpadded;
  so does `_padding_mode`.
- `ceil_mode` of pooling: the windows ceil mode adds reach past the padded input; the input is
  padded on the right so the floor-mode kernel sees them, with -inf (never a maximum) or
  zeros that the divisor leaves out.
- `count_include_pad=false`, and ceil mode's overhang, change an average's divisor: the kernel
  divides by the window size, and `_average_divisor` rescales to the count PyTorch uses.
- `bias=false` and `elementwise_affine=false` of `LayerNorm`: the kernel gets ones and zeros.
- `padding_idx` of `Embedding`: its row gets no gradient.
- `Conv3d`, `MaxPool3d`, `AvgPool3d` and `BatchNorm3d` run the n-d kernels of their 2-d
  siblings; `ConvTranspose1d` is `ConvTranspose2d` on a height-1 image.
"""

from __future__ import annotations

import numpy as np

from . import conv, dense, norm, pool
from .base import Kernel
from .pad import pad_by_mode, unpad_by_mode


def _padding_mode(inner: Kernel) -> Kernel:
    def forward(a, p, xs, ctx):
        mode = a["padding_mode"]
        if mode == "zeros":
            y, cache = inner.forward(a, p, xs, ctx)
            return y, (None, cache)
        pads = [tuple(q) for q in a["padding"]]
        unpadded = {**a, "padding": [[0, 0]] * len(pads)}
        y, cache = inner.forward(unpadded, p, [pad_by_mode(xs[0], pads, mode)], ctx)
        return y, ((pads, mode), cache)

    def backward(dy, cache):
        how, inner_cache = cache
        dxs, grads = inner.backward(dy, inner_cache)
        return ([dxs[0]] if how is None else [unpad_by_mode(dxs[0], *how)]), grads

    return Kernel(forward, backward)


def _as_2d(a: dict) -> dict:
    return {**a, "kernel": [1, *a["kernel"]], "stride": [1, *a["stride"]],
            "padding": [0, *a["padding"]], "output_padding": [0, *a["output_padding"]]}


def _convt1d_fwd(a, p, xs, ctx):
    inner = conv.KERNELS["ConvTranspose2d"]
    y, cache = inner.forward(_as_2d(a), {k: v[:, :, None] if k == "weight" else v
                                         for k, v in p.items()}, [xs[0][:, :, None]], ctx)
    return y[:, :, 0], cache


def _convt1d_back(dy, cache):
    [dx], grads = conv.KERNELS["ConvTranspose2d"].backward(dy[:, :, None], cache)
    return [dx[:, :, 0]], {k: g[:, :, 0] if k == "weight" else g for k, g in grads.items()}


def _pool_geometry(a, size) -> list[tuple[int, int, int, int, int]]:
    """(input size, kernel, stride, padding, output size) per spatial dimension, the output
    size being PyTorch's: in ceil mode a last window must start inside the input or its left
    padding."""
    out = []
    for h, k, s, q in zip(size, a["kernel"], a["stride"], a["padding"], strict=True):
        n = -(-(h + 2 * q - k) // s) + 1 if a["ceil_mode"] else (h + 2 * q - k) // s + 1
        if a["ceil_mode"] and (n - 1) * s >= h + q:
            n -= 1
        out.append((h, k, s, q, n))
    return out


def _overhang(geometry) -> list[tuple[int, int]]:
    """(0, cells past the padded input that the last window reaches) per spatial dimension."""
    return [(0, max(0, (n - 1) * s + k - (h + 2 * q))) for h, k, s, q, n in geometry]


def _average_divisor(geometry, include_pad: bool) -> np.ndarray | None:
    """window size / PyTorch's divisor per output position (None where they agree): the
    window's cells inside the padded input with `count_include_pad`, else inside the input."""
    ratio: np.ndarray | float = 1.0
    for h, k, s, q, n in geometry:
        start = np.arange(n) * s - q
        if include_pad:
            count = np.minimum(start + k, h + q) - start
        else:
            count = np.minimum(start + k, h) - np.maximum(start, 0)
        ratio = np.multiply.outer(ratio, k / count)
    ratio = np.asarray(ratio)
    return None if np.all(ratio == 1) else ratio


def _ceil_mode(inner: Kernel, average: bool) -> Kernel:
    def forward(a, p, xs, ctx):
        (x,) = xs
        geometry = _pool_geometry(a, x.shape[2:])
        extra = _overhang(geometry)
        if any(e for _, e in extra):
            x = pad_by_mode(x, extra, "constant", 0.0 if average else -np.inf)
        y, cache = inner.forward(a, p, [x], ctx)
        ratio = _average_divisor(geometry, a["count_include_pad"]) if average else None
        if ratio is not None:
            y = y * ratio.astype(y.dtype)
        return y, (cache, extra, ratio)

    def backward(dy, cache):
        inner_cache, extra, ratio = cache
        if ratio is not None:
            dy = dy * ratio.astype(dy.dtype)
        [dx], _ = inner.backward(dy, inner_cache)
        return [unpad_by_mode(dx, extra, "constant")], {}

    return Kernel(forward, backward)


def _affine_optional(inner: Kernel) -> Kernel:
    """LayerNorm without a learned shift (`bias=false`) or without either (`elementwise_affine
    =false`): the kernel gets a fixed shift of zeros and scale of ones, and their gradients
    are dropped."""
    def forward(a, p, xs, ctx):
        dtype = xs[0].dtype
        full = {"weight": np.ones(a["dim"], dtype), "bias": np.zeros(a["dim"], dtype), **p}
        y, cache = inner.forward(a, full, xs, ctx)
        return y, (cache, set(p))

    def backward(dy, cache):
        inner_cache, learned = cache
        dxs, grads = inner.backward(dy, inner_cache)
        return dxs, {k: g for k, g in grads.items() if k in learned}

    return Kernel(forward, backward)


def _padding_row(inner: Kernel) -> Kernel:
    def forward(a, p, xs, ctx):
        y, cache = inner.forward(a, p, xs, ctx)
        return y, (cache, a["padding_idx"])

    def backward(dy, cache):
        inner_cache, row = cache
        dxs, grads = inner.backward(dy, inner_cache)
        if row is not None:
            grads["weight"][row] = 0
        return dxs, grads

    return Kernel(forward, backward)


_conv = _padding_mode(conv.KERNELS["Conv2d"])
_max = _ceil_mode(pool.KERNELS["MaxPool2d"], average=False)
_avg = _ceil_mode(pool.KERNELS["AvgPool2d"], average=True)
KERNELS: dict[str, Kernel] = {
    "Conv1d": _conv, "Conv2d": _conv, "Conv3d": _conv,
    "ConvTranspose1d": Kernel(_convt1d_fwd, _convt1d_back),
    **{f"MaxPool{n}d": _max for n in (1, 2, 3)},
    **{f"AvgPool{n}d": _avg for n in (1, 2, 3)},
    "BatchNorm3d": norm.KERNELS["BatchNorm2d"],
    "LayerNorm": _affine_optional(norm.KERNELS["LayerNorm"]),
    "Embedding": _padding_row(dense.KERNELS["Embedding"]),
}
