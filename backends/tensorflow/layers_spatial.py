"""Layers generated Keras modules use for the ops of LANGUAGE.md section 10 that Keras
lacks with PyTorch's semantics: border padding, pooling with `ceil_mode`, resampling,
pixel shuffles, recurrent cells, padded embeddings and attention.

Copied into a module that uses them, after those of layers.py, like them: each uses
`math`, `keras` and `tf` only. Spatial layers take channels-last tensors; the weights
of the layers here are held in PyTorch's names and layouts (`weight_ih` [3H, I]), so
`runtime.state_dict` reads them as they are. Formatted for 88 columns.
"""

import math

import keras
import tensorflow as tf

from .layers import GroupedConv2DTranspose


def border_index(i, n, mode):
    """Which of `n` cells PyTorch's `mode` padding copies to position `i` (-pad..)."""
    if mode == "reflect":
        return -i if i < 0 else 2 * (n - 1) - i if i >= n else i
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    return i % n  # circular


@keras.saving.register_keras_serializable(package="archdsl")
class BorderPad(keras.layers.Layer):
    """Pads the spatial axes of a channels-last tensor by `padding` ((before, after)
    per axis) as PyTorch's reflect, replicate or circular padding: a gather of each
    axis, so the gradient flows to the cells copied."""

    def __init__(self, padding, mode, **kwargs):
        super().__init__(**kwargs)
        self.padding, self.mode = [tuple(p) for p in padding], mode

    def call(self, x):
        for axis, (before, after) in enumerate(self.padding, 1):
            n = x.shape[axis]
            index = [border_index(i, n, self.mode) for i in range(-before, n + after)]
            x = keras.ops.take(x, index, axis=axis)
        return x

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "mode": self.mode}


@keras.saving.register_keras_serializable(package="archdsl")
class Pool(keras.layers.Layer):
    """PyTorch's max or average pooling of a channels-last tensor, with `ceil_mode`
    (a last window that starts inside the input or its left padding) and
    `count_include_pad`: a max pool pads with -inf; an average pool sums zero-padded
    windows and divides by the cells counted (the padding up to `padding` after the
    input when `count_include_pad`, never the overhang of `ceil_mode`)."""

    def __init__(
        self,
        kind,
        kernel,
        stride,
        padding,
        ceil_mode=False,
        count_include_pad=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kind, self.kernel, self.stride = kind, tuple(kernel), tuple(stride)
        self.padding, self.ceil_mode = tuple(padding), ceil_mode
        self.count_include_pad = count_include_pad

    def extra(self, n, k, s, p):
        """The cells padded after `padding` for the last window."""
        span = n + 2 * p - k
        out = (-(-span // s) if self.ceil_mode else span // s) + 1
        if self.ceil_mode and (out - 1) * s >= n + p:
            out -= 1
        return max((out - 1) * s + k - n - 2 * p, 0)

    def call(self, x):
        sizes = x.shape[1:-1]
        extra = [
            self.extra(n, k, s, p)
            for n, k, s, p in zip(
                sizes, self.kernel, self.stride, self.padding, strict=True
            )
        ]
        widths = [
            (0, 0),
            *((p, p + e) for p, e in zip(self.padding, extra, strict=True)),
            (0, 0),
        ]
        if self.kind == "max":
            x = keras.ops.pad(x, widths, constant_values=float("-inf"))
            return keras.ops.max_pool(x, self.kernel, self.stride)
        x = keras.ops.pad(x, widths)
        # the cells each window counts, as a (1, *spatial, 1) mask
        counted = self.padding if self.count_include_pad else [0] * len(sizes)
        mask = keras.ops.ones(
            (1, *(n + 2 * c for n, c in zip(sizes, counted, strict=True)), 1), x.dtype
        )
        outside = [
            (p - c, p - c + e)
            for p, c, e in zip(self.padding, counted, extra, strict=True)
        ]
        mask = keras.ops.pad(mask, [(0, 0), *outside, (0, 0)])
        mean = keras.ops.average_pool(x, self.kernel, self.stride)
        return mean / keras.ops.average_pool(mask, self.kernel, self.stride)

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "kernel": self.kernel,
            "stride": self.stride,
            "padding": self.padding,
            "ceil_mode": self.ceil_mode,
            "count_include_pad": self.count_include_pad,
        }


@keras.saving.register_keras_serializable(package="archdsl")
class GroupedConv1DTranspose(GroupedConv2DTranspose):
    """`GroupedConv2DTranspose` along one axis: ConvTranspose1d with `groups`."""

    rank = 1
