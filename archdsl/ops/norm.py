"""Normalisation layers. BatchNorm (and InstanceNorm tracking running statistics) keeps
PyTorch's momentum convention (running = (1 - m) * running + m * batch) and its buffers,
including `num_batches_tracked`."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import ParamSpec, TensorType
from archdsl.ops.init import ONES, ZEROS
from archdsl.ops.registry import (
    POSITIVE,
    Arg,
    Flops,
    OpDef,
    always,
    fmt,
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
                               ("BatchNorm2d", (4,), "[B, C, H, W]"),
                               ("BatchNorm3d", (5,), "[B, C, D, H, W]")):
    register(OpDef(
        name=_name, kind="layer", category="norm", args=_BN_ARGS,
        normalize=_bn_norm(_name, _ranks, _layout), shape=lambda a, ins: ins[0],
        derives=("num_features",), stem="bn", output_reusable=True, training=always,
        params=_bn_params,
        flops=lambda a, ins, out: Flops(other=4 * numel(out.shape)),
        doc="Batch normalisation over the channel dimension (dim 1).",
    ))


def _last_dim_norm(op: str):
    def norm(a: dict, ins: list[TensorType]) -> dict:
        (x,) = ins
        need_float(op, x)
        if x.rank < 1:
            need_rank(op, x, (2,), "[..., D]")
        return {**a, "dim": need_known(op, "last dimension", x.shape[-1])}
    return norm


def _ln_params(a: dict, ins: list[TensorType]) -> list[ParamSpec]:
    if not a["elementwise_affine"]:
        return []
    return [ParamSpec(name="weight", shape=(a["dim"],), init=ONES)] + (
        [ParamSpec(name="bias", shape=(a["dim"],), init=ZEROS)] if a["bias"] else [])


register(OpDef(
    name="LayerNorm", kind="layer", category="norm",
    args=(Arg("eps", "float", 1e-5, min=POSITIVE), Arg("bias", "bool", True),
          Arg("elementwise_affine", "bool", True)),
    normalize=_last_dim_norm("LayerNorm"), shape=lambda a, ins: ins[0], derives=("dim",),
    stem="ln", output_reusable=True, params=_ln_params,
    flops=lambda a, ins, out: Flops(other=5 * numel(out.shape)),
    doc="Layer normalisation over the last dimension; a learned scale (`weight`) and shift "
        "(`bias`) unless elementwise_affine=false, no shift with bias=false.",
))

register(OpDef(
    name="RMSNorm", kind="layer", category="norm",
    args=(Arg("eps", "float", 1e-6, min=POSITIVE), Arg("elementwise_affine", "bool", True)),
    normalize=_last_dim_norm("RMSNorm"), shape=lambda a, ins: ins[0], derives=("dim",),
    stem="norm", output_reusable=True,
    params=lambda a, ins: [ParamSpec(name="weight", shape=(a["dim"],), init=ONES)]
    if a["elementwise_affine"] else [],
    flops=lambda a, ins, out: Flops(other=4 * numel(out.shape)),
    doc="x / sqrt(mean(x², last dim) + eps) · weight (nn.RMSNorm with an explicit eps).",
))


def _gn_norm(a: dict, ins: list[TensorType]) -> dict:
    (x,) = ins
    need_float("GroupNorm", x)
    if x.rank < 2:
        raise Problem("E0303", "`GroupNorm` expects [B, C, ...] with channels in dim 1",
                      label=f"got {fmt(x)}")
    c = need_known("GroupNorm", "channel count", x.shape[1])
    if c % a["groups"]:
        divisors = [g for g in range(1, c + 1) if c % g == 0]
        raise Problem("E0403", "`groups` must divide the channels of `GroupNorm`",
                      label=f"{c} channels in {fmt(x)} are not divisible by {a['groups']} groups",
                      hint=f"choose groups among {divisors[:12]}")
    return {**a, "num_channels": c}


register(OpDef(
    name="GroupNorm", kind="layer", category="norm",
    args=(Arg("groups", "int", min=1), Arg("eps", "float", 1e-5, min=POSITIVE),
          Arg("affine", "bool", True)),
    normalize=_gn_norm, shape=lambda a, ins: ins[0], derives=("num_channels",), stem="gn",
    output_reusable=True,
    params=lambda a, ins: [ParamSpec(name="weight", shape=(a["num_channels"],), init=ONES),
                           ParamSpec(name="bias", shape=(a["num_channels"],), init=ZEROS)]
    if a["affine"] else [],
    flops=lambda a, ins, out: Flops(other=5 * numel(out.shape)),
    doc="nn.GroupNorm: normalise each group of channels of each example over its channels and "
        "positions; a learned scale and shift per channel.",
))


def _in_params(a: dict, ins: list[TensorType]) -> list[ParamSpec]:
    """BatchNorm's parameters; its buffers only when tracking running statistics."""
    return [p for p in _bn_params(a, ins) if p.kind == "param" or a["track_running_stats"]]


for _name, _rank, _layout in (("InstanceNorm1d", 3, "[B, C, L]"),
                              ("InstanceNorm2d", 4, "[B, C, H, W]")):
    register(OpDef(
        name=_name, kind="layer", category="norm",
        args=(*_BN_ARGS[:2], Arg("affine", "bool", False),
              Arg("track_running_stats", "bool", False)),
        normalize=_bn_norm(_name, (_rank,), _layout), shape=lambda a, ins: ins[0],
        derives=("num_features",), stem="inorm", output_reusable=True,
        training=lambda a: a["track_running_stats"], params=_in_params,
        flops=lambda a, ins, out: Flops(other=4 * numel(out.shape)),
        doc=f"nn.{_name} with PyTorch's defaults: each channel of each example normalised over "
            "its positions; with track_running_stats, running statistics (BatchNorm's buffers "
            "and momentum) used in evaluation.",
    ))
