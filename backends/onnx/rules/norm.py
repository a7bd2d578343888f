"""Normalisation. BatchNorm, and InstanceNorm tracking running statistics, use those
statistics (evaluation). GroupNorm is InstanceNormalization of the channels grouped into
[B, groups, -1] (opset 18's GroupNormalization came with a per-group scale, which opset 21
redefined), then the per-channel affine; RMSNorm is its formula."""

from __future__ import annotations

import numpy as np

from ..builder import NUMPY
from ..site import Site


def _affine(s: Site, c: int, weight: str, bias: str) -> tuple[str, str]:
    """The learned scale and shift, or ones and zeros when the layer has none."""
    if s.args["affine"]:
        return s.param(weight), s.param(bias)
    dtype = NUMPY.get(s.ins[0].dtype, np.float32)
    return s.const(np.ones(c), "ones", dtype), s.const(np.zeros(c), "zeros", dtype)


def batch_norm(s: Site) -> str:
    """Evaluation mode: the running statistics."""
    scale, shift = _affine(s, s.args["num_features"], "weight", "bias")
    return s.op("BatchNormalization", s.x, scale, shift, s.param("running_mean"),
                s.param("running_var"), epsilon=s.args["eps"])


def instance_norm(s: Site) -> str:
    if s.args["track_running_stats"]:  # evaluation uses the running statistics
        return batch_norm(s)
    scale, shift = _affine(s, s.args["num_features"], "weight", "bias")
    return s.op("InstanceNormalization", s.x, scale, shift, epsilon=s.args["eps"])


def layer_norm(s: Site) -> str:
    a = s.args
    if not a["elementwise_affine"]:
        scale = s.const(np.ones(a["dim"]), "ones", NUMPY.get(s.ins[0].dtype, np.float32))
        return s.op("LayerNormalization", s.x, scale, axis=-1, epsilon=a["eps"])
    bias = [s.param("bias")] if a["bias"] else []
    return s.op("LayerNormalization", s.x, s.param("weight"), *bias, axis=-1,
                epsilon=a["eps"])


def per_channel(s: Site, p: str, rank: int) -> str:
    """A [C] parameter shaped [C, 1, ...] to broadcast over the channels of a rank-`rank`
    tensor."""
    if rank == 2:
        return p
    return s.op("Reshape", p, s.const([-1] + [1] * (rank - 2), "channels"), hint=f"{p}_c")


def group_norm(s: Site) -> str:
    a, t = s.args, s.ins[0]
    g, dtype = a["groups"], NUMPY.get(t.dtype, np.float32)
    grouped = s.op("Reshape", s.x, s.const([0, g, -1], "groups"), hint="groups")  # (B, G, -1)
    normed = s.op("InstanceNormalization", grouped, s.const(np.ones(g), "ones", dtype),
                  s.const(np.zeros(g), "zeros", dtype), epsilon=a["eps"])
    y = s.op("Reshape", normed, s.op("Shape", s.x), hint="channels")  # back to x's shape
    if not a["affine"]:
        return y
    y = s.op("Mul", y, per_channel(s, s.param("weight"), t.rank), hint="scale")
    return s.op("Add", y, per_channel(s, s.param("bias"), t.rank), hint="shift")


def rms_norm(s: Site) -> str:
    """x / sqrt(mean(x², last dim) + eps) · weight."""
    dtype = s.ins[0].dtype
    square = s.op("ReduceMean", s.op("Mul", s.x, s.x, hint="square"), axes=[-1], keepdims=1)
    rms = s.op("Sqrt", s.op("Add", square, s.scalar(s.args["eps"], dtype), hint="eps"))
    y = s.op("Div", s.x, rms)
    return s.op("Mul", y, s.param("weight"), hint="scale") if s.args["elementwise_affine"] else y


RULES = {
    **{f"BatchNorm{n}d": batch_norm for n in (1, 2, 3)},
    "InstanceNorm1d": instance_norm,
    "InstanceNorm2d": instance_norm,
    "LayerNorm": layer_norm,
    "GroupNorm": group_norm,
    "RMSNorm": rms_norm,
}
