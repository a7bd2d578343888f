"""Multi-output `split` and `chunk`, and `part`, which reads one output of any multi-output
node (see base.py for how their values and gradients are tuples)."""

from __future__ import annotations

import numpy as np

from .base import Kernel


def _cut(sizes) -> Kernel:
    """Parts of `sizes(a, x)` along `a["dim"]`; a part no gradient reached gets zeros."""
    def forward(a, p, xs, ctx):
        (x,) = xs
        ends = np.cumsum(sizes(a, x))[:-1]
        return tuple(np.split(x, ends, axis=a["dim"])), (a["dim"], x.shape, ends)

    def backward(dys, cache):
        dim, shape, ends = cache
        bounds = [0, *ends, shape[dim]]
        parts = []
        for dy, start, stop in zip(dys, bounds[:-1], bounds[1:], strict=True):
            if dy is None:
                dy = np.zeros((*shape[:dim], stop - start, *shape[dim + 1:]),
                              next(d for d in dys if d is not None).dtype)
            parts.append(dy)
        return [np.concatenate(parts, axis=dim)], {}

    return Kernel(forward, backward)


def _chunk_sizes(a, x) -> list[int]:
    """torch.chunk: parts of ceil(L / n), the last smaller (so possibly fewer than n)."""
    n = x.shape[a["dim"]]
    step = -(-n // a["n"])
    return [min(step, n - start) for start in range(0, n, step)]


def _part_fwd(a, p, xs, ctx):
    (parts,) = xs
    return parts[a["index"]], (a["index"], len(parts))


def _part_back(dy, cache):
    index, n = cache
    return [tuple(dy if i == index else None for i in range(n))], {}


KERNELS: dict[str, Kernel] = {
    "split": _cut(lambda a, x: a["size"]),
    "chunk": _cut(_chunk_sizes),
    "part": Kernel(_part_fwd, _part_back),
}
