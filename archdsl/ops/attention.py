"""Multi-head attention (PyTorch's parameter layout) and additive (Bahdanau) attention."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import ParamSpec, TensorType
from archdsl.ops.init import XAVIER_UNIFORM, ZEROS, fan_in_uniform
from archdsl.ops.registry import (
    Arg,
    Flops,
    OpDef,
    fmt,
    need_float,
    need_known,
    need_rank,
    register,
)


def _mha_norm(a: dict, ins: list[TensorType]) -> dict:
    op = "MultiHeadAttention"
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
    e = need_known(op, "query size", q.shape[2])
    if e % a["heads"]:
        raise Problem("E0403", f"`heads` must divide the model dimension of `{op}`",
                      label=f"{e} is not divisible by {a['heads']} heads",
                      hint=f"choose heads among {[h for h in range(1, 65) if e % h == 0]}")
    return {**a, "embed_dim": e, "kdim": need_known(op, "key size", k.shape[2]),
            "vdim": need_known(op, "value size", v.shape[2]), "self_attention": len(ins) == 1}


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


def _mha_flops(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
    q, k, v = (ins * 3) if len(ins) == 1 else ins
    b, tq, tk = q.shape[0], q.shape[1], k.shape[1]
    e = a["embed_dim"]
    proj = 2 * b * (tq * e * e + tk * a["kdim"] * e + tk * a["vdim"] * e + tq * e * e)
    products = 4 * b * tq * tk * e
    return Flops(flops=proj + products, other=3 * b * a["heads"] * tq * tk)


register(OpDef(
    name="MultiHeadAttention", kind="layer", category="attention",
    inputs=("query", "key", "value"), min_inputs=1,
    args=(Arg("heads", "int", min=1), Arg("causal", "bool", False),
          Arg("dropout", "float", 0.0, min=0, max=1, max_exclusive=True),
          Arg("bias", "bool", True)),
    normalize=_mha_norm, stem="attn",
    derives=("embed_dim", "kdim", "vdim", "self_attention"),
    training=lambda a: a["dropout"] > 0,
    shape=lambda a, ins: ins[0],
    params=_mha_params, flops=_mha_flops,
    meta={"products": lambda a, ins: 4 * ins[0].shape[0] * ins[0].shape[1]
          * ((ins * 3) if len(ins) == 1 else ins)[1].shape[1] * a["embed_dim"]},
    doc="torch.nn.MultiheadAttention (batch first). Piped: self-attention; called with "
        "(query, key, value): cross-attention. `causal` masks key j > query i (top-left).",
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
