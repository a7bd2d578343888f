"""Linear, Embedding and the learned or fixed tables added to sequences."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import ParamSpec, TensorType
from archdsl.ops.init import (
    FAN_IN_INITS,
    NAMED,
    STANDARD_NORMAL,
    constant,
    fan_in_uniform,
    zero_row,
)
from archdsl.ops.registry import (
    Arg,
    Flops,
    OpDef,
    need_float,
    need_known,
    need_rank,
    numel,
    register,
)


def _linear_norm(args: dict, ins: list[TensorType]) -> dict:
    (x,) = ins
    need_float("Linear", x)
    if x.rank < 1:
        need_rank("Linear", x, (2,), "[..., in]")
    return {**args, "in": need_known("Linear", "input feature size", x.shape[-1])}


register(OpDef(
    name="Linear", kind="layer", category="dense",
    args=(Arg("out", "int", min=1), Arg("bias", "bool", True)),
    normalize=_linear_norm, derives=("in",), stem="fc", output_reusable=True,
    shape=lambda a, ins: ins[0].with_shape((*ins[0].shape[:-1], a["out"])),
    params=lambda a, ins: [ParamSpec(name="weight", shape=(a["out"], a["in"]),
                                     init=fan_in_uniform("weight"))]
    + ([ParamSpec(name="bias", shape=(a["out"],), init=fan_in_uniform("weight"))]
       if a["bias"] else []),
    flops=lambda a, ins, out: Flops(flops=2 * numel(ins[0].shape[:-1]) * a["in"] * a["out"],
                                    other=numel(out.shape) if a["bias"] else 0),
    doc="y = x W^T + b over the last dimension.",
))


def _embedding_shape(a: dict, ins: list[TensorType]) -> TensorType:
    (x,) = ins
    if x.dtype not in ("i32", "i64"):
        raise Problem("E0308", "`Embedding` needs integer token ids",
                      label=f"got {x.dtype}{x}", hint="declare the input as `i64[B, T]`")
    return TensorType(dtype="f32", shape=(*x.shape, a["dim"]))


def _embedding_norm(a: dict, ins: list[TensorType]) -> dict:
    """`padding_idx` in [-num, num), negative counting from the end; stored non-negative."""
    idx, num = a["padding_idx"], a["num"]
    if idx is None:
        return a
    if not -num <= idx < num:
        raise Problem("E0403", f"`padding_idx` of `Embedding` must be in [{-num}, {num})",
                      label=f"got {idx} for {num} rows",
                      hint=f"rows count from 0: the last is {num - 1}, or -1")
    return {**a, "padding_idx": idx % num}


register(OpDef(
    name="Embedding", kind="layer", category="dense", stem="embed",
    args=(Arg("num", "int", min=1), Arg("dim", "int", min=1), Arg("padding_idx", "int", None)),
    normalize=_embedding_norm, shape=_embedding_shape,
    params=lambda a, ins: [ParamSpec(
        name="weight", shape=(a["num"], a["dim"]),
        init=STANDARD_NORMAL if a["padding_idx"] is None else
        zero_row(STANDARD_NORMAL, a["padding_idx"]))],
    flops=lambda a, ins, out: Flops(),
    doc="A lookup table of `num` rows of size `dim`; row `padding_idx` starts at zero and gets "
        "no gradient.",
))


def _table_norm(op: str):
    def norm(args: dict, ins: list[TensorType]) -> dict:
        (x,) = ins
        need_float(op, x)
        need_rank(op, x, (3,), "[B, T, D]")
        t, d = x.shape[1], x.shape[2]
        if isinstance(t, int) and t > args["max_len"]:
            raise Problem("E0303", f"the sequence is longer than `max_len` of `{op}`",
                          label=f"T = {t} > max_len = {args['max_len']}",
                          hint=f"raise it: `{op}(max_len={t})`")
        return {**args, "dim": need_known(op, "model dimension", d)}
    return norm


register(OpDef(
    name="PositionalEncoding", kind="layer", category="dense",
    args=(Arg("max_len", "int", 5000, min=1),),
    normalize=_table_norm("PositionalEncoding"), derives=("dim",), stem="pos_enc",
    shape=lambda a, ins: ins[0],
    flops=lambda a, ins, out: Flops(other=numel(out.shape)),
    doc="Adds the sinusoidal table of Vaswani et al.; no parameters.",
))

register(OpDef(
    name="PositionalEmbedding", kind="layer", category="dense",
    args=(Arg("max_len", "int", min=1),),
    normalize=_table_norm("PositionalEmbedding"), derives=("dim",), stem="pos_embed",
    shape=lambda a, ins: ins[0],
    params=lambda a, ins: [ParamSpec(name="weight", shape=(a["max_len"], a["dim"]),
                                     init=STANDARD_NORMAL)],
    flops=lambda a, ins, out: Flops(other=numel(out.shape)),
    doc="Adds the first T rows of a learned [max_len, D] table.",
))


def _parameter_norm(args: dict, ins: list[TensorType]) -> dict:
    shape = args["shape"]
    shape = list(shape) if isinstance(shape, (tuple, list)) else [shape]
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int):
            raise Problem("E0402", "the shape of `Parameter` must be a list of integers",
                          label=f"got {args['shape']!r}")
        if d < 1:
            raise Problem("E0403", "every size in the shape of `Parameter` must be at least 1",
                          label=f"got {d}")
    init = args["init"]
    if init in FAN_IN_INITS and len(shape) < 2:
        raise Problem("E0403", f"`init=\"{init}\"` needs a shape of rank 2 or more",
                      label=f"the shape {shape} has no fan-in and fan-out",
                      hint='use "normal", "uniform", "zeros" or "constant" for a vector')
    if (init == "constant") != (args["value"] is not None):
        raise Problem("E0401", "`init=\"constant\"` of `Parameter` needs a `value`"
                      if init == "constant" else
                      "`value` of `Parameter` is only for `init=\"constant\"`",
                      label=f"init \"{init}\"" + (", no value" if init == "constant" else
                                                   f", value {args['value']}"),
                      hint='`Parameter([C], init="constant", value=1e-6)`')
    return {**args, "shape": shape}


def _parameter_init(a: dict) -> tuple:
    return constant(a["value"]) if a["init"] == "constant" else NAMED[a["init"]]


register(OpDef(
    name="Parameter", kind="layer", category="dense", inputs=(), min_inputs=0,
    args=(Arg("shape", "any"),
          Arg("init", "str", "normal", choices=(*NAMED, "constant")),
          Arg("value", "float", None)),
    normalize=_parameter_norm, stem="param",
    shape=lambda a, ins: TensorType(dtype="f32", shape=tuple(a["shape"])),
    params=lambda a, ins: [ParamSpec(name="", shape=tuple(a["shape"]), init=_parameter_init(a))],
    flops=lambda a, ins, out: Flops(),
    doc="A learned tensor of the given shape (class tokens, position tables, layer scale).",
))
