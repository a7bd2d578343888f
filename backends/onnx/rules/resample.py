"""Resampling: `Upsample`/`interpolate` and `PixelShuffle`/`PixelUnshuffle`.

`linear`, `bilinear` and `bicubic` are ONNX's Resize with PyTorch's source coordinates
(`half_pixel`, or `align_corners`; cubic coefficient -0.75, taps past the border clamped to
it), given the scales when the spec gave `scale` (PyTorch then maps coordinates with
1/scale, not in/out) and the sizes otherwise. PyTorch's `linear` and `bilinear` leave an
axis whose size does not change untouched, whatever the scale, and so does this lowering;
its `bicubic` resamples even then, which ONNX Runtime's Resize does not (it copies an image
whose size stays), so that case is written as two matrix products.

`nearest` is a Gather of PyTorch's source indices floor(dst · r) with r = float32(1/scale)
or float32(in)/float32(out), the product rounded to float32 as PyTorch rounds it: Resize's
nearest modes compute the index another way and differ from it by one pixel at some sizes.
Indices are constants when the sizes are known, computed from the run-time sizes otherwise.
"""

from __future__ import annotations

import numpy as np

from archdsl.symbolic import Dim

from ..builder import ELEMENT
from ..site import Refusal, Site

_CUBIC_A = -0.75  # PyTorch's bicubic coefficient
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
    """Resize's scales: the spec's, and 1 on an axis whose size `linear` and `bilinear` leave
    alone (PyTorch copies that axis whatever the scale); decided at run time where the size
    is symbolic and the scale between 1 and 2 (the size stays only for small inputs)."""
    a, t = s.args, s.ins[0]
    cubic = a["mode"] == "bicubic"
    values: list[float | str] = [1.0, 1.0]
    for axis, (n_in, n_out, scale) in enumerate(zip(t.shape[2:], s.out.shape[2:], a["scale"],
                                                    strict=True), start=2):
        if isinstance(n_in, int):
            values.append(1.0 if n_in == n_out and not cubic else scale)
        elif 1 < scale < 2 and not cubic:
            values.append(s.op("Where", _same_size(s, n_in, n_out, axis),
                               s.const([1.0], "one", np.float32),
                               s.const([scale], "scale", np.float32), hint=f"scale{axis}"))
        else:
            values.append(scale)
    if all(isinstance(v, float) for v in values):
        return s.const(values, "scales", np.float32)
    return s.op("Concat", *[s.const([v], "scale", np.float32) if isinstance(v, float) else v
                            for v in values], axis=0, hint="scales")


def _cells(n_in: int, n_out: int, scale: float) -> int:
    """The most cells Resize may make from `n_in` at `scale`: floor(in · scale) with the scale
    in float32, computed in float32 (ONNX Runtime) or exactly (the ONNX spec). Neither may
    fall short of PyTorch's float64 size `n_out`; more are cut off. 90 · 0.7 is 62 for
    PyTorch and 63 in float32; 90 · 1.3 is 117 for PyTorch and 116 in float32."""
    scale32 = np.float32(scale)
    made = [int(np.floor(np.float32(n_in) * scale32)), int(np.floor(n_in * float(scale32)))]
    if min(made) < n_out:
        raise Refusal(f"ONNX's Resize makes floor({n_in} · {scale}) = {min(made)} cells "
                      f"with a float32 scale, PyTorch {n_out} in float64: give `size=` "
                      "instead")
    return max(made)


def _cubic_weights(n: int, scale: float) -> np.ndarray:
    """(n, n) weights of PyTorch's bicubic along an axis of n cells resampled to n cells at
    `scale`: source 1/scale · (dst + 0.5) - 0.5, taps floor(src) - 1 .. + 2 clamped to the
    border, coefficient -0.75."""
    src = (np.arange(n) + 0.5) / scale - 0.5
    base = np.floor(src)
    t = src - base
    a = _CUBIC_A
    near = [((a + 2) * u - (a + 3)) * u * u + 1 for u in (t, 1 - t)]
    far = [((a * u - 5 * a) * u + 8 * a) * u - 4 * a for u in (t + 1, 2 - t)]
    m = np.zeros((n, n))
    for k, w in enumerate([far[0], near[0], near[1], far[1]]):
        np.add.at(m, (np.arange(n), np.clip(base.astype(np.int64) - 1 + k, 0, n - 1)), w)
    return m


def _unchanged_bicubic(s: Site) -> str:
    """Bicubic resampling of an image that keeps its size (a scale just above 1): ONNX
    Runtime's Resize copies such an image, PyTorch resamples it, so this is PyTorch's
    weights applied as two matrix products."""
    a, t = s.args, s.ins[0]
    h, w = t.shape[2:]
    dtype = t.dtype
    rows = s.array(_cubic_weights(h, a["scale"][0]), dtype, "rows")  # (H, H)
    cols = s.array(_cubic_weights(w, a["scale"][1]).T, dtype, "cols")  # (W, W)
    return s.op("MatMul", rows, s.op("MatMul", s.x, cols, hint="cols"), hint="rows")


def _resize(s: Site) -> str:
    a, t = s.args, s.ins[0]
    if a["scale"] is not None:
        if a["mode"] == "bicubic" and not a["align_corners"]:
            kept = [n_in == n_out if isinstance(n_in, int) else 1 < scale < 1.5
                    for n_in, n_out, scale in zip(t.shape[2:], s.out.shape[2:], a["scale"],
                                                  strict=True)]
            if all(kept) and all(isinstance(n, int) for n in t.shape[2:]):
                return _unchanged_bicubic(s)
            if all(kept):
                raise Refusal("with a scale between 1 and 1.5 a small image keeps its size, "
                              "which ONNX Runtime's Resize then copies and PyTorch "
                              "resamples: give the sizes as numbers, or use `size=`")
        target = ["", _scales(s)]
    else:
        target = ["", "", s.sizes(s.out.shape, "sizes")]
    y = s.op("Resize", s.x, *target, mode="cubic" if a["mode"] == "bicubic" else "linear",
             coordinate_transformation_mode="align_corners" if a["align_corners"]
             else "half_pixel", cubic_coeff_a=_CUBIC_A if a["mode"] == "bicubic" else None)
    if a["scale"] is None:
        return y
    over = [(axis, n_out) for axis, (n_in, n_out, scale)
            in enumerate(zip(t.shape[2:], s.out.shape[2:], a["scale"], strict=True), start=2)
            if isinstance(n_in, int) and n_in != n_out and _cells(n_in, n_out, scale) > n_out]
    if not over:
        return y
    return s.op("Slice", y, s.const([0] * len(over), "start"),
                s.const([n for _, n in over], "end"), s.const([a for a, _ in over], "axes"),
                hint="cells")


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
