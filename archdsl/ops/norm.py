"""Normalisation layers. BatchNorm keeps PyTorch's momentum convention (running = (1 - m) *
running + m * batch) and its buffers, including `num_batches_tracked`."""

from __future__ import annotations

from archdsl.graph import ParamSpec, TensorType
from archdsl.ops.init import ONES, ZEROS
from archdsl.ops.registry import (
    POSITIVE,
    Arg,
    Flops,
    OpDef,
    always,
    need_float,
    need_known,
    need_rank,
    numel,
    register,
)


def _bn_norm(op: str, ranks: tuple[int, ...], layout: str):
    def norm(a: dict, ins: list[TensorType]) -> dict:
        (x,) = ins
        need_float(op, x)
        need_rank(op, x, ranks, layout)
        return {**a, "num_features": need_known(op, "channel count", x.shape[1])}
    return norm


def _bn_params(a: dict, ins: list[TensorType]) -> list[ParamSpec]:
    c = a["num_features"]
    ps = [ParamSpec(name="weight", shape=(c,), init=ONES),
          ParamSpec(name="bias", shape=(c,), init=ZEROS)] if a["affine"] else []
    return ps + [
        ParamSpec(name="running_mean", shape=(c,), init=ZEROS, kind="buffer"),
        ParamSpec(name="running_var", shape=(c,), init=ONES, kind="buffer"),
        ParamSpec(name="num_batches_tracked", shape=(), init=ZEROS, kind="buffer", dtype="i64"),
    ]


_BN_ARGS = (Arg("eps", "float", 1e-5, min=POSITIVE), Arg("momentum", "float", 0.1, min=0, max=1),
            Arg("affine", "bool", True))

for _name, _ranks, _layout in (("BatchNorm1d", (2, 3), "[B, C] or [B, C, L]"),
                               ("BatchNorm2d", (4,), "[B, C, H, W]")):
    register(OpDef(
        name=_name, kind="layer", category="norm", args=_BN_ARGS,
        normalize=_bn_norm(_name, _ranks, _layout), shape=lambda a, ins: ins[0],
        derives=("num_features",), stem="bn", output_reusable=True, training=always,
        params=_bn_params,
        flops=lambda a, ins, out: Flops(other=4 * numel(out.shape)),
        doc="Batch normalisation over the channel dimension (dim 1).",
    ))


def _ln_norm(a: dict, ins: list[TensorType]) -> dict:
    (x,) = ins
    need_float("LayerNorm", x)
    if x.rank < 1:
        need_rank("LayerNorm", x, (2,), "[..., D]")
    return {**a, "dim": need_known("LayerNorm", "last dimension", x.shape[-1])}


register(OpDef(
    name="LayerNorm", kind="layer", category="norm",
    args=(Arg("eps", "float", 1e-5, min=POSITIVE),),
    normalize=_ln_norm, shape=lambda a, ins: ins[0], derives=("dim",), stem="ln",
    output_reusable=True,
    params=lambda a, ins: [ParamSpec(name="weight", shape=(a["dim"],), init=ONES),
                           ParamSpec(name="bias", shape=(a["dim"],), init=ZEROS)],
    flops=lambda a, ins, out: Flops(other=5 * numel(out.shape)),
    doc="Layer normalisation over the last dimension, with a learned scale and shift.",
))
