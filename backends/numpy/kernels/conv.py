"""Convolutions (1-d, 2-d) and the transposed 2-d convolution, channels first at the
interface, each run in whichever layout costs less (see `channels_last`): channels-last where
the windows are many (at least `MANY` output positions per output channel) and wide (at
least `WIDE` values per kernel row), as in the early layers of a network; channels-first
(`channels_first`) for deep layers on small images, 1x1 kernels and thin inputs, where
laying the activations out again would cost more than it saves."""

from __future__ import annotations

import math

import numpy as np

from . import channels_first as first
from . import channels_last as last
from .base import Kernel
from .windows import channel_sums, first_view, last_view, out_size, pad, to_last

MANY, WIDE = 4, 32  # measured with bench/numpy_vs_torch.py: see README.md, Decisions


def _channels_last(w: np.ndarray, rows: int) -> bool:
    """For a convolution of weight w (O, C/G, *kernel) with `rows` output positions."""
    return math.prod(w.shape[2:]) > 1 and w.shape[1] * w.shape[-1] >= WIDE and \
        rows >= MANY * w.shape[0]


def _conv_fwd(a, p, xs, ctx):
    (x,) = xs
    w = p["weight"]
    size, stride, dilation, groups = x.shape[2:], a["stride"], a["dilation"], a["groups"]
    padded = [n + b + e for n, (b, e) in zip(size, a["padding"], strict=True)]
    rows = x.shape[0] * math.prod(out_size(padded, w.shape[2:], stride, dilation))
    if _channels_last(w, rows):
        plan = last.Plan(w.shape[2:], tuple(stride), tuple(dilation), groups)
        xl = to_last(x, a["padding"])
        m = plan.matrix(w)
        yl = last.correlate(xl, m, plan)
        if "bias" in p:
            yl += p["bias"]
        return first_view(yl), (a, w, "bias" in p, size, (plan, m, xl))
    xp = pad(x, a["padding"])
    y = first.correlate(xp, w, stride, dilation, groups)
    if "bias" in p:
        y += p["bias"].reshape(-1, *[1] * len(size))
    return y, (a, w, "bias" in p, size, xp)


def _conv_back(dy, cache):
    a, w, has_bias, size, state = cache
    if isinstance(state, tuple):
        plan, m, xl = state
        dyl = np.ascontiguousarray(last_view(dy))
        dx = first_view(last.input_grad(dyl, w, m, plan, size, a["padding"]))
        dw = last.weight_grad(xl, dyl, plan)
    else:
        xp = state
        dx = first.input_grad(dy, w, size, a["stride"], a["padding"], a["dilation"],
                              a["groups"])
        dw = first.weight_grad(xp, dy, w.shape[2:], a["stride"], a["dilation"], a["groups"])
    grads = {"weight": dw}
    if has_bias:
        grads["bias"] = channel_sums(dy)
    return [dx], grads


def _convt_fwd(a, p, xs, ctx):
    """The input gradient of the convolution whose weight (C_in, C_out/G, *kernel) it holds."""
    (x,) = xs
    w = p["weight"]
    size = [(h - 1) * s - 2 * q + k + o for h, s, q, k, o in
            zip(x.shape[2:], a["stride"], a["padding"], w.shape[2:], a["output_padding"],
                strict=True)]
    pads = [[q, q] for q in a["padding"]]
    ones = [1] * len(size)
    if _channels_last(w, x[:, 0].size):
        plan = last.Plan(w.shape[2:], tuple(a["stride"]), tuple(ones), a["groups"])
        m = plan.matrix(w)
        xl = np.ascontiguousarray(last_view(x))
        yl = last.input_grad(xl, w, m, plan, size, pads)
        if "bias" in p:
            yl += p["bias"]
        return first_view(yl), (a, w, "bias" in p, pads, (plan, m, xl))
    y = first.input_grad(x, w, size, a["stride"], pads, ones, a["groups"])
    if "bias" in p:
        y += p["bias"].reshape(-1, *[1] * len(size))
    return y, (a, w, "bias" in p, pads, x)


def _convt_back(dy, cache):
    a, w, has_bias, pads, state = cache
    ones = [1] * len(pads)
    if isinstance(state, tuple):
        plan, m, xl = state
        dyl = to_last(dy, pads)
        dx = first_view(last.correlate(dyl, m, plan))
        dw = last.weight_grad(dyl, xl, plan)
    else:
        x = state
        dyp = pad(dy, pads)
        dx = first.correlate(dyp, w, a["stride"], ones, a["groups"])
        dw = first.weight_grad(dyp, x, w.shape[2:], a["stride"], ones, a["groups"])
    grads = {"weight": dw}
    if has_bias:
        grads["bias"] = channel_sums(dy)
    return [dx], grads


_conv = Kernel(_conv_fwd, _conv_back)
KERNELS: dict[str, Kernel] = {
    "Conv1d": _conv, "Conv2d": _conv, "ConvTranspose2d": Kernel(_convt_fwd, _convt_back),
}
