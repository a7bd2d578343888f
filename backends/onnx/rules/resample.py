"""Resampling: `Upsample`/`interpolate` and `PixelShuffle`/`PixelUnshuffle`.

`linear`, `bilinear` and `bicubic` are ONNX's Resize with PyTorch's source coordinates
(`half_pixel`, or `align_corners`; cubic coefficient -0.75, taps past the border clamped to
it), given the scales when the spec gave `scale` (PyTorch then maps coordinates with
1/scale, not in/out) and the sizes otherwise. PyTorch leaves an axis whose size does not
change untouched in `bilinear`, and a whole image in `bicubic`, whatever the scale; so does
this lowering. `nearest` is a Gather of PyTorch's source indices floor(dst · r) with
r = float32(1/scale) or float32(in)/float32(out), the product rounded to float32 as
PyTorch rounds it: Resize's nearest modes compute the index another way and differ from it
by one pixel at some sizes. Indices are constants when the sizes are known, computed from
the run-time sizes otherwise.
"""

from __future__ import annotations

import numpy as np

from archdsl.symbolic import Dim

from ..builder import ELEMENT
from ..site import Refusal, Site

_PRECISION = {"f64": np.float64}  # the precision of the index product; float32 otherwise


def _nearest_index(n_in: int, n_out: int, scale: float | None, dtype: str) -> np.ndarray:
    t = _PRECISION.get(dtype, np.float32)
    ratio = t(1.0 / scale) if scale is not None else t(n_in) / t(n_out)
    src = (np.arange(n_out, dtype=t) * ratio).astype(np.float32)
    return np.minimum(np.floor(src).astype(np.int64), n_in - 1)


def _nearest_index_at_run_time(s: Site, axis: int, n_in: Dim, n_out: Dim,
                               scale: float | None, dtype: str) -> str:
    """The same indices computed by the model from its run-time sizes."""
    t = "f64" if dtype == "f64" else "f32"
    size = s.op("Squeeze", s.dim(n_out), hint=f"index{axis}")
    dst = s.op("Cast", s.op("Range", s.const(0, "start"), size, s.const(1, "step"),
                            hint=f"index{axis}"), to=ELEMENT[t], hint=f"index{axis}")
    if scale is not None:
        ratio = s.array(1.0 / scale, t, "ratio")
    else:
        ratio = s.op("Div", s.cast(s.dim(n_in), "i64", t), s.cast(s.dim(n_out), "i64", t),
                     hint=f"ratio{axis}")
    src = s.cast(s.op("Mul", dst, ratio, hint=f"index{axis}"), t, "f32")
    index = s.op("Cast", s.op("Floor", src, hint=f"index{axis}"), to=ELEMENT["i64"],
                 hint=f"index{axis}")
    last = s.op("Sub", s.dim(n_in), s.const([1], "one"), hint=f"last{axis}")
    return s.op("Min", index, last, hint=f"index{axis}")


def _nearest(s: Site) -> str:
    a, t = s.args, s.ins[0]
    scales = a["scale"] or [None] * (t.rank - 2)
    y = s.x
    for axis, (n_in, n_out, scale) in enumerate(zip(t.shape[2:], s.out.shape[2:], scales,
                                                    strict=True), start=2):
        if isinstance(n_in, int) and isinstance(n_out, int):
            index = _nearest_index(n_in, n_out, scale, t.dtype)
            if np.array_equal(index, np.arange(n_in)):
                continue
            indices = s.const(index, f"index{axis}")
        else:
            indices = _nearest_index_at_run_time(s, axis, n_in, n_out, scale, t.dtype)
        y = s.op("Gather", y, indices, axis=axis, hint=f"nearest{axis}")
    return y


def _same_size(s: Site, n_in: Dim, n_out: Dim, axis: int) -> str:
    """A bool tensor [1]: whether the axis keeps its size at run time."""
    return s.op("Equal", s.dim(n_in), s.dim(n_out), hint=f"same{axis}")


def _scales(s: Site) -> str:
    """Resize's scales: the spec's, and 1 on an axis whose size `bilinear` leaves alone, or on
    every axis when `bicubic` leaves the image alone; at run time where a size is symbolic
    and the scale between 1 and 2 (the size stays only for small inputs)."""
    a, t = s.args, s.ins[0]
    mode = a["mode"]
    axes = list(enumerate(zip(t.shape[2:], s.out.shape[2:], a["scale"], strict=True), start=2))
    values: list[float | str] = [1.0, 1.0]
    for axis, (n_in, n_out, scale) in axes:
        if isinstance(n_in, int):
            if np.floor(np.float32(n_in) * np.float32(scale)) != n_out:
                raise Refusal(f"ONNX's Resize sizes axis {axis} floor({n_in} · {scale}) in "
                              f"float32, which is not PyTorch's {n_out}: give `size=` instead")
            values.append(1.0 if mode == "bilinear" and n_in == n_out else scale)
        elif mode == "bilinear" and 1 < scale < 2:
            values.append(s.op("Where", _same_size(s, n_in, n_out, axis),
                               s.const([1.0], "one", np.float32),
                               s.const([scale], "scale", np.float32), hint=f"scale{axis}"))
        else:
            values.append(scale)
    if all(isinstance(v, float) for v in values):
        scales = s.const(values, "scales", np.float32)
    else:
        scales = s.op("Concat", *[s.const([v], "scale", np.float32) if isinstance(v, float)
                                  else v for v in values], axis=0, hint="scales")
    symbolic = [(axis, n_in, n_out) for axis, (n_in, n_out, _) in axes
                if not isinstance(n_in, int)]
    if mode == "bicubic" and symbolic and all(
            n_in == n_out if isinstance(n_in, int) else 1 < scale < 2
            for _, (n_in, n_out, scale) in axes):
        same = [_same_size(s, n_in, n_out, axis) for axis, n_in, n_out in symbolic]
        kept = same[0] if len(same) == 1 else s.op("And", *same, hint="same")
        scales = s.op("Where", kept, s.const(np.ones(t.rank), "ones", np.float32), scales,
                      hint="scales")
    return scales


def _resize(s: Site) -> str:
    a, t = s.args, s.ins[0]
    if a["scale"] is not None:
        unchanged = list(t.shape[2:]) == list(s.out.shape[2:])
        if a["mode"] == "bicubic" and unchanged:  # PyTorch copies the image
            return s.x
        target = ["", _scales(s)]
    else:
        target = ["", "", s.sizes(s.out.shape, "sizes")]
    return s.op("Resize", s.x, *target, mode="cubic" if a["mode"] == "bicubic" else "linear",
                coordinate_transformation_mode="align_corners" if a["align_corners"]
                else "half_pixel", cubic_coeff_a=-0.75 if a["mode"] == "bicubic" else None)


def resample(s: Site) -> str:
    return _nearest(s) if s.args["mode"] == "nearest" else _resize(s)


def pixel_unshuffle(s: Site) -> str:
    """[B, C, H·r, W·r] -> [B, C·r², H, W], channel c·r² + i·r + j taking pixel (i, j) of each
    r×r block (SpaceToDepth orders the channels the other way round)."""
    r, (_, c, h, w) = s.args["r"], s.out.shape
    c_in = s.ins[0].shape[1]

    blocks = s.op("Reshape", s.x, s.sizes([0, c_in, h, r, w, r], "blocks"), hint="blocks")
    moved = s.op("Transpose", blocks, perm=[0, 1, 3, 5, 2, 4], hint="blocks")
    return s.op("Reshape", moved, s.sizes([0, c, h, w], "shape"))


RULES = {
    "Upsample": resample,
    "interpolate": resample,
    "PixelShuffle": lambda s: s.op("DepthToSpace", s.x, blocksize=s.args["r"], mode="CRD"),
    "PixelUnshuffle": pixel_unshuffle,
}
