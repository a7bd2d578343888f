"""Structured dropout: whole channels (`Dropout1d`, `Dropout2d`: one draw per example and
channel) or a whole example (`DropPath`, stochastic depth: one draw per example), scaled by
1/(1-p) in training and the identity in evaluation. Elementwise `Dropout` is in activation.py."""

from __future__ import annotations

from .base import Kernel, dropout_mask


def _structured(kept_dims: int) -> Kernel:
    """One keep-or-drop draw per index of the first `kept_dims` dimensions."""
    def forward(a, p, xs, ctx):
        (x,) = xs
        shape = (*x.shape[:kept_dims], *[1] * (x.ndim - kept_dims))
        mask = dropout_mask(shape, a["p"], ctx, x.dtype)
        return (x if mask is None else x * mask), mask

    def backward(dy, mask):
        return [dy if mask is None else dy * mask], {}

    return Kernel(forward, backward)


_channels = _structured(2)
KERNELS: dict[str, Kernel] = {
    "Dropout1d": _channels, "Dropout2d": _channels, "DropPath": _structured(1),
}
