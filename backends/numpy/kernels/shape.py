"""Ops that move elements without arithmetic (flatten, reshape, transpose, permute, expand,
concat, stack, indexing, unsqueeze, squeeze), and the reductions mean and sum."""

from __future__ import annotations

import numpy as np

from .base import Kernel, unbroadcast


def _reshaping(target) -> Kernel:
    """A kernel for y = x.reshape(target(a, x)); the gradient is reshaped back."""
    def forward(a, p, xs, ctx):
        (x,) = xs
        return x.reshape(target(a, x)), x.shape

    return Kernel(forward, lambda dy, shape: ([dy.reshape(shape)], {}))


def _transpose_fwd(a, p, xs, ctx):
    return np.swapaxes(xs[0], a["dim0"], a["dim1"]), a


def _permute_fwd(a, p, xs, ctx):
    return xs[0].transpose(a["dims"]), np.argsort(a["dims"])


def _expand_fwd(a, p, xs, ctx):
    (x,) = xs
    lead = len(a["shape"]) - x.ndim
    shape = [x.shape[i - lead] if d == -1 else d for i, d in enumerate(a["shape"])]
    return np.broadcast_to(x, shape), x.shape


def _concat_fwd(a, p, xs, ctx):
    return np.concatenate(xs, axis=a["dim"]), (a["dim"], np.cumsum([x.shape[a["dim"]]
                                                                     for x in xs])[:-1])


def _index(a) -> tuple:
    return tuple(i if isinstance(i, int) else slice(*i) for i in a["index"])


def _getitem_fwd(a, p, xs, ctx):
    (x,) = xs
    return x[_index(a)], (_index(a), x.shape)


def _getitem_back(dy, cache):
    index, shape = cache
    dx = np.zeros(shape, dy.dtype)
    dx[index] = dy
    return [dx], {}


def _axes(a, ndim: int) -> tuple[int, ...]:
    return tuple(range(ndim)) if a["dim"] is None else tuple(a["dim"])


def _reduce(mean: bool) -> Kernel:
    def forward(a, p, xs, ctx):
        (x,) = xs
        axes = _axes(a, x.ndim)
        f = np.mean if mean else np.sum
        return f(x, axis=axes, keepdims=a["keepdim"]), (axes, x.shape)

    def backward(dy, cache):
        axes, shape = cache
        if mean:
            dy = dy / int(np.prod([shape[i] for i in axes]))
        return [np.broadcast_to(np.expand_dims(dy, axes) if dy.ndim < len(shape) else dy,
                                shape)], {}

    return Kernel(forward, backward)


def _stack_fwd(a, p, xs, ctx):
    return np.stack(xs, axis=a["dim"]), (a["dim"], len(xs))


def _stack_back(dy, cache):
    dim, n = cache
    return [np.take(dy, i, axis=dim) for i in range(n)], {}


def _flattened(a, x) -> tuple[int, ...]:
    """torch.flatten(x, start, end): dimensions start..end (inclusive) as one."""
    s = x.shape or (1,)
    return (*s[:a["start"]], -1, *s[a["end"] + 1:])


KERNELS: dict[str, Kernel] = {
    "Flatten": _reshaping(lambda a, x: (x.shape[0], -1)),
    "flatten": _reshaping(_flattened),
    "unsqueeze": _reshaping(lambda a, x: np.expand_dims(x, a["dim"]).shape),
    "squeeze": _reshaping(lambda a, x: np.squeeze(x, a["dim"]).shape),
    "stack": Kernel(_stack_fwd, _stack_back),
    "Reshape": _reshaping(lambda a, x: (x.shape[0], *a["dims"])),
    "reshape": _reshaping(lambda a, x: a["shape"]),
    "transpose": Kernel(_transpose_fwd,
                        lambda dy, a: ([np.swapaxes(dy, a["dim0"], a["dim1"])], {})),
    "permute": Kernel(_permute_fwd, lambda dy, inv: ([dy.transpose(inv)], {})),
    "expand": Kernel(_expand_fwd, lambda dy, shape: ([unbroadcast(dy, shape)], {})),
    "concat": Kernel(_concat_fwd, lambda dy, c: (np.split(dy, c[1], axis=c[0]), {})),
    "getitem": Kernel(_getitem_fwd, _getitem_back),
    "mean": _reduce(True),
    "sum": _reduce(False),
}
