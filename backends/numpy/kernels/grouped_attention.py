"""`Attention`, the decoder attention of Llama-style models: Hugging Face's q/k/v/o
projections, grouped-query heads (query head i reads key/value head i // (heads / kv_heads),
`repeat_kv`), rotary positions (rotate-half, queries at 0..Tq-1 and keys at 0..Tk-1), scores
scaled by 1/sqrt(head_dim), and the causal and key padding masks of attention.py."""

from __future__ import annotations

import math

import numpy as np

from .attention import _heads, _merge, hide_keys, key_padding, masked_softmax
from .base import Kernel, dropout_mask, softmax_back


def _project(x: np.ndarray, p: dict, name: str) -> np.ndarray:
    y = x @ p[f"{name}.weight"].T
    return y + p[f"{name}.bias"] if f"{name}.bias" in p else y


def _rotary_tables(n: int, head_dim: int, base: float, dtype) -> tuple[np.ndarray, ...]:
    """cos and sin (n, head_dim) of position t times inv_freq = base^(-2i/head_dim), each
    frequency written twice (the two halves of a head share it), computed in float64."""
    inv_freq = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.arange(n, dtype=np.float64)[:, None] * inv_freq
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)


def _rotate_half(x: np.ndarray, sign: int = 1) -> np.ndarray:
    """(-x2, x1) from the halves (x1, x2) of the last dimension; sign -1 gives its
    transpose (x2, -x1)."""
    x1, x2 = np.split(x, 2, axis=-1)
    return np.concatenate([-sign * x2, sign * x1], axis=-1)


def _rotary(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    return x * cos + _rotate_half(x) * sin


def _rotary_back(g: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    return g * cos + _rotate_half(g * sin, -1)


def _attention_fwd(a, p, xs, ctx):
    xs, key_mask = key_padding(a, xs)
    ins = xs * 3 if len(xs) == 1 else xs  # query (B, Tq, D), key (B, Tk, D), value
    heads, group = a["heads"], a["heads"] // a["kv_heads"]
    q = _heads(_project(ins[0], p, "q_proj"), heads)  # (B, H, Tq, hd)
    k, v = (_heads(_project(x, p, name), a["kv_heads"])  # (B, KV, Tk, hd)
            for x, name in zip(ins[1:], ("k_proj", "v_proj"), strict=True))
    tables = None
    if a["rotary"]:
        tables = [_rotary_tables(t.shape[2], a["head_dim"], a["rope_base"], t.dtype)
                  for t in (q, k)]
        q, k = (_rotary(t, *tab) for t, tab in zip((q, k), tables, strict=True))
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # (B, H, Tk, hd)
    scale = 1 / math.sqrt(a["head_dim"])
    att = masked_softmax(hide_keys((q @ k.swapaxes(-1, -2)) * scale, a["causal"], key_mask))
    mask = dropout_mask(att.shape, a["dropout"], ctx, att.dtype)
    attd = att if mask is None else att * mask
    o = _merge(attd @ v)  # (B, Tq, H * hd)
    return _project(o, p, "o_proj"), (a, p, ins, q, k, v, att, mask, attd, o, scale, tables)


def _attention_back(dy, cache):
    a, p, ins, q, k, v, att, mask, attd, o, scale, tables = cache
    heads, kv_heads = a["heads"], a["kv_heads"]
    grads = {}

    def linear_grads(name: str, x: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Gradients of projection `name` from x and dL/d(its output); returns dL/dx."""
        d2 = d.reshape(-1, d.shape[-1])
        grads[f"{name}.weight"] = d2.T @ x.reshape(-1, x.shape[-1])
        if f"{name}.bias" in p:
            grads[f"{name}.bias"] = d2.sum(0)
        return d @ p[f"{name}.weight"]

    do = _heads(linear_grads("o_proj", o, dy), heads)  # (B, H, Tq, hd)
    dv = attd.swapaxes(-1, -2) @ do
    datt = do @ v.swapaxes(-1, -2)
    if mask is not None:
        datt = datt * mask
    ds = softmax_back(att, datt) * scale
    dq, dk = ds @ k, ds.swapaxes(-1, -2) @ q

    def ungroup(d: np.ndarray) -> np.ndarray:  # (B, H, Tk, hd) -> (B, KV, Tk, hd)
        b, _, t, hd = d.shape
        return d.reshape(b, kv_heads, heads // kv_heads, t, hd).sum(2)

    dk, dv = ungroup(dk), ungroup(dv)
    if tables is not None:
        dq, dk = (_rotary_back(d, *tab) for d, tab in zip((dq, dk), tables, strict=True))
    dxs = [linear_grads(name, x, _merge(d))
           for name, x, d in zip(("q_proj", "k_proj", "v_proj"), ins, (dq, dk, dv), strict=True)]
    if a["self_attention"]:
        dxs = [dxs[0] + dxs[1] + dxs[2]]
    if a.get("key_padding_mask"):
        dxs.append(None)
    return dxs, grads


KERNELS: dict[str, Kernel] = {"Attention": Kernel(_attention_fwd, _attention_back)}
