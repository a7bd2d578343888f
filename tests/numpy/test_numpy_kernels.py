"""Every NumPy kernel, forward and backward, against central finite differences and against
PyTorch (float64). The cases are data: op, call arguments as a spec writes them, input shapes.
Arguments go through the registry's binding and normalizer, so kernels see what graphs carry."""

from __future__ import annotations

import math
import platform
import resource
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy_oracle
import pytest
import torch

from archdsl.backends.numpy.kernels import KERNELS, Ctx, channels_last, conv, memory, windows
from archdsl.backends.numpy.kernels.activation import normal_cdf
from archdsl.backends.numpy.kernels.base import add_gradient
from archdsl.graph import ParamSpec, TensorType
from archdsl.ops import REGISTRY
from archdsl.ops.init import ZEROS
from archdsl.ops.registry import bind_args


@dataclass(frozen=True)
class Ids:
    """An integer input: token ids in [0, high)."""

    shape: tuple[int, ...]
    high: int


@dataclass(frozen=True)
class Bools:
    """A bool input: random, or with `one_false` exactly one false along the last axis (a
    key padding mask that hides every key but one)."""

    shape: tuple[int, ...]
    one_false: bool = False


@dataclass(frozen=True)
class Positive:
    """A float input in [0.5, 2) (log, sqrt)."""

    shape: tuple[int, ...]


@dataclass(frozen=True)
class Given:
    """An input with the values written (ties, bounds, kinks, chosen ids)."""

    values: Any
    dtype: str = "f64"


@dataclass(frozen=True)
class Parts:
    """The value of a multi-output node: a tuple of float arrays (`part`'s input)."""

    shapes: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Case:
    op: str
    args: dict[str, Any]
    inputs: list[Any]  # shapes of float inputs, or one of the classes above
    name: str = ""
    train: bool = False
    torch: bool = True  # False where the result is random (dropout in training)
    pos: tuple[Any, ...] = ()  # positional arguments (Reshape's dims)
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)  # for `param`
    fd: bool = True  # False where the gradient is not the derivative (kinks, padding_idx) or
    # differences cannot resolve it (a loss of 1e9)
    keywords: tuple[str, ...] = ()  # keyword-only inputs given, after the positional ones
    unused: tuple[int, ...] = ()  # parts of a multi-output result that get no gradient

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}" if self.name else self.op


S = (2, 3, 4)  # a generic small tensor
IMAGE = (2, 3, 5, 6)
KINKS = Given([-7.0, -4.0, -3.0, -1.0, 0.0, 1.0, 3.0, 4.0, 6.0, 7.0])  # where gradients jump
WIDE = Given([-7.3, -4.1, -2.9, -0.6, 0.4, 2.2, 3.3, 5.1, 6.2, 8.7])  # every piece, no kink
MASK = Given([[False, False, True, False, True, True], [False, True, False, True, True, False]],
             "bool")  # key 0 visible: every causal query keeps a key
# LANGUAGE.md section 10, with the edge cases of issue 15.
SECTION_10 = [
    # elementwise functions
    Case("exp", {}, [S]),
    *(Case(op, {}, [Positive(S)]) for op in ("log", "sqrt", "rsqrt")),
    Case("abs", {}, [S]),
    Case("clamp", {"min": -0.5, "max": 0.7}, [S]),
    Case("clamp", {"min": 0.0}, [S], "min-only"),
    Case("clamp", {"min": -1.0, "max": 1.0}, [KINKS], "at-bounds", fd=False),
    Case("maximum", {}, [S, (3, 1)]),
    Case("minimum", {}, [(4,), S]),
    *(Case(op, {}, [Given([[1.0, 2.0, -1.0]]), Given([[1.0, 0.5, -1.0]])], "ties", fd=False)
      for op in ("maximum", "minimum")),
    Case("where", {}, [Bools(S), S, (3, 1)]),
    Case("where", {"b": 0.0}, [Bools(S), S], "number"),
    Case("where", {"a": -1.0}, [Bools((3, 1)), S], "number-first"),
    Case("masked_fill", {"value": -3.0}, [S, Bools((3, 1))]),
    Case("masked_fill", {"value": -1e9}, [S, Bools((2, 1, 4))], "scores", fd=False),
    Case("zeros_like", {}, [S]),
    Case("ones_like", {}, [S]),
    Case("randn_like", {}, [S], torch=False),
    Case("pow", {"exponent": 3}, [S]),
    Case("pow", {"exponent": 0.5}, [Positive(S)], "fractional"),
    Case("pow", {"exponent": 0}, [S], "zero"),
    *(Case(op, {}, [S, (3, 1)]) for op in ("eq", "ne", "lt", "le", "gt", "ge")),
    Case("lt", {"scalar": 0.0, "scalar_first": True}, [S], "scalar-first"),
    Case("eq", {"scalar": 1.0}, [Given([1.0, 2.0, 1.0])], "scalar"),
    # reductions
    Case("amax", {"dim": 1}, [S]),
    Case("amin", {"dim": [0, 2], "keepdim": True}, [S], "keepdim"),
    Case("amax", {}, [Given([[1.0, 3.0, 3.0], [0.0, 3.0, -1.0]])], "ties", fd=False),
    Case("var", {"dim": -1}, [S]),
    Case("var", {"unbiased": True, "keepdim": True}, [S], "unbiased-all"),
    # shapes and multi-output functions
    Case("stack", {"dim": 1}, [S, S, S]),
    Case("stack", {"dim": -1}, [S, S], "last"),
    Case("unsqueeze", {"dim": -1}, [S]),
    Case("squeeze", {"dim": 1}, [(2, 1, 4)]),
    Case("flatten", {}, [(2, 3, 4, 5)]),
    Case("flatten", {"start": 0, "end": 1}, [(2, 3, 4, 5)], "leading"),
    Case("split", {"size": 2, "dim": -1}, [(2, 3, 5)]),
    Case("split", {"size": [1, 2]}, [(3, 4)], "sizes-one-unused", unused=(0,)),
    Case("chunk", {"n": 3, "dim": 1}, [(2, 4, 3)], "fewer-parts"),
    Case("part", {"index": 1}, [Parts(((2, 3), (2, 2), (2, 1)))]),
    # activations
    *(Case(op, {}, [S]) for op in ("ReLU6", "relu6", "Hardswish", "hardswish", "Hardsigmoid",
                                   "hardsigmoid", "Mish", "mish", "ELU", "elu", "Softplus",
                                   "softplus", "LogSoftmax", "log_softmax")),
    *(Case(op, {}, [WIDE], "wide") for op in ("ReLU6", "Hardswish", "Hardsigmoid", "Mish",
                                              "ELU", "Softplus")),
    *(Case(op, {}, [KINKS], "kinks", fd=False) for op in ("ReLU6", "Hardswish", "Hardsigmoid",
                                                          "ELU")),
    Case("ELU", {"alpha": 0.5}, [S], "alpha"),
    Case("Softplus", {"beta": 2.0, "threshold": 3.0}, [WIDE], "beta-threshold"),
    Case("LogSoftmax", {"dim": 1}, [S], "dim1"),
    Case("PReLU", {}, [S]),
    Case("PReLU", {"num_parameters": 3}, [(2, 3, 4, 2)], "per-channel"),
    # structured dropout
    *(Case(op, {"p": 0.3}, [shape], "eval") for op, shape in (
        ("Dropout1d", (2, 3, 4)), ("Dropout2d", (2, 3, 4, 4)), ("DropPath", (4, 3, 2)))),
    *(Case(op, {"p": 0.3}, [shape], "train", train=True, torch=False) for op, shape in (
        ("Dropout1d", (2, 3, 4)), ("Dropout2d", (2, 3, 4, 4)), ("DropPath", (4, 3, 2)))),
    # padding
    Case("Pad", {"padding": (1, 2)}, [S]),
    Case("Pad", {"padding": (1, 0, 2, 1, 0, 1), "value": 0.5}, [S], "constant-every-dim"),
    Case("pad", {"padding": (3, 2, 1, 1), "mode": "reflect"}, [(2, 2, 3, 4)], "reflect-border"),
    Case("pad", {"padding": (2, 1), "mode": "replicate"}, [(2, 2, 3, 4)], "replicate-one-dim"),
    Case("Pad", {"padding": (4, 2, 3, 0), "mode": "circular"}, [(2, 2, 3, 4)], "circular-full"),
    Case("Pad", {"padding": (1, 1, 2, 0, 1, 1), "mode": "reflect"}, [(1, 2, 3, 4, 3)],
         "reflect-3d"),
    # resampling
    Case("Upsample", {"scale": 2}, [IMAGE], "nearest-2x"),
    Case("Upsample", {"size": (7, 3)}, [IMAGE], "nearest-size"),
    Case("interpolate", {"scale": 1.5}, [(1, 2, 5)], "nearest-1d-scale"),
    Case("Upsample", {"scale": (2, 1.5, 0.5)}, [(1, 2, 3, 4, 4)], "nearest-3d"),
    Case("Upsample", {"scale": 2.05}, [(1, 2, 10)], "nearest-doubling", torch=False),
    Case("Upsample", {"scale": 2, "mode": "linear"}, [(2, 3, 5)], "linear"),
    Case("Upsample", {"size": 9, "mode": "linear", "align_corners": True}, [(2, 3, 5)],
         "linear-align"),
    Case("Upsample", {"scale": 2, "mode": "bilinear"}, [IMAGE], "bilinear"),
    Case("interpolate", {"size": (3, 8), "mode": "bilinear", "align_corners": True}, [IMAGE],
         "bilinear-align"),
    Case("Upsample", {"scale": 0.6, "mode": "bilinear"}, [IMAGE], "bilinear-down"),
    Case("Upsample", {"scale": 2, "mode": "bicubic"}, [IMAGE], "bicubic"),
    Case("Upsample", {"size": (4, 9), "mode": "bicubic", "align_corners": True}, [IMAGE],
         "bicubic-align"),
    Case("PixelShuffle", {"r": 2}, [(2, 8, 3, 2)]),
    Case("PixelUnshuffle", {"r": 2}, [(2, 2, 4, 6)]),
    # convolutions
    Case("Conv1d", {"out": 4, "kernel": 3, "padding": 2, "padding_mode": "reflect"},
         [(2, 3, 5)], "reflect-border"),
    Case("Conv2d", {"out": 4, "kernel": 3, "stride": 2, "padding": 1,
                    "padding_mode": "replicate"}, [(2, 3, 5, 6)], "replicate"),
    Case("Conv2d", {"out": 2, "kernel": (3, 2), "padding": "same", "padding_mode": "circular"},
         [(2, 2, 4, 5)], "circular-same"),
    Case("Conv3d", {"out": 4, "kernel": 3, "padding": 1}, [(2, 2, 4, 5, 4)]),
    Case("Conv3d", {"out": 4, "kernel": (2, 3, 3), "stride": 2, "padding": 1, "groups": 2,
                    "padding_mode": "reflect"}, [(1, 2, 4, 5, 5)], "reflect-groups"),
    Case("ConvTranspose1d", {"out": 3, "kernel": 4, "stride": 2, "padding": 1}, [(2, 4, 5)]),
    Case("ConvTranspose1d", {"out": 4, "kernel": 3, "stride": 3, "output_padding": 2,
                             "groups": 2, "bias": False}, [(2, 2, 4)], "groups-output-padding"),
    # pooling
    Case("MaxPool2d", {"kernel": 3, "stride": 2, "ceil_mode": True}, [(2, 2, 8, 7)], "ceil"),
    Case("MaxPool1d", {"kernel": 2, "stride": 3, "padding": 1, "ceil_mode": True},
         [(2, 3, 5)], "ceil-window-dropped"),
    Case("AvgPool2d", {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True},
         [(2, 2, 8, 6)], "ceil-pad"),
    Case("AvgPool2d", {"kernel": 3, "stride": 2, "padding": 1, "count_include_pad": False},
         [(2, 2, 7, 6)], "exclude-pad"),
    Case("AvgPool1d", {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                       "count_include_pad": False}, [(2, 3, 8)], "ceil-exclude-pad"),
    Case("MaxPool3d", {"kernel": 2}, [(2, 2, 4, 4, 5)]),
    Case("AvgPool3d", {"kernel": (2, 3, 3), "stride": 2, "padding": (1, 1, 0),
                       "ceil_mode": True}, [(1, 2, 5, 6, 7)], "ceil-pad"),
    Case("AdaptiveAvgPool1d", {"size": 3}, [(2, 3, 7)]),
    Case("AdaptiveMaxPool2d", {"size": (3, 2)}, [(2, 3, 7, 5)], "overlapping-bins"),
    Case("AdaptiveMaxPool2d", {"size": 2}, [(1, 2, 4, 6)], "exact-bins"),
    Case("GlobalMaxPool", {}, [(2, 3, 4, 5)]),
    Case("GlobalMaxPool", {}, [(2, 3, 7)], "1d"),
    # normalisation
    Case("BatchNorm3d", {}, [(3, 2, 2, 3, 2)], "train", train=True),
    Case("BatchNorm3d", {}, [(3, 2, 2, 3, 2)], "eval"),
    Case("GroupNorm", {"groups": 2}, [(2, 4, 3, 3)]),
    Case("GroupNorm", {"groups": 3, "affine": False, "eps": 1e-3}, [(2, 6, 5)], "noaffine"),
    Case("InstanceNorm1d", {}, [(2, 3, 5)]),
    Case("InstanceNorm2d", {"affine": True}, [(2, 3, 4, 3)], "affine"),
    Case("InstanceNorm2d", {"track_running_stats": True, "momentum": 0.2}, [(3, 2, 3, 3)],
         "tracking-train", train=True),
    Case("InstanceNorm2d", {"track_running_stats": True, "affine": True}, [(3, 2, 3, 3)],
         "tracking-eval"),
    Case("LayerNorm", {"bias": False}, [(2, 3, 6)], "nobias"),
    Case("LayerNorm", {"elementwise_affine": False}, [(2, 3, 6)], "noaffine"),
    Case("RMSNorm", {}, [(2, 3, 6)]),
    Case("RMSNorm", {"elementwise_affine": False, "eps": 1e-3}, [(4, 5)], "noaffine"),
    # lookup: the padding row gets no gradient though the forward pass reads it
    Case("Embedding", {"num": 5, "dim": 3, "padding_idx": -2},
         [Given([[0, 3, 3, 1], [3, 2, 0, 4]], "i64")], "padding-idx", fd=False),
    # recurrent layers with initial and final states, and cells
    Case("LSTM", {"hidden": 3}, [(2, 4, 3), (1, 2, 3), (1, 2, 3)], "initial-state"),
    Case("GRU", {"hidden": 3, "layers": 2, "bidirectional": True, "return_state": True},
         [(2, 4, 3), (4, 2, 3)], "states-in-out"),
    Case("LSTM", {"hidden": 3, "layers": 2, "return_state": True, "return_sequences": False},
         [(2, 4, 3)], "return-state-last"),
    Case("LSTM", {"hidden": 3, "bidirectional": True, "return_state": True},
         [(2, 4, 3), (2, 2, 3), (2, 2, 3)], "states-only", unused=(0,)),
    Case("RNN", {"hidden": 4, "return_state": True}, [(2, 3, 3), (1, 2, 4)], "state-unused",
         unused=(1,)),
    Case("GRU", {"hidden": 3, "layers": 2, "dropout": 0.5, "return_state": True},
         [(2, 4, 3), (2, 2, 3)], "dropout-train-state", train=True, torch=False),
    Case("RNNCell", {"hidden": 4}, [(3, 5)]),
    Case("RNNCell", {"hidden": 4, "bias": False}, [(3, 5), (3, 4)], "state-nobias"),
    Case("GRUCell", {"hidden": 3}, [(2, 4)]),
    Case("GRUCell", {"hidden": 4}, [(3, 5), (3, 4)], "state"),
    Case("LSTMCell", {"hidden": 4}, [(3, 5), (3, 4), (3, 4)], "state"),
    Case("LSTMCell", {"hidden": 3, "bias": False}, [(2, 4)], "zeros-nobias"),
    Case("LSTMCell", {"hidden": 3}, [(2, 4), (2, 3), (2, 3)], "c-only", unused=(0,)),
    # attention with masks, grouped-query heads and rotary positions
    Case("MultiHeadAttention", {"heads": 2}, [(2, 5, 8), Bools((2, 5), one_false=True)],
         "one-key-left", keywords=("key_padding_mask",)),
    Case("MultiHeadAttention", {"heads": 2, "causal": True}, [(2, 4, 8), (2, 6, 5), (2, 6, 3),
                                                              MASK],
         "cross-causal-key-padding", keywords=("key_padding_mask",)),
    Case("Attention", {"heads": 2}, [(2, 5, 8)], "self"),
    Case("Attention", {"heads": 4, "kv_heads": 2, "rotary": True, "causal": True},
         [(2, 5, 16)], "gqa-rotary-causal"),
    Case("Attention", {"heads": 4, "kv_heads": 1, "bias": True, "rotary": True,
                       "rope_base": 100.0}, [(2, 3, 8), (2, 6, 8), (2, 6, 8)], "mqa-cross-rotary"),
    Case("Attention", {"heads": 2, "rotary": True}, [(1, 40, 8)], "rotary-long"),
    Case("Attention", {"heads": 2, "kv_heads": 1, "causal": True}, [(2, 4, 8), (2, 6, 8),
                                                                   (2, 6, 8), MASK],
         "cross-causal-key-padding", keywords=("key_padding_mask",)),
    Case("Attention", {"heads": 2, "kv_heads": 1}, [(2, 4, 8), Bools((2, 4), one_false=True)],
         "one-key-left", keywords=("key_padding_mask",)),
    Case("Attention", {"heads": 2, "dropout": 0.3}, [(2, 5, 8)], "dropout-train", train=True,
         torch=False),
]
CASES = [
    # dense
    Case("Linear", {"out": 4}, [(3, 5)]),
    Case("Linear", {"out": 3, "bias": False}, [(2, 3, 5)], "3d-nobias"),
    Case("Embedding", {"num": 7, "dim": 4}, [Ids((2, 5), 7)]),
    Case("PositionalEncoding", {}, [(2, 5, 6)]),
    Case("PositionalEncoding", {"max_len": 9}, [(2, 5, 7)], "odd-dim"),
    Case("PositionalEmbedding", {"max_len": 8}, [(2, 5, 6)]),
    Case("Parameter", {"shape": [2, 3], "init": "zeros"}, []),
    Case("param", {"name": "weight", "shape": [4, 3]}, [], params={"weight": (4, 3)}),
    # convolutions
    Case("Conv1d", {"out": 4, "kernel": 3}, [(2, 3, 9)]),
    Case("Conv1d", {"out": 6, "kernel": 3, "stride": 2, "padding": 1, "dilation": 2,
                    "groups": 2}, [(2, 4, 11)], "stride-pad-dil-groups"),
    Case("Conv1d", {"out": 3, "kernel": 4, "stride": 2, "padding": "same"}, [(2, 3, 9)],
         "same-asymmetric"),
    Case("Conv2d", {"out": 4, "kernel": 3}, [(2, 3, 7, 6)]),
    Case("Conv2d", {"out": 6, "kernel": (3, 2), "stride": (2, 1), "padding": (1, 0),
                    "dilation": (1, 2), "groups": 2}, [(2, 4, 9, 8)], "mixed-groups"),
    Case("Conv2d", {"out": 4, "kernel": 3, "stride": 2, "padding": "same", "bias": False},
         [(2, 2, 8, 7)], "same-stride2-asymmetric"),
    Case("Conv2d", {"out": 4, "kernel": 3, "padding": "same", "dilation": 2}, [(1, 2, 6, 6)],
         "same-dilated"),
    Case("Conv2d", {"out": 6, "kernel": 3, "padding": 1, "groups": 3}, [(2, 3, 5, 5)],
         "depthwise-multiplier"),
    Case("Conv2d", {"out": 5, "kernel": 1}, [(2, 3, 4, 4)], "pointwise"),
    Case("Conv2d", {"out": 5, "kernel": 1, "stride": 2}, [(2, 3, 5, 5)], "pointwise-stride2"),
    Case("Conv2d", {"out": 4, "kernel": 2, "stride": 2}, [(2, 3, 6, 4)], "patches"),
    Case("Conv2d", {"out": 4, "kernel": 2, "stride": 2}, [(2, 3, 5, 4)], "patches-ragged"),
    Case("Conv2d", {"out": 4, "kernel": 2, "stride": 4, "dilation": 3}, [(2, 3, 9, 8)],
         "dilated-apart"),
    Case("Conv2d", {"out": 4, "kernel": 3, "padding": 1}, [(2, 12, 6, 5)], "wide"),
    Case("Conv2d", {"out": 12, "kernel": 3, "padding": 1, "groups": 2}, [(1, 4, 3, 3)],
         "deep-small"),
    Case("Conv2d", {"out": 6, "kernel": 3, "stride": 3, "padding": 1, "dilation": 2},
         [(2, 4, 9, 8)], "stride-over-span"),
    Case("ConvTranspose2d", {"out": 3, "kernel": 4, "stride": 2, "padding": 1}, [(2, 4, 5, 5)]),
    Case("ConvTranspose2d", {"out": 2, "kernel": 3, "stride": 2, "padding": 1,
                             "output_padding": 1}, [(2, 3, 4, 3)], "output-padding"),
    Case("ConvTranspose2d", {"out": 4, "kernel": (3, 2), "stride": (2, 3), "padding": (1, 0),
                             "output_padding": (1, 2), "groups": 2, "bias": False},
         [(2, 4, 3, 4)], "groups-asymmetric"),
    Case("ConvTranspose2d", {"out": 3, "kernel": 3, "padding": 1}, [(2, 4, 4, 5)], "stride1"),
    # pooling
    Case("MaxPool1d", {"kernel": 2}, [(2, 3, 8)]),
    Case("MaxPool1d", {"kernel": 3, "stride": 2, "padding": 1}, [(2, 3, 9)], "overlap-pad"),
    Case("MaxPool2d", {"kernel": 2}, [(2, 3, 6, 6)]),
    Case("MaxPool2d", {"kernel": 3, "stride": 2, "padding": 1}, [(2, 2, 7, 6)], "overlap-pad"),
    Case("MaxPool2d", {"kernel": 2, "stride": 3}, [(2, 2, 8, 7)], "stride-over-kernel"),
    Case("MaxPool2d", {"kernel": 2}, [(2, 2, 7, 5)], "ragged"),
    Case("AvgPool1d", {"kernel": 2}, [(2, 3, 8)]),
    Case("AvgPool1d", {"kernel": 3, "stride": 2, "padding": 1}, [(2, 3, 9)], "overlap-pad"),
    Case("AvgPool2d", {"kernel": 2}, [(2, 3, 6, 6)]),
    Case("AvgPool2d", {"kernel": (3, 2), "stride": (2, 1), "padding": (1, 1)}, [(2, 2, 7, 6)],
         "overlap-pad"),
    Case("AvgPool2d", {"kernel": 2, "stride": 3, "padding": 1}, [(2, 2, 8, 7)],
         "stride-over-kernel"),
    Case("AvgPool2d", {"kernel": 2}, [(2, 2, 7, 5)], "ragged"),
    Case("AvgPool1d", {"kernel": 3, "stride": 4}, [(2, 3, 11)], "stride-over-kernel"),
    Case("AdaptiveAvgPool2d", {"size": 3}, [(2, 3, 7, 5)]),
    Case("AdaptiveAvgPool2d", {"size": (2, 1)}, [(2, 3, 5, 4)], "rect"),
    Case("GlobalAvgPool", {}, [(2, 3, 4, 5)]),
    Case("GlobalAvgPool", {}, [(2, 3, 7)], "1d"),
    # normalisation
    Case("BatchNorm1d", {}, [(6, 3)], "train", train=True),
    Case("BatchNorm1d", {}, [(6, 3)], "eval"),
    Case("BatchNorm1d", {"momentum": 0.3}, [(4, 3, 5)], "seq-train", train=True),
    Case("BatchNorm2d", {}, [(3, 4, 3, 3)], "train", train=True),
    Case("BatchNorm2d", {"eps": 1e-3}, [(3, 4, 3, 3)], "eval"),
    Case("BatchNorm2d", {"affine": False}, [(3, 4, 3, 3)], "noaffine-train", train=True),
    Case("LayerNorm", {}, [(2, 3, 6)]),
    Case("LayerNorm", {"eps": 1e-3}, [(4, 60, 300)], "row-blocks"),
    # recurrent
    *(Case(op, {"hidden": 4}, [(2, 5, 3)]) for op in ("RNN", "LSTM", "GRU")),
    *(Case(op, {"hidden": 3, "layers": 2, "bidirectional": True}, [(2, 4, 3)], "bi-2layer")
      for op in ("RNN", "LSTM", "GRU")),
    *(Case(op, {"hidden": 3, "layers": 2, "bidirectional": True, "return_sequences": False},
           [(2, 4, 3)], "bi-2layer-last") for op in ("RNN", "LSTM", "GRU")),
    *(Case(op, {"hidden": 3, "layers": 2, "dropout": 0.5}, [(2, 4, 3)], "dropout-train",
           train=True, torch=False) for op in ("RNN", "LSTM", "GRU")),
    Case("GRU", {"hidden": 3, "layers": 2, "dropout": 0.5}, [(2, 4, 3)], "dropout-eval"),
    # attention
    Case("MultiHeadAttention", {"heads": 2}, [(2, 5, 8)], "self"),
    Case("MultiHeadAttention", {"heads": 2, "causal": True}, [(2, 5, 8)], "causal"),
    Case("MultiHeadAttention", {"heads": 2, "causal": True}, [(2, 4, 8), (2, 6, 5), (2, 6, 3)],
         "cross-causal-kdim"),
    Case("MultiHeadAttention", {"heads": 4}, [(2, 3, 8), (2, 6, 8), (2, 6, 8)], "cross-tq-tk"),
    Case("MultiHeadAttention", {"heads": 1, "bias": False}, [(2, 4, 6)], "nobias"),
    Case("MultiHeadAttention", {"heads": 2, "dropout": 0.3}, [(2, 5, 8)], "dropout-train",
         train=True, torch=False),
    Case("AdditiveAttention", {"units": 6}, [(2, 4), (2, 5, 3)]),
    # activations
    *(Case(op, {}, [S]) for op in ("ReLU", "relu", "GELU", "gelu", "Tanh", "tanh", "Sigmoid",
                                   "sigmoid", "SiLU", "silu", "Identity", "Softmax",
                                   "softmax", "LeakyReLU")),
    Case("GELU", {"approximate": "tanh"}, [S], "tanh"),
    Case("LeakyReLU", {"slope": 0.2}, [S], "slope"),
    Case("LeakyReLU", {"slope": 0.2}, [KINKS], "kinks", fd=False),
    Case("LeakyReLU", {"slope": 0.0}, [KINKS], "flat", fd=False),
    Case("LeakyReLU", {"slope": 1.5}, [S], "steep"),
    Case("LeakyReLU", {"slope": -0.3}, [S], "negative"),
    Case("Softmax", {"dim": 1}, [S], "dim1"),
    Case("Dropout", {"p": 0.3}, [S], "eval"),
    Case("Dropout", {"p": 0.3}, [S], "train", train=True, torch=False),
    # shapes
    Case("Flatten", {}, [S]),
    Case("Reshape", {}, [(2, 12)], pos=(3, 4)),
    Case("Reshape", {}, [(2, 12)], "infer", pos=(2, -1, 1)),
    Case("reshape", {"shape": [6, -1]}, [S]),
    Case("transpose", {"dim0": 0, "dim1": -1}, [S]),
    Case("permute", {"dims": [2, 0, 1]}, [S]),
    Case("expand", {"shape": [2, 3, 4]}, [(3, 1)]),
    Case("expand", {"shape": [2, -1, 4]}, [(1, 3, 1)], "keep"),
    Case("concat", {"dim": 1}, [(2, 1, 4), (2, 3, 4), (2, 2, 4)]),
    Case("getitem", {"index": [[None, None, None], -1]}, [S], "last"),
    Case("getitem", {"index": [1, [0, 3, 2]]}, [S], "slice-step"),
    Case("mean", {"dim": [1], "keepdim": True}, [S]),
    Case("mean", {}, [S], "all"),
    Case("sum", {"dim": [0, 2]}, [S]),
    Case("sum", {"dim": -1}, [S], "neg-dim"),
    # arithmetic
    *(Case(op, {}, [S, (3, 1)], "broadcast") for op in ("add", "sub", "mul", "div")),
    *(Case(op, {}, [(4,), S], "rank") for op in ("add", "mul")),
    *(Case(op, {"scalar": 0.5}, [S], "scalar") for op in ("add", "sub", "mul", "div")),
    *(Case(op, {"scalar": 2.0, "scalar_first": True}, [S], "scalar-first")
      for op in ("sub", "div")),
    Case("neg", {}, [S]),
    Case("matmul", {}, [S, (4, 5)]),
    Case("matmul", {}, [(4,), (2, 4, 3)], "vector-left"),
    Case("matmul", {}, [(3, 4), (4,)], "vector-right"),
    Case("matmul", {}, [(2, 1, 3, 4), (5, 4, 2)], "batch-broadcast"),
    *SECTION_10,
]


def _types(spec: Any) -> list[TensorType]:
    if isinstance(spec, Parts):
        return [TensorType(dtype="f64", shape=s) for s in spec.shapes]
    if isinstance(spec, Given):
        return [TensorType(dtype=spec.dtype, shape=np.shape(spec.values))]
    dtype = {Ids: "i64", Bools: "bool", Positive: "f64"}.get(type(spec), "f64")
    return [TensorType(dtype=dtype, shape=getattr(spec, "shape", spec))]


def _bind(case: Case) -> tuple[dict, list[ParamSpec], list[TensorType]]:
    """The op's arguments and parameters as the front end resolves them: numbers standing
    for tensors (`where`) and the flags of keyword inputs join the bound arguments, as the
    elaborator adds them."""
    op = REGISTRY[case.op]
    ins = [t for s in case.inputs for t in _types(s)]
    numbers = {k: case.args.get(k) for k in op.number_inputs}
    given = {k: k in case.keywords for k in op.keyword_inputs}
    bound = bind_args(op, list(case.pos), {k: v for k, v in case.args.items()
                                           if k not in numbers})
    a = op.normalize({**bound, **numbers, **given}, ins)
    specs = [ParamSpec(name=k, shape=v, init=ZEROS)
             for k, v in case.params.items()] or op.params(a, ins)
    return a, specs, ins


def _input(spec: Any, rng: np.random.Generator, dtype) -> Any:
    if isinstance(spec, Ids):
        return rng.integers(0, spec.high, spec.shape)
    if isinstance(spec, Bools):
        if not spec.one_false:
            return rng.random(spec.shape) < 0.5
        keep = rng.integers(0, spec.shape[-1], spec.shape[:-1])
        return np.arange(spec.shape[-1]) != keep[..., None]
    if isinstance(spec, Positive):
        return rng.uniform(0.5, 2, spec.shape).astype(dtype)
    if isinstance(spec, Given):
        v = np.array(spec.values)
        return v.astype(dtype) if spec.dtype.startswith("f") else v
    if isinstance(spec, Parts):
        return tuple(rng.standard_normal(s).astype(dtype) for s in spec.shapes)
    return rng.standard_normal(spec).astype(dtype)


def _values(case: Case, specs: list[ParamSpec], dtype=np.float64):
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    xs = [_input(s, rng, dtype) for s in case.inputs]
    p = {}
    for s in specs:
        if s.dtype == "i64":
            p[s.name] = np.zeros(s.shape, np.int64)
        elif s.name == "running_var":
            p[s.name] = rng.uniform(0.5, 1.5, s.shape).astype(dtype)
        else:
            p[s.name] = (rng.standard_normal(s.shape) * 0.6).astype(dtype)
    return xs, p, rng


def _forward(case: Case, a: dict, p: dict, xs: list):
    """One forward on copies of the parameters, with a dropout generator fixed per call."""
    p = {k: v.copy() for k, v in p.items()}
    y, cache = KERNELS[case.op].forward(a, p, list(xs), Ctx(case.train, np.random.default_rng(7)))
    return y, cache, p


def _is_float(v: np.ndarray) -> bool:
    return np.issubdtype(v.dtype, np.floating)


def _parts(v: Any) -> tuple:
    """The parts of a multi-output value (a tuple), or the one array."""
    return v if isinstance(v, tuple) else (v,)


def _cotangent(case: Case, y: Any, rng: np.random.Generator, dtype=np.float64) -> Any:
    """A random dL/dy shaped like y: None for a part in `case.unused` or not floating."""
    g = tuple(None if i in case.unused or not _is_float(part)
              else rng.standard_normal(part.shape).astype(dtype)
              for i, part in enumerate(_parts(y)))
    return g if isinstance(y, tuple) else g[0]


def _dot(y: Any, g: Any) -> float:
    return sum(float((part * d).sum()) for part, d in zip(_parts(y), _parts(g), strict=True)
               if d is not None)


def _differentiable(xs: list, dxs: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """(float input, its gradient) pairs, the parts of a tuple input one by one; a gradient
    of None (the output does not depend on that input) is zeros."""
    pairs = []
    for x, dx in zip(xs, dxs, strict=True):
        for part, d in zip(_parts(x), _parts(dx) if dx is not None else (None,) * len(_parts(x)),
                           strict=True):
            if _is_float(part):
                pairs.append((part, np.zeros_like(part) if d is None else d))
    return pairs


def _finite_differences(case: Case) -> None:
    """The backward pass against central differences of the forward, float64."""
    a, specs, _ = _bind(case)
    xs, p, rng = _values(case, specs)
    y, cache, _ = _forward(case, a, p, xs)
    g = _cotangent(case, y, rng)
    if all(d is None for d in _parts(g)):  # a bool result: nothing flows back
        dxs, dps = KERNELS[case.op].backward(np.zeros(y.shape), cache)
        assert dxs == [None] * len(xs) and dps == {}
        return
    dxs, dps = KERNELS[case.op].backward(g, cache)
    assert len(dxs) == len(xs)
    assert set(dps) == {s.name for s in specs if s.kind == "param"}
    h = 1e-6

    def loss() -> float:
        return _dot(_forward(case, a, p, xs)[0], g)

    targets = _differentiable(xs, dxs)
    targets += [(p[k], dps[k]) for k in dps]
    for value, grad in targets:
        assert grad.shape == value.shape
        flat = value.reshape(-1)  # a view: perturbs the array in place
        for i in rng.choice(flat.size, min(flat.size, 15), replace=False):
            old = flat[i]
            flat[i] = old + h
            up = loss()
            flat[i] = old - h
            down = loss()
            flat[i] = old
            np.testing.assert_allclose(grad.reshape(-1)[i], (up - down) / (2 * h),
                                       rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", [c for c in CASES if c.fd], ids=lambda c: c.id)
def test_backward_matches_finite_differences(case: Case) -> None:
    _finite_differences(case)


def _tensor(v: Any, grad: bool = True) -> Any:
    """A float64 leaf tensor of v, collecting a gradient when `grad` and floating (a tuple of
    them for parts)."""
    if isinstance(v, tuple):
        return tuple(_tensor(x, grad) for x in v)
    return torch.tensor(v.astype(np.float64) if _is_float(v) else v,
                        requires_grad=grad and _is_float(v))


def _against_torch(case: Case, dtype: type, rtol: float, atol: float,
                   lay: Callable[[Any], Any] = lambda v: v) -> Any:
    """Our kernel in `dtype` against PyTorch in float64 on the same values, forward and back,
    part by part for multi-output ops; `lay` lays out our inputs and dL/dy. Returns our
    output."""
    a, specs, _ = _bind(case)
    xs, p, rng = _values(case, specs, dtype)
    xs = [lay(x) for x in xs]
    y, cache, p_after = _forward(case, a, p, xs)
    g = lay(_cotangent(case, y, rng, dtype))
    dxs, dps = KERNELS[case.op].backward(g, cache) if any(
        d is not None for d in _parts(g)) else ([None] * len(xs), {})

    xt = [_tensor(x) for x in xs]
    pt = {s.name: _tensor(p[s.name], s.kind == "param") for s in specs}
    yt = numpy_oracle.run(case.op, a, pt, xt, case.train)
    reached = [(t, _tensor(d, False)) for t, d in zip(_parts(yt), _parts(g), strict=True)
               if d is not None and t.requires_grad]
    if reached:
        torch.autograd.backward(*zip(*reached, strict=True))

    def close(ours, ref, what):
        assert ours.dtype == dtype or not _is_float(ours), what
        ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else ref
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, err_msg=what)

    for i, (ours, ref) in enumerate(zip(_parts(y), _parts(yt), strict=True)):
        close(ours, ref, f"output {i}")
    for i, (t, dx) in enumerate(zip(xt, dxs, strict=True)):
        for part, d in zip(_parts(t), _parts(dx) if dx is not None else (None,) * len(_parts(t)),
                           strict=True):
            if part.requires_grad:  # None on either side: no gradient, zeros
                close(np.zeros(part.shape, dtype) if d is None else d,
                      torch.zeros_like(part) if part.grad is None else part.grad,
                      f"grad of input {i}")
    for s in specs:
        if s.kind == "param":
            close(dps[s.name], pt[s.name].grad, f"grad of {s.name}")
        else:
            close(p_after[s.name], pt[s.name], f"buffer {s.name}")
    return y


@pytest.mark.parametrize("case", [c for c in CASES if c.torch], ids=lambda c: c.id)
def test_matches_torch(case: Case) -> None:
    _against_torch(case, np.float64, 1e-5, 1e-8)


# Paths that only float32 takes, or that only large inputs reach (several `BLOCK`s).
FLOAT32_CASES = [
    Case("GELU", {}, [(3, 40000)], "blocks"),
    Case("GELU", {"approximate": "tanh"}, [(3, 40000)], "tanh-blocks"),
]


@pytest.mark.parametrize("case", FLOAT32_CASES, ids=lambda c: c.id)
def test_float32_matches_torch(case: Case) -> None:
    _against_torch(case, np.float32, 1e-5, 1e-6)


@pytest.mark.parametrize("layout", ["channels_first", "channels_last", "channels_last-rows"])
@pytest.mark.parametrize("case", [c for c in CASES if c.op.startswith("Conv")],
                         ids=lambda c: c.id)
def test_conv_layouts(case: Case, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each convolution case through each layout (`conv.py` picks one by size), against
    finite differences and PyTorch, in float64 and float32; "-rows" cuts the channels-last
    work into chunks of one output row, as large images are."""
    monkeypatch.setattr(conv, "_channels_last", lambda w, rows: layout != "channels_first")
    if layout.endswith("-rows"):
        monkeypatch.setattr(channels_last, "CHUNK", 1)
    if case.fd:
        _finite_differences(case)
    if case.torch:
        _against_torch(case, np.float64, 1e-5, 1e-8)
        _against_torch(case, np.float32, 1e-4, 1e-5)


def _laid_last(v: np.ndarray) -> np.ndarray:
    """A (B, C, H, W) array laid out channels-last, as a channels-last convolution returns it
    (`windows.first_view`); other arrays as they are."""
    if v.ndim != 4:
        return v
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(v, 1, -1)), -1, 1)


@pytest.mark.parametrize("case", [c for c in CASES if c.torch and len(c.inputs) == 1 and
                                  isinstance(c.inputs[0], tuple) and len(c.inputs[0]) == 4 and
                                  c.op in ("Conv2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d")],
                         ids=lambda c: c.id)
def test_channels_last_inputs(case: Case) -> None:
    """What follows a convolution gets its channels-last output (and, from the ops after it,
    a channels-last dL/dy): the same values as PyTorch, and batch normalisation and pooling
    keep the layout (not ceil mode's pooling, which pads by `pad_by_mode`)."""
    y = _against_torch(case, np.float64, 1e-5, 1e-8, _laid_last)
    kept = case.op != "Conv2d" and not case.args.get("ceil_mode")
    if kept and y.shape[1] > 1 and y[0, 0].size > 1:
        assert windows.channels_last(y)


def test_float32_normal_cdf_is_accurate() -> None:
    """GELU's float32 Phi within 1e-7 of the exact value (PyTorch's float32 ndtr: 7e-8), from
    the centre to the tails, and the float64 one to double precision."""
    x = np.linspace(-12, 12, 240_001)
    exact = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    assert normal_cdf(x.astype(np.float32)).dtype == np.float32
    assert np.abs(normal_cdf(x.astype(np.float32)) - exact).max() < 1e-7
    assert np.abs(normal_cdf(x) - exact).max() < 1e-15


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float32_stays_float32(case: Case) -> None:
    a, specs, _ = _bind(case)
    xs, p, rng = _values(case, specs, np.float32)
    y, cache, _ = _forward(case, a, p, xs)
    for part in _parts(y):
        assert part.dtype == np.float32 or part.dtype == bool
    g = _cotangent(case, y, rng, np.float32)
    if all(d is None for d in _parts(g)):
        return
    dxs, dps = KERNELS[case.op].backward(g, cache)
    for d in [*(part for dx in dxs for part in _parts(dx)), *dps.values()]:
        assert d is None or d.dtype == np.float32


def test_nearest_doubling_follows_torch_forward() -> None:
    """A scale that doubles the size without being 2 (2.05 on 10): PyTorch's forward reads
    floor(dst / 2.05), which we follow, but its backward sends dst to dst // 2, the shortcut
    of its size-doubling case, which is not that forward's derivative. Ours is (the case
    `Upsample-nearest-doubling` checks it against finite differences)."""
    x = np.arange(10.0)[None, None]
    y, cache = KERNELS["Upsample"].forward({"size": None, "scale": [2.05], "mode": "nearest",
                                            "align_corners": None}, {}, [x], Ctx())
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.interpolate(xt, scale_factor=2.05, mode="nearest")
    np.testing.assert_array_equal(y, yt.detach().numpy())
    g = np.arange(20.0)[None, None]
    yt.backward(torch.tensor(g))
    [dx], _ = KERNELS["Upsample"].backward(g, cache)
    np.testing.assert_array_equal(dx[0, 0], [3, 7, 11, 15, 19, 23, 27, 31, 35, 19])
    np.testing.assert_array_equal(xt.grad[0, 0], [1, 5, 9, 13, 17, 21, 25, 29, 33, 37])


def test_dropout_drops_and_scales() -> None:
    x = np.ones((200, 100))
    y, _ = KERNELS["Dropout"].forward({"p": 0.25}, {}, [x], Ctx(True, np.random.default_rng(0)))
    assert abs((y == 0).mean() - 0.25) < 0.01
    assert set(np.unique(y)) == {0.0, 1 / 0.75}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_keeps_its_tails(dtype: type) -> None:
    """Tiny values stay relatively accurate (LSTM forget gates, GAN losses), without an
    overflow warning from exp."""
    x = np.array([-120, -60, -20, -1, 0, 1, 20, 60, 120], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, _ = KERNELS["Sigmoid"].forward({}, {}, [x], Ctx())
    exact = torch.sigmoid(torch.tensor(x, dtype=torch.float64)).numpy()
    assert y.dtype == dtype
    np.testing.assert_allclose(y, exact, rtol=1e-6, atol=np.finfo(dtype).smallest_subnormal)


def test_freed_arrays_come_back_without_page_faults() -> None:
    """With glibc, the kernels keep freed memory: two 2 MB arrays made and dropped twenty
    times fault no pages in (glibc's defaults fault about a thousand per round)."""
    assert memory.keep_freed_memory() == (platform.libc_ver()[0] == "glibc")
    if platform.libc_ver()[0] != "glibc":
        return
    x = np.ones((2048, 256), np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        a, b = x * 2, x * 3
        del a, b
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 100


@pytest.mark.parametrize("op, shape, unit", [("Dropout1d", (40, 50, 6), (2,)),
                                             ("Dropout2d", (40, 50, 3, 2), (2, 3)),
                                             ("DropPath", (2000, 3, 2), (1, 2))])
def test_structured_dropout_drops_whole_units(op: str, shape: tuple, unit: tuple) -> None:
    """Channels (or examples) are kept or dropped whole, at rate p, survivors scaled."""
    x = np.ones(shape)
    y, _ = KERNELS[op].forward({"p": 0.25}, {}, [x], Ctx(True, np.random.default_rng(0)))
    assert (y.min(axis=unit) == y.max(axis=unit)).all()
    assert abs((y == 0).mean() - 0.25) < 0.02
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    y, _ = KERNELS[op].forward({"p": 0.25}, {}, [x], Ctx(False))
    assert (y == x).all()


def test_randn_like_draws_fresh_noise_or_the_given_draws() -> None:
    """Fresh standard normal noise of x's shape and dtype at every call, in training and
    evaluation; while `Ctx.noise` is set (archdsl.noise), its arrays instead."""
    x = np.zeros((400, 300), np.float32)
    ctx = Ctx(False, np.random.default_rng(0))
    first, _ = KERNELS["randn_like"].forward({}, {}, [x], ctx)
    second, _ = KERNELS["randn_like"].forward({}, {}, [x], ctx)
    assert first.dtype == np.float32 and first.shape == x.shape
    assert abs(first.mean()) < 0.01 and abs(first.std() - 1) < 0.01
    assert not np.array_equal(first, second)
    shapes = []

    def draws(shape):
        shapes.append(shape)
        return np.full(shape, 0.5)

    given, _ = KERNELS["randn_like"].forward({}, {}, [x], Ctx(True, noise=draws))
    assert shapes == [x.shape] and given.dtype == np.float32 and (given == 0.5).all()


@pytest.mark.parametrize("op", ["MultiHeadAttention", "Attention"])
def test_a_query_with_every_key_masked_is_nan(op: str) -> None:
    """LANGUAGE.md 10.3: NaN for a query whose keys are all masked, the others unharmed."""
    case = Case(op, {"heads": 2}, [(2, 3, 4), Given([[True, True, True], [False, True, True]],
                                                     "bool")], keywords=("key_padding_mask",))
    a, specs, _ = _bind(case)
    xs, p, _ = _values(case, specs)
    y, _, _ = _forward(case, a, p, xs)
    assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()


def test_parts_send_their_gradients_back_to_one_node() -> None:
    """Each `part` node gives its multi-output input a tuple with its gradient at its index;
    `add_gradient` sums them per part, and the op's backward fills unused parts with zeros."""
    x = np.arange(12.0).reshape(2, 6)
    parts, cache = KERNELS["split"].forward({"size": [2, 3, 1], "dim": 1}, {}, [x], Ctx())
    total = None
    for index, g in ((2, np.ones((2, 1))), (0, np.full((2, 2), 3.0)), (2, np.ones((2, 1)))):
        _, part_cache = KERNELS["part"].forward({"index": index}, {}, [parts], Ctx())
        [sent], _ = KERNELS["part"].backward(g, part_cache)
        total = add_gradient(total, sent)
    assert total[1] is None
    [dx], _ = KERNELS["split"].backward(total, cache)
    np.testing.assert_array_equal(dx, [[3, 3, 0, 0, 0, 2]] * 2)


def test_instance_norm_needs_two_positions() -> None:
    """PyTorch refuses instance statistics of a single value per channel."""
    with pytest.raises(ValueError, match="more than one position"):
        KERNELS["InstanceNorm2d"].forward({"eps": 1e-5, "track_running_stats": False},
                                          {}, [np.ones((2, 3, 1, 1))], Ctx())
