"""Multi-head attention (torch.nn.MultiheadAttention, batch first) and additive attention.
`key_padding` and `hide_keys` give attention layers PyTorch's masks: a causal mask and a
`key_padding_mask` (bool [B, Tk], true = ignore that key)."""

from __future__ import annotations

import math

import numpy as np

from .base import Kernel, dropout_mask, matmul_rows, softmax, softmax_back


def _projections(p) -> list[np.ndarray]:
    if "in_proj_weight" in p:
        return np.split(p["in_proj_weight"], 3)
    return [p["q_proj_weight"], p["k_proj_weight"], p["v_proj_weight"]]


def _heads(x: np.ndarray, h: int) -> np.ndarray:
    b, t, e = x.shape
    return x.reshape(b, t, h, e // h).transpose(0, 2, 1, 3)  # (B, h, T, d)


def _merge(x: np.ndarray) -> np.ndarray:
    b, h, t, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * d)  # (B, T, E)


def key_padding(a: dict, xs: list) -> tuple[list, np.ndarray | None]:
    """The positional inputs and the key padding mask (None when the call gave none)."""
    return (xs[:-1], xs[-1]) if a.get("key_padding_mask") else (xs, None)


def hide_keys(s: np.ndarray, causal: bool, key_mask: np.ndarray | None) -> np.ndarray:
    """Scores (B, h, Tq, Tk) at -inf where a key is hidden: with `causal` key j > query i
    (top-left aligned), and where the key padding mask is true. A query with every key
    hidden then gets NaN from the softmax, as in PyTorch."""
    if causal:
        s = np.where(np.tri(s.shape[-2], s.shape[-1], dtype=bool), s, -np.inf)
    if key_mask is not None:
        s = np.where(key_mask[:, None, None, :], -np.inf, s)
    return s


def masked_softmax(s: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # a row of -inf gives NaN, without a warning
        return softmax(s)


def _mha_fwd(a, p, xs, ctx):
    xs, key_mask = key_padding(a, xs)
    ins = xs * 3 if len(xs) == 1 else xs  # query (B, Tq, E), key (B, Tk, kdim), value
    h = a["heads"]
    biases = np.split(p["in_proj_bias"], 3) if a["bias"] else [0, 0, 0]
    q, k, v = (_heads(matmul_rows(x, w.T) + bias, h)
               for x, w, bias in zip(ins, _projections(p), biases, strict=True))
    scale = 1 / math.sqrt(q.shape[-1])
    s = hide_keys((q @ k.swapaxes(-1, -2)) * scale, a["causal"], key_mask)  # (B, h, Tq, Tk)
    att = masked_softmax(s)
    mask = dropout_mask(att.shape, a["dropout"], ctx, att.dtype)
    attd = att if mask is None else att * mask
    o = _merge(attd @ v)  # (B, Tq, E)
    y = matmul_rows(o, p["out_proj.weight"].T)
    if a["bias"]:
        y += p["out_proj.bias"]
    return y, (a, p, ins, q, k, v, att, mask, attd, o, scale)


def _mha_back(dy, cache):
    a, p, ins, q, k, v, att, mask, attd, o, scale = cache
    h = a["heads"]
    e = dy.shape[-1]
    dy2 = dy.reshape(-1, e)
    grads = {"out_proj.weight": dy2.T @ o.reshape(-1, e)}
    do = _heads(matmul_rows(dy, p["out_proj.weight"]), h)  # (B, h, Tq, d)
    dv = attd.swapaxes(-1, -2) @ do
    datt = do @ v.swapaxes(-1, -2)
    if mask is not None:
        datt = datt * mask
    ds = softmax_back(att, datt) * scale
    dq, dk = ds @ k, ds.swapaxes(-1, -2) @ q
    dxs, dws, dbs = [], [], []
    for x, w, d in zip(ins, _projections(p), (dq, dk, dv), strict=True):
        d = _merge(d)
        d2 = d.reshape(-1, d.shape[-1])
        dws.append(d2.T @ x.reshape(-1, x.shape[-1]))
        dbs.append(d2.sum(0))
        dxs.append(matmul_rows(d, w))
    if "in_proj_weight" in p:
        grads["in_proj_weight"] = np.concatenate(dws)
    else:
        grads.update(zip(("q_proj_weight", "k_proj_weight", "v_proj_weight"), dws, strict=True))
    if a["bias"]:
        grads["in_proj_bias"] = np.concatenate(dbs)
        grads["out_proj.bias"] = dy2.sum(0)
    dxs = [dxs[0] + dxs[1] + dxs[2]] if a["self_attention"] else dxs
    if a.get("key_padding_mask"):
        dxs.append(None)
    return dxs, grads


def _additive_fwd(a, p, xs, ctx):
    q, v = xs  # (B, D), (B, T, E)
    t = np.tanh((q @ p["query_proj.weight"].T)[:, None] + v @ p["key_proj.weight"].T
                + p["key_proj.bias"])  # (B, T, U)
    w = softmax(t @ p["score.weight"][0])  # (B, T)
    return (w[:, None] @ v)[:, 0], (p, q, v, t, w)


def _additive_back(dy, cache):
    p, q, v, t, w = cache
    dv = w[..., None] * dy[:, None]  # (B, T, E)
    ds = softmax_back(w, (v @ dy[..., None])[..., 0])  # (B, T)
    dpre = ds[..., None] * p["score.weight"][0] * (1 - t * t)  # (B, T, U)
    dqp = dpre.sum(1)
    dk2 = dpre.reshape(-1, dpre.shape[-1])
    grads = {"query_proj.weight": dqp.T @ q,
             "key_proj.weight": dk2.T @ v.reshape(-1, v.shape[-1]),
             "key_proj.bias": dk2.sum(0),
             "score.weight": (ds[..., None] * t).sum((0, 1))[None]}
    return [dqp @ p["query_proj.weight"], dv + dpre @ p["key_proj.weight"]], grads


KERNELS: dict[str, Kernel] = {
    "MultiHeadAttention": Kernel(_mha_fwd, _mha_back),
    "AdditiveAttention": Kernel(_additive_fwd, _additive_back),
}
