"""Geometry shared by convolution and pooling: padding, output sizes, each kernel offset's
strided region, the moves between channels-first and channels-last layouts, and sums per
channel in either layout."""

from __future__ import annotations

import math

import numpy as np

Pads = list[list[int]]


def pad(x: np.ndarray, pads: Pads, value: float = 0.0, start: int | None = None
        ) -> np.ndarray:
    """Pad (or, for negative amounts, crop) the spatial dims by [before, after] pairs: the
    trailing ones, or those from `start` on (1 for channels-last arrays)."""
    start = x.ndim - len(pads) if start is None else start
    around = [(0, 0)] * x.ndim
    around[start:start + len(pads)] = [(max(b, 0), max(e, 0)) for b, e in pads]
    if any(b or e for b, e in around):
        if channels_last(x):  # padded as it lies (np.pad lays its result out channels-first)
            x = first_view(np.pad(last_view(x), [*around[:1], *around[2:], around[1]],
                                  constant_values=value))
        else:
            x = np.pad(x, around, constant_values=value)
    if any(b < 0 or e < 0 for b, e in pads):
        crop = [slice(None)] * x.ndim
        crop[start:start + len(pads)] = [slice(max(-b, 0), n - max(-e, 0)) for (b, e), n
                                         in zip(pads, x.shape[start:], strict=False)]
        x = x[tuple(crop)]
    return x


def out_size(padded, kernel, stride, dilation) -> list[int]:
    """A convolution's (or a pooling's) output size from its padded input size."""
    return [(n - d * (k - 1) - 1) // s + 1
            for n, k, s, d in zip(padded, kernel, stride, dilation, strict=True)]


def regions(kernel, stride, dilation, out, lead: int = 2, first: int = 0):
    """For each kernel offset, the strided index of the padded input it meets at every output
    (the spatial dims follow `lead` others; the outputs start at `first` on the first one)."""
    starts = [first] + [0] * (len(kernel) - 1)
    for offset in np.ndindex(*kernel):
        yield (*[slice(None)] * lead, *(slice(i * d + f * s, i * d + s * (f + m - 1) + 1, s)
                                        for i, d, s, m, f
                                        in zip(offset, dilation, stride, out, starts,
                                               strict=True)))


def to_last(x: np.ndarray, pads: Pads) -> np.ndarray:
    """(B, C, *size) -> contiguous (B, *padded size, C), zeros around (negative pads crop)."""
    inner = tuple(slice(max(-b, 0), m - max(-e, 0))
                  for (b, e), m in zip(pads, x.shape[2:], strict=True))
    size = [m + b + e for m, (b, e) in zip(x.shape[2:], pads, strict=True)]
    grows = any(b > 0 or e > 0 for b, e in pads)
    out = (np.zeros if grows else np.empty)((x.shape[0], *size, x.shape[1]), x.dtype)
    at = tuple(slice(max(b, 0), max(b, 0) + s.stop - s.start)
               for (b, _), s in zip(pads, inner, strict=True))
    out[(slice(None), *at)] = last_view(x[(slice(None), slice(None), *inner)])
    return out


def last_view(x: np.ndarray) -> np.ndarray:
    """(B, C, *size) -> (B, *size, C), a view (`np.moveaxis` costs microseconds more, which
    the many small arrays of a deep network's step add up)."""
    return x.transpose(0, *range(2, x.ndim), 1)


def first_view(y: np.ndarray) -> np.ndarray:
    """(B, *size, C) -> (B, C, *size), a view. A channels-last convolution returns its output
    so, not copied back: the next ops keep the layout (NumPy's ufuncs lay their outputs out as
    their inputs), so a convolution after them reads its input channels-last at the cost of a
    plain copy, and dL/dy comes back channels-last too."""
    return y.transpose(0, y.ndim - 1, *range(1, y.ndim - 1))


def channels_last(x: np.ndarray) -> bool:
    """Whether (B, C, *size) x lies channels-last in memory (and not also channels-first)."""
    return x.ndim > 2 and not x.flags.c_contiguous and last_view(x).flags.c_contiguous


def empty(shape, dtype, last: bool) -> np.ndarray:
    """An uninitialised (B, C, *size) array, laid out channels-last if `last`."""
    if not last:
        return np.empty(shape, dtype)
    return first_view(np.empty((shape[0], *shape[2:], shape[1]), dtype))


def column_sums(m: np.ndarray) -> np.ndarray:
    """The column sums of a contiguous (rows, C) matrix. NumPy sums a narrow matrix's columns
    row by row (a few times slower): k rows are folded into one wide row first."""
    rows, c = m.shape
    k = math.gcd(rows, 1 << max(0, (1024 // max(c, 1)).bit_length() - 1))
    return m.reshape(rows // k, k * c).sum(axis=0).reshape(k, c).sum(axis=0)


def channel_sums(x: np.ndarray) -> np.ndarray:
    """Per channel, the sum of (B, C, *size) x over everything else, in either layout."""
    if channels_last(x):
        return column_sums(last_view(x).reshape(-1, x.shape[1]))
    return x.sum(axis=(0, *range(2, x.ndim)))
