"""Attention as its matrix products and softmax: PyTorch's MultiheadAttention, the
Llama-style `Attention` (grouped-query heads, rotary positions) and additive attention.
Opset 23's Attention op is not needed for any of them. Hidden keys (causal, or by
`key_padding_mask`) score -inf, so a query that sees no key gets NaN from the softmax, as in
PyTorch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from archdsl.symbolic import Dim, format_dim

from ..builder import ELEMENT
from ..site import Site
from .dense import project


def _heads(s: Site, x: str, heads: int, perm: list[int], hint: str) -> str:
    """(B, T, E) -> (B, heads, T, E / heads), or another `perm` of (B, T, heads, d)."""
    split = s.op("Reshape", x, s.const([0, 0, heads, -1], "heads"), hint=hint)
    return s.op("Transpose", split, perm=perm, hint=hint)


def _positional(s: Site) -> tuple[list[str], str | None]:
    """The query, key and value inputs (one for self-attention), and the mask if given."""
    if s.args.get("key_padding_mask"):
        return s.xs[:-1], s.xs[-1]
    return s.xs, None


def _attend(s: Site, q: str, kt: str, v: str, head_dim: int, mask: str | None) -> str:
    """softmax(q kᵀ / sqrt(d), hidden keys at -inf) v, merged back to (B, Tq, heads · d)
    from q (B, h, Tq, d), kᵀ (B, h, d, Tk) and v (B, h, Tk, d)."""
    dtype = s.ins[0].dtype
    scores = s.op("Mul", s.op("MatMul", q, kt, hint="scores"),
                  s.scalar(1 / math.sqrt(head_dim), dtype), hint="scores")  # (B, h, Tq, Tk)
    hidden = s.scalar(-np.inf, dtype)
    if s.args["causal"]:  # query i sees keys j <= i: -inf above the diagonal (top-left)
        size = s.op("Slice", s.op("Shape", scores, hint="mask"), s.const([2], "start"),
                    s.const([4], "end"), hint="mask")
        full = s.filled(size, -np.inf, dtype, "mask")
        scores = s.op("Add", scores, s.op("Trilu", full, s.const(1, "diagonal"), upper=1,
                                          hint="mask"), hint="masked")
    if mask is not None:  # (B, Tk) -> (B, 1, 1, Tk): true hides that key from every query
        wide = s.op("Unsqueeze", mask, s.const([1, 2], "axes"), hint="key_padding_mask")
        scores = s.op("Where", wide, hidden, scores, hint="key_padding_mask")
    weights = s.op("Softmax", scores, axis=-1)
    o = s.op("Transpose", s.op("MatMul", weights, v, hint="context"), perm=[0, 2, 1, 3],
             hint="context")  # (B, Tq, h, d)
    return s.op("Reshape", o, s.const([0, 0, -1], "merge"), hint="context")  # (B, Tq, h·d)


def _mha_inputs(s: Site, xs: list[str]) -> list[str]:
    """The projected query, key and value, as nn.MultiheadAttention computes them."""
    a = s.args
    e = a["embed_dim"]
    if a["self_attention"]:  # one fused projection, split in three
        bias = s.param("in_proj_bias") if a["bias"] else None
        qkv = project(s, xs[0], 3, s.param("in_proj_weight"), bias, "in_proj")
        return s.op("Split", qkv, s.const([e, e, e], "split"), axis=-1, outputs=3,
                    hint="qkv")
    out = []
    for i, (x, what) in enumerate(zip(xs, "qkv", strict=True)):
        rows = (s.const([i * e], "start"), s.const([(i + 1) * e], "end"), s.const([0], "axis"))
        if "in_proj_weight" in s.params:
            w = s.op("Slice", s.param("in_proj_weight"), *rows, hint=f"{what}_proj_weight")
        else:
            w = s.param(f"{what}_proj_weight")
        bias = s.op("Slice", s.param("in_proj_bias"), *rows[:2], hint=f"{what}_proj_bias") \
            if a["bias"] else None
        out.append(project(s, x, 3, w, bias, f"{what}_proj"))
    return out


def multi_head_attention(s: Site) -> str:
    a = s.args
    h = a["heads"]
    xs, mask = _positional(s)
    q, k, v = _mha_inputs(s, xs)
    q = _heads(s, q, h, [0, 2, 1, 3], "q_heads")  # (B, h, Tq, d)
    kt = _heads(s, k, h, [0, 2, 3, 1], "k_heads")  # (B, h, d, Tk)
    v = _heads(s, v, h, [0, 2, 1, 3], "v_heads")  # (B, h, Tk, d)
    o = _attend(s, q, kt, v, a["embed_dim"] // h, mask)
    bias = s.param("out_proj.bias") if a["bias"] else None
    return project(s, o, 3, s.param("out_proj.weight"), bias, "out_proj")


def _rotary_tables(s: Site, t: Dim) -> tuple[str, str]:
    """cos and sin of the angles pos · base^(-2i/d) at positions 0..T-1, each half of a head
    paired with the other (T, d), computed in float64 as the PyTorch build computes them,
    then in the input's dtype: constants when T is known, computed from it otherwise."""
    a, dtype = s.args, s.ins[0].dtype
    d = a["head_dim"]
    key = ("rotary", s.base, format_dim(t))
    if key in s.cache:
        return s.cache[key]
    inv_freq = a["rope_base"] ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    if isinstance(t, int):
        angles = np.outer(np.arange(t, dtype=np.float64), inv_freq)
        angles = np.concatenate([angles, angles], axis=-1)
        tables = [s.array(f(angles), dtype, name)
                  for f, name in ((np.cos, "rotary_cos"), (np.sin, "rotary_sin"))]
    else:
        size = s.op("Squeeze", s.dim(t), hint="positions")
        positions = s.op("Range", s.const(0, "start"), size, s.const(1, "step"),
                         hint="positions")
        column = s.op("Unsqueeze", s.op("Cast", positions, to=ELEMENT["f64"], hint="positions"),
                      s.const([1], "axis"), hint="positions")  # (T, 1) in float64
        half = s.op("Mul", column, s.const(inv_freq, "inv_freq", np.float64), hint="angles")
        angles = s.op("Concat", half, half, axis=-1, hint="angles")  # (T, d)
        tables = [s.cast(s.op(f, angles, hint=f"rotary_{f.lower()}"), "f64", dtype)
                  for f in ("Cos", "Sin")]
    s.cache[key] = (tables[0], tables[1])
    return s.cache[key]


def _rotate(s: Site, x: str, t: Dim, hint: str) -> str:
    """x · cos + rotate_half(x) · sin, rotate_half(x) = (-x₂, x₁) for x's halves x₁, x₂."""
    cos, sin = _rotary_tables(s, t)
    d = s.args["head_dim"]
    first, second = s.op("Split", x, s.const([d // 2, d // 2], "halves"), axis=-1,
                         outputs=2, hint=f"{hint}_halves")
    rotated = s.op("Concat", s.op("Neg", second, hint=f"{hint}_rotated"), first, axis=-1,
                   hint=f"{hint}_rotated")
    return s.op("Add", s.op("Mul", x, cos, hint=f"{hint}_cos"),
                s.op("Mul", rotated, sin, hint=f"{hint}_sin"), hint=f"{hint}_rotary")


def _repeat_kv(s: Site, x: str, group: int, hint: str) -> str:
    """(B, kv_heads, T, d) -> (B, heads, T, d): query head i reads key/value head
    i // group (Hugging Face's repeat_kv)."""
    if group == 1:
        return x
    wide = s.op("Unsqueeze", x, s.const([2], "axis"), hint=hint)  # (B, kv, 1, T, d)
    wide = s.op("Expand", wide, s.const([1, 1, group, 1, 1], "group"), hint=hint)
    return s.op("Reshape", wide, s.const([0, s.args["heads"], -1, s.args["head_dim"]],
                                         "heads"), hint=hint)


def attention(s: Site) -> str:
    a = s.args
    xs, mask = _positional(s)
    query, key, value = xs * 3 if len(xs) == 1 else xs
    tq, tk = s.ins[0].shape[1], s.ins[0 if len(xs) == 1 else 1].shape[1]

    def projected(x: str, name: str) -> str:
        bias = s.param(f"{name}.bias") if a["bias"] else None
        return project(s, x, 3, s.param(f"{name}.weight"), bias, name)

    q = _heads(s, projected(query, "q_proj"), a["heads"], [0, 2, 1, 3], "q_heads")
    k = _heads(s, projected(key, "k_proj"), a["kv_heads"], [0, 2, 1, 3], "k_heads")
    v = _heads(s, projected(value, "v_proj"), a["kv_heads"], [0, 2, 1, 3], "v_heads")
    if a["rotary"]:
        q, k = _rotate(s, q, tq, "q"), _rotate(s, k, tk, "k")
    group = a["heads"] // a["kv_heads"]
    k, v = _repeat_kv(s, k, group, "k_repeat"), _repeat_kv(s, v, group, "v_repeat")
    kt = s.op("Transpose", k, perm=[0, 1, 3, 2], hint="k_t")  # (B, h, d, Tk)
    o = _attend(s, q, kt, v, a["head_dim"], mask)
    return projected(o, "o_proj")


def additive_attention(s: Site) -> str:
    """score_t = w . tanh(Wq q + Wk v_t + b); softmax over t; the weighted sum of v_t."""
    q, v = s.xs
    qp = project(s, q, 2, s.param("query_proj.weight"), None, "query_proj")  # (B, U)
    kp = project(s, v, 3, s.param("key_proj.weight"), s.param("key_proj.bias"),
                 "key_proj")  # (B, T, U)
    hidden = s.op("Tanh", s.op("Add", s.op("Unsqueeze", qp, s.const([1], "axis")), kp))
    scores = project(s, hidden, 3, s.param("score.weight"), None, "score")  # (B, T, 1)
    weights = s.op("Transpose", s.op("Softmax", scores, axis=1), perm=[0, 2, 1])  # (B, 1, T)
    return s.op("Squeeze", s.op("MatMul", weights, v), s.const([1], "axis"))  # (B, E)


RULES: dict[str, Any] = {
    "MultiHeadAttention": multi_head_attention,
    "Attention": attention,
    "AdditiveAttention": additive_attention,
}
