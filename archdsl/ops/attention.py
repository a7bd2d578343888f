"""Multi-head attention (PyTorch's parameter layout), the Llama-style `Attention` (Hugging
Face's parameter names, grouped-query heads, rotary positions) and additive (Bahdanau)
attention."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import ParamSpec, TensorType
from archdsl.ops.init import XAVIER_UNIFORM, ZEROS, fan_in_uniform
from archdsl.ops.registry import (
    POSITIVE,
    Arg,
    Flops,
    OpDef,
    fmt,
    need_float,
    need_known,
    need_rank,
    register,
)
from archdsl.symbolic import format_shape


def split_mask(a: dict, ins: list[TensorType]) -> tuple[list[TensorType], TensorType | None]:
    """The positional inputs and the `key_padding_mask` (None when not given: the flag is
    absent where the arguments were not bound by the elaborator)."""
    if a.get("key_padding_mask"):
        return ins[:-1], ins[-1]
    return ins, None


def query_key_value(op: str, ins: list[TensorType]) -> tuple[TensorType, ...]:
    """(q, k, v) of a piped (self-attention) or called `(query, key, value)` layer."""
    if len(ins) == 2:
        raise Problem("E0401", f"`{op}` takes one tensor (self-attention) or three "
                      "(query, key, value)", label="got two",
                      hint="for cross-attention pass the memory twice: `(x, memory, memory)`")
    q, k, v = (ins * 3) if len(ins) == 1 else ins
    for t, what in ((q, "query"), (k, "key"), (v, "value")):
        need_float(op, t)
        need_rank(op, t, (3,), "[B, T, D]", what)
    if q.shape[0] != k.shape[0] or k.shape[0] != v.shape[0]:
        raise Problem("E0303", f"the batch sizes of query, key and value of `{op}` differ",
                      label=f"query {fmt(q)}, key {fmt(k)}, value {fmt(v)}")
    if k.shape[1] != v.shape[1]:
        raise Problem("E0303", f"key and value of `{op}` have different lengths",
                      label=f"key {fmt(k)}, value {fmt(v)}")
    return q, k, v


def check_mask(op: str, mask: TensorType | None, q: TensorType, k: TensorType) -> None:
    """`key_padding_mask`: bool [B, Tk], true where a key is ignored (PyTorch's convention)."""
    if mask is None:
        return
    want = (q.shape[0], k.shape[1])
    if mask.dtype != "bool" or mask.shape != want:
        raise Problem("E0303" if mask.dtype == "bool" else "E0308",
                      f"`key_padding_mask` of `{op}` must be bool{format_shape(want)}",
                      label=f"got {mask.dtype}{fmt(mask)} for the keys {fmt(k)}",
                      hint="true marks a key to ignore, e.g. `tokens == 0` for padding")


def heads_divide(op: str, what: str, total: int, heads: int, name: str = "heads") -> None:
    if total % heads:
        raise Problem("E0403", f"`{name}` must divide the {what} of `{op}`",
                      label=f"{total} is not divisible by {heads} {name.replace('_', ' ')}",
                      hint=f"choose {name} among "
                           f"{[h for h in range(1, min(total, 64) + 1) if total % h == 0]}")


def _mha_norm(a: dict, ins: list[TensorType]) -> dict:
    op = "MultiHeadAttention"
    positional, mask = split_mask(a, ins)
    q, k, v = query_key_value(op, positional)
    check_mask(op, mask, q, k)
    e = need_known(op, "query size", q.shape[2])
    heads_divide(op, "model dimension", e, a["heads"])
    return {**a, "embed_dim": e, "kdim": need_known(op, "key size", k.shape[2]),
            "vdim": need_known(op, "value size", v.shape[2]),
            "self_attention": len(positional) == 1, "key_padding_mask": mask is not None}


def _mha_params(a: dict, ins: list[TensorType]) -> list[ParamSpec]:
    e, kd, vd = a["embed_dim"], a["kdim"], a["vdim"]
    # nn.MultiheadAttention._reset_parameters: xavier projections, zero biases; out_proj
    # keeps nn.Linear's weight init.
    if kd == e and vd == e:
        ps = [ParamSpec(name="in_proj_weight", shape=(3 * e, e), init=XAVIER_UNIFORM)]
    else:
        ps = [ParamSpec(name="q_proj_weight", shape=(e, e), init=XAVIER_UNIFORM),
              ParamSpec(name="k_proj_weight", shape=(e, kd), init=XAVIER_UNIFORM),
              ParamSpec(name="v_proj_weight", shape=(e, vd), init=XAVIER_UNIFORM)]
    if a["bias"]:
        ps.append(ParamSpec(name="in_proj_bias", shape=(3 * e,), init=ZEROS))
    ps.append(ParamSpec(name="out_proj.weight", shape=(e, e),
                        init=fan_in_uniform("out_proj.weight")))
    if a["bias"]:
        ps.append(ParamSpec(name="out_proj.bias", shape=(e,), init=ZEROS))
    return ps


def _qkv(a: dict, ins: list[TensorType]) -> tuple[TensorType, ...]:
    positional, _ = split_mask(a, ins)
    return tuple(positional * 3) if len(positional) == 1 else tuple(positional)


def _mha_flops(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
    q, k, v = _qkv(a, ins)
    b, tq, tk = q.shape[0], q.shape[1], k.shape[1]
    e = a["embed_dim"]
    proj = 2 * b * (tq * e * e + tk * a["kdim"] * e + tk * a["vdim"] * e + tq * e * e)
    products = 4 * b * tq * tk * e
    return Flops(flops=proj + products, other=3 * b * a["heads"] * tq * tk)


register(OpDef(
    name="MultiHeadAttention", kind="layer", category="attention",
    inputs=("query", "key", "value", "key_padding_mask"), min_inputs=1,
    keyword_inputs=("key_padding_mask",),
    args=(Arg("heads", "int", min=1), Arg("causal", "bool", False),
          Arg("dropout", "float", 0.0, min=0, max=1, max_exclusive=True),
          Arg("bias", "bool", True)),
    normalize=_mha_norm, stem="attn",
    derives=("embed_dim", "kdim", "vdim", "self_attention"),
    training=lambda a: a["dropout"] > 0,
    shape=lambda a, ins: ins[0],
    params=_mha_params, flops=_mha_flops,
    meta={"products": lambda a, ins: 4 * ins[0].shape[0] * ins[0].shape[1]
          * _qkv(a, ins)[1].shape[1] * a["embed_dim"]},
    doc="torch.nn.MultiheadAttention (batch first). Piped: self-attention; called with "
        "(query, key, value): cross-attention. `causal` masks key j > query i (top-left); "
        "`key_padding_mask=` (bool [B, Tk]) hides the keys where it is true.",
))


def _add_norm(a: dict, ins: list[TensorType]) -> dict:
    op = "AdditiveAttention"
    q, v = ins
    need_float(op, q)
    need_float(op, v)
    need_rank(op, q, (2,), "[B, D]", "query")
    need_rank(op, v, (3,), "[B, T, E]", "values")
    if q.shape[0] != v.shape[0]:
        raise Problem("E0303", f"query and values of `{op}` have different batch sizes",
                      label=f"query {fmt(q)}, values {fmt(v)}")
    return {**a, "query_dim": need_known(op, "query size", q.shape[1]),
            "value_dim": need_known(op, "value size", v.shape[2])}


def _add_flops(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
    q, v = ins
    b, t = q.shape[0], v.shape[1]
    u, d, e = a["units"], a["query_dim"], a["value_dim"]
    return Flops(flops=2 * b * d * u + 2 * b * t * e * u + 2 * b * t * u + 2 * b * t * e,
                 other=2 * b * t * u + 3 * b * t)


register(OpDef(
    name="AdditiveAttention", kind="layer", category="attention",
    inputs=("query", "values"),
    args=(Arg("units", "int", min=1),),
    normalize=_add_norm, stem="attn", derives=("query_dim", "value_dim"),
    shape=lambda a, ins: ins[1].with_shape((ins[1].shape[0], ins[1].shape[2])),
    params=lambda a, ins: [  # three nn.Linear layers, with their default init
        ParamSpec(name="query_proj.weight", shape=(a["units"], a["query_dim"]),
                  init=fan_in_uniform("query_proj.weight")),
        ParamSpec(name="key_proj.weight", shape=(a["units"], a["value_dim"]),
                  init=fan_in_uniform("key_proj.weight")),
        ParamSpec(name="key_proj.bias", shape=(a["units"],),
                  init=fan_in_uniform("key_proj.weight")),
        ParamSpec(name="score.weight", shape=(1, a["units"]), init=fan_in_uniform("score.weight")),
    ],
    flops=_add_flops,
    doc="Bahdanau attention: score_t = w . tanh(Wq q + Wk v_t + b); weights = softmax over t; "
        "result = sum_t weights_t v_t.",
))


def _attention_norm(a: dict, ins: list[TensorType]) -> dict:
    op = "Attention"
    positional, mask = split_mask(a, ins)
    q, k, v = query_key_value(op, positional)
    check_mask(op, mask, q, k)
    d = need_known(op, "model dimension", q.shape[2])
    for t, what in ((k, "key"), (v, "value")):
        if t.shape[2] != d:
            raise Problem("E0303", f"the {what} of `{op}` must have the query's width {d}",
                          label=f"query {fmt(q)}, {what} {fmt(t)}",
                          hint="project it first: `|> Linear(...)`")
    heads = a["heads"]
    kv_heads = heads if a["kv_heads"] is None else a["kv_heads"]
    heads_divide(op, "model dimension", d, heads)
    heads_divide(op, "query heads", heads, kv_heads, "kv_heads")
    head_dim = d // heads
    if a["rotary"] and head_dim % 2:
        raise Problem("E0403", f"`rotary` needs an even head size in `{op}`",
                      label=f"{d} / {heads} heads = {head_dim}",
                      hint="rotary embeddings pair the two halves of each head")
    return {**a, "kv_heads": kv_heads, "dim": d, "head_dim": head_dim,
            "self_attention": len(positional) == 1, "key_padding_mask": mask is not None}


def _attention_params(a: dict, ins: list[TensorType]) -> list[ParamSpec]:
    """Four nn.Linear layers with their default init, in Hugging Face's names and order."""
    d, kv = a["dim"], a["kv_heads"] * a["head_dim"]
    ps = []
    for name, rows in (("q_proj", d), ("k_proj", kv), ("v_proj", kv), ("o_proj", d)):
        ps.append(ParamSpec(name=f"{name}.weight", shape=(rows, d),
                            init=fan_in_uniform(f"{name}.weight")))
        if a["bias"]:
            ps.append(ParamSpec(name=f"{name}.bias", shape=(rows,),
                                init=fan_in_uniform(f"{name}.weight")))
    return ps


def _attention_flops(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
    q, k, _ = _qkv(a, ins)
    b, tq, tk = q.shape[0], q.shape[1], k.shape[1]
    d, kv = a["dim"], a["kv_heads"] * a["head_dim"]
    proj = 2 * b * (tq * d * d + 2 * tk * d * kv + tq * d * d)
    products = 4 * b * a["heads"] * tq * tk * a["head_dim"]
    return Flops(flops=proj + products, other=3 * b * a["heads"] * tq * tk)


register(OpDef(
    name="Attention", kind="layer", category="attention",
    inputs=("query", "key", "value", "key_padding_mask"), min_inputs=1,
    keyword_inputs=("key_padding_mask",),
    args=(Arg("heads", "int", min=1), Arg("kv_heads", "int", None, min=1),
          Arg("causal", "bool", False), Arg("bias", "bool", False), Arg("rotary", "bool", False),
          Arg("rope_base", "float", 10000.0, min=POSITIVE),
          Arg("dropout", "float", 0.0, min=0, max=1, max_exclusive=True)),
    normalize=_attention_norm, stem="attn", derives=("dim", "head_dim", "self_attention"),
    training=lambda a: a["dropout"] > 0, output_reusable=True,
    shape=lambda a, ins: ins[0], params=_attention_params, flops=_attention_flops,
    doc="The decoder attention of Llama-style models: q_proj, k_proj, v_proj, o_proj "
        "(Hugging Face's names); query head i uses key/value head i // (heads / kv_heads); "
        "rotary position embeddings (rotate-half) on queries and keys when `rotary`; scores "
        "scaled by 1/sqrt(head_dim); `causal` lets query i see keys j <= i.",
))
