"""Linear, Embedding, the tables added to sequences, and reading learned tensors."""

from __future__ import annotations

import math

import numpy as np

from .base import Kernel, matmul_rows


def _linear_fwd(a, p, xs, ctx):
    (x,) = xs
    w = p["weight"]
    y = matmul_rows(x, w.T)  # (..., out)
    if "bias" in p:
        y += p["bias"]
    return y, (x, w, "bias" in p)


def _linear_back(dy, cache):
    x, w, has_bias = cache
    d2 = dy.reshape(-1, dy.shape[-1])
    grads = {"weight": d2.T @ x.reshape(-1, x.shape[-1])}
    if has_bias:
        grads["bias"] = d2.sum(0)
    return [matmul_rows(dy, w)], grads


def _embedding_fwd(a, p, xs, ctx):
    (ids,) = xs
    w = p["weight"]
    if ids.size and (ids.min() < 0 or ids.max() >= len(w)):  # NumPy would wrap negative ids
        raise IndexError(f"Embedding ids must lie in [0, {len(w)}), got values in "
                         f"[{ids.min()}, {ids.max()}]")
    return w[ids], (ids, w.shape)


def _embedding_back(dy, cache):
    """Rows repeat, so the rows of dL/dy are summed into place by `np.add.at`, on flat
    indices: its one-dimensional loop is three times faster than the row-wise one."""
    ids, shape = cache
    dw = np.zeros(shape, dy.dtype)
    flat = ids.reshape(-1, 1) * shape[1] + np.arange(shape[1])
    np.add.at(dw.reshape(-1), flat.reshape(-1), dy.reshape(-1))
    return [None], {"weight": dw}


def sinusoid_table(length: int, dim: int) -> np.ndarray:
    """pe[pos, 2i] = sin(pos * exp(-2i ln(10000) / D)), pe[pos, 2i+1] = cos(the same)."""
    pos = np.arange(length, dtype=np.float64)[:, None]
    freq = np.exp(np.arange(0, dim, 2, dtype=np.float64) * (-math.log(10000.0) / dim))
    pe = np.zeros((length, dim))
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq[: dim // 2])
    return pe


def _posenc_fwd(a, p, xs, ctx):
    (x,) = xs  # (B, T, D)
    return x + sinusoid_table(x.shape[1], x.shape[2]).astype(x.dtype), None


def _posemb_fwd(a, p, xs, ctx):
    (x,) = xs  # (B, T, D)
    w = p["weight"]
    return x + w[: x.shape[1]], w.shape


def _posemb_back(dy, shape):
    dw = np.zeros(shape, dy.dtype)
    dw[: dy.shape[1]] = dy.sum(0)
    return [dy], {"weight": dw}


def _read(name: str | None) -> Kernel:
    """A kernel that evaluates to one parameter: `p[name]`, or `p[a["name"]]` when None."""
    def forward(a, p, xs, ctx):
        key = a["name"] if name is None else name
        return p[key], key

    return Kernel(forward, lambda dy, key: ([], {key: dy}))


KERNELS: dict[str, Kernel] = {
    "Linear": Kernel(_linear_fwd, _linear_back),
    "Embedding": Kernel(_embedding_fwd, _embedding_back),
    "PositionalEncoding": Kernel(_posenc_fwd, lambda dy, cache: ([dy], {})),
    "PositionalEmbedding": Kernel(_posemb_fwd, _posemb_back),
    "Parameter": _read(""),
    "param": _read(None),
}
