"""What every kernel shares: the `Kernel` pair, the run-time context and small helpers.

A kernel's `forward(a, p, xs, ctx)` takes the node's normalized args `a` (symbols already
resolved to integers), its layer's parameters `p` (local name -> array, PyTorch layout), the
input arrays `xs` and a `Ctx`; it returns the output and a cache. `backward(dy, cache)` returns
one gradient per input (None where there is none: integer ids, masks, an output that does not
depend on that input) and a dict of parameter gradients keyed like `p`.

Multi-output ops (`OpDef.multi_output`: `split`, `chunk`, `LSTMCell`, recurrent layers with
`return_state`) follow the graph (docs/ir.md): the node's value is a tuple of arrays, one per
part, and each consumer reads one through a `part` node. Their `forward` returns that tuple;
their `backward` takes a tuple of the same length, None for a part no gradient reached. The
`part` kernel's backward gives its input a tuple with `dy` at its index and None elsewhere;
a runtime sums what several consumers send one node with `add_gradient`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Args = dict[str, Any]
Params = dict[str, np.ndarray]
Grads = tuple[list[np.ndarray | None], Params]


@dataclass
class Ctx:
    """Run-time state a kernel may read: the mode, the generator of dropout masks and noise,
    and `noise`: while `archdsl.noise` is active the runtime sets it, and `randn_like` takes
    `noise(shape)` instead of drawing from `rng` (the runtime numbers the draws of a pass)."""

    training: bool = False
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    noise: Callable[[tuple[int, ...]], np.ndarray] | None = None


@dataclass(frozen=True)
class Kernel:
    forward: Callable[[Args, Params, list[np.ndarray], Ctx], tuple[np.ndarray, Any]]
    backward: Callable[[np.ndarray, Any], Grads]


# Elements per block of a long elementwise chain: 256 kB of float32, so a block's inputs,
# outputs and scratch stay in the L2 cache from one ufunc to the next instead of streaming
# through memory at every pass.
BLOCK = 1 << 16


def blocks(*arrays: np.ndarray) -> Iterator[list[np.ndarray]]:
    """Matching flat views of same-size arrays, `BLOCK` elements at a time. Outputs must be
    C-contiguous (the views then write into them); a strided input is copied once."""
    flat = [a.reshape(-1) for a in arrays]
    for start in range(0, flat[0].size, BLOCK):
        yield [f[start:start + BLOCK] for f in flat]


def row_blocks(rows: int, width: int) -> Iterator[slice]:
    """Slices of about `BLOCK` elements of whole rows, for row-wise chains (`blocks`)."""
    step = max(1, BLOCK // width)
    return (slice(s, s + step) for s in range(0, rows, step))


def matmul_rows(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """x (..., n) @ m (n, k) as one 2-d product over x's rows: NumPy runs the stacked form
    as one small product per leading index, about twice as slow."""
    return (x.reshape(-1, x.shape[-1]) @ m).reshape(*x.shape[:-1], m.shape[-1])


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `g` down to `shape`, undoing NumPy broadcasting."""
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_back(y: np.ndarray, dy: np.ndarray, axis: int = -1) -> np.ndarray:
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), accurate in both tails: below about -88 (float32) exp(-x)
    overflows to inf and the result is its limit, 0. Four passes; a `where` over the sign
    costs more than all of them on random signs."""
    with np.errstate(over="ignore"):
        e = np.exp(-x)
    e += 1
    return np.reciprocal(e, out=e)


def dropout_mask(shape: tuple[int, ...], p: float, ctx: Ctx, dtype: np.dtype) -> np.ndarray | None:
    """The scaled keep-mask of inverted dropout, or None when dropout is off."""
    if not ctx.training or p == 0:
        return None
    return (ctx.rng.random(shape, dtype=np.float32) >= p) * dtype.type(1 / (1 - p))


Gradient = np.ndarray | tuple[np.ndarray | None, ...] | None


def add_gradient(total: Gradient, g: Gradient) -> Gradient:
    """The sum of two gradients reaching one value: arrays add; the tuples a multi-output
    node receives from its `part` nodes add part by part, None counting as zero."""
    if total is None:
        return g
    if g is None:
        return total
    if isinstance(total, tuple):
        return tuple(add_gradient(t, d) for t, d in zip(total, g, strict=True))
    return total + g
