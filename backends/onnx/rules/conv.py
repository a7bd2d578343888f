"""Convolutions and padding. PyTorch's `padding_mode` pads the input first (F.pad's mode)
and convolves it unpadded; `Pad`/`pad` is F.pad. ONNX's Pad has the constant, reflect and
edge (replicate) modes in opset 17; circular padding is its two wrapped slices concatenated
around the input, which is what F.pad's "circular" copies."""

from __future__ import annotations

import numpy as np

from ..builder import NUMPY
from ..site import END, Site

_ONNX_MODE = {"constant": "constant", "zeros": "constant", "reflect": "reflect",
              "replicate": "edge"}


def pad(s: Site, x: str, pairs: dict[int, tuple[int, int]], mode: str, value: float = 0.0
        ) -> str:
    """`x` padded by (before, after) cells on each axis of `pairs` in F.pad's `mode`."""
    pairs = {axis: p for axis, p in pairs.items() if p != (0, 0)}
    if not pairs:
        return x
    t = s.ins[0]
    if mode == "circular":
        for axis, (before, after) in sorted(pairs.items()):
            axes = s.const([axis], "axis")
            parts = [x]
            if before:
                parts.insert(0, s.op("Slice", x, s.const([-before], "start"),
                                     s.const([END], "end"), axes,
                                     hint="wrap_before"))
            if after:
                parts.append(s.op("Slice", x, s.const([0], "start"), s.const([after], "end"),
                                  axes, hint="wrap_after"))
            x = s.op("Concat", *parts, axis=axis, hint="circular")
        return x
    pads = [pairs.get(axis, (0, 0))[0] for axis in range(t.rank)] + \
        [pairs.get(axis, (0, 0))[1] for axis in range(t.rank)]
    extra = []
    if value != 0.0:
        if t.dtype == "bf16":
            extra = [s.scalar(value, "bf16")]
        else:
            extra = [s.const(np.asarray(value).astype(NUMPY[t.dtype]), "value", None)]
    return s.op("Pad", x, s.const(pads, "pads"), *extra, mode=_ONNX_MODE[mode])


def pad_layer(s: Site) -> str:
    """F.pad's `padding`: (before, after) pairs from the last dimension backwards."""
    flat, rank = s.args["padding"], s.ins[0].rank
    pairs = {rank - 1 - i: (flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2)}
    return pad(s, s.x, pairs, s.args["mode"], s.args["value"])


def conv(s: Site) -> str:
    a = s.args
    bias = [s.param("bias")] if a["bias"] else []
    x, padding = s.x, a["padding"]
    if a["padding_mode"] != "zeros":
        x = pad(s, x, {axis: tuple(p) for axis, p in enumerate(padding, start=2)},
                a["padding_mode"])
        padding = [[0, 0]] * len(padding)
    pads = [before for before, _ in padding] + [after for _, after in padding]
    return s.op("Conv", x, s.param("weight"), *bias, kernel_shape=a["kernel"],
                strides=a["stride"], dilations=a["dilation"], group=a["groups"], pads=pads)


def conv_transpose(s: Site) -> str:
    a = s.args
    bias = [s.param("bias")] if a["bias"] else []
    return s.op("ConvTranspose", s.x, s.param("weight"), *bias, kernel_shape=a["kernel"],
                strides=a["stride"], pads=a["padding"] * 2, output_padding=a["output_padding"],
                group=a["groups"])


RULES = {
    **{f"Conv{n}d": conv for n in (1, 2, 3)},
    **{f"ConvTranspose{n}d": conv_transpose for n in (1, 2)},
    "Pad": pad_layer,
    "pad": pad_layer,
}
