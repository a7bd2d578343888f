"""Convolutions and pooling, channels first. Padding is resolved to explicit (before, after)
pairs per spatial dimension, so `"same"` means the same thing in every backend: the output is
ceil(size / stride) and any odd padding goes after (bottom/right), as in TensorFlow. A
convolution's `padding_mode` says what fills that padding (PyTorch's zeros, reflect,
replicate, circular)."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import ParamSpec, TensorType
from archdsl.ops.init import fan_in_uniform
from archdsl.ops.registry import (
    Arg,
    Flops,
    OpDef,
    fmt,
    need_float,
    need_known,
    need_rank,
    numel,
    pair,
    positive_out,
    register,
)
from archdsl.symbolic import Dim, Sym, format_dim

_LAYOUT = {1: "[B, C, L]", 2: "[B, C, H, W]", 3: "[B, C, D, H, W]"}
PAD_MODES = ("constant", "reflect", "replicate", "circular")


def check_border_padding(op: str, mode: str, pads: list[list[int]], x: TensorType,
                         axes: list[int]) -> None:
    """`reflect` needs each pad below the padded dimension's size, `circular` at most that
    size (F.pad). A symbolic size is assumed large enough, as a slice bound is."""
    if mode not in ("reflect", "circular"):
        return
    for axis, pair_ in zip(axes, pads, strict=True):
        size = x.shape[axis]
        worst = max(pair_)
        if isinstance(size, int) and (worst >= size if mode == "reflect" else worst > size):
            rule = "below" if mode == "reflect" else "at most"
            raise Problem("E0403", f"`{mode}` padding of `{op}` must be {rule} the size it pads",
                          label=f"padding {worst} on dimension {axis} of size {size} in {fmt(x)}",
                          hint="pad less, or use \"replicate\" or \"constant\"")


def _resolve_padding(op: str, padding, kernel, stride, dilation, sizes) -> list[list[int]]:
    n = len(kernel)
    if padding == "valid":
        return [[0, 0] for _ in range(n)]
    if padding == "same":
        out = []
        for k, s, d, size in zip(kernel, stride, dilation, sizes, strict=True):
            span = d * (k - 1) + 1
            if s == 1:
                total = span - 1
            elif isinstance(size, Sym):
                raise Problem("E0405", f"`padding=\"same\"` with stride {s} needs a known size",
                              label=f"the size is the symbolic `{format_dim(size)}`",
                              hint="give the spatial size as a number, or pad explicitly")
            else:
                total = max((-(-size // s) - 1) * s + span - size, 0)
            out.append([total // 2, total - total // 2])
        return out
    pads = pair(padding, n, "padding", op)
    return [[p, p] for p in pads]


def _conv_norm(n: int):
    op = f"Conv{n}d"

    def norm(a: dict, ins: list[TensorType]) -> dict:
        (x,) = ins
        need_float(op, x)
        need_rank(op, x, (n + 2,), _LAYOUT[n])
        c = need_known(op, "channel count", x.shape[1])
        kernel = pair(a["kernel"], n, "kernel", op)
        stride = pair(a["stride"], n, "stride", op)
        dilation = pair(a["dilation"], n, "dilation", op)
        g = a["groups"]
        if c % g or a["out"] % g:
            raise Problem("E0403", f"`groups` must divide the input and output channels of `{op}`",
                          label=f"in {c}, out {a['out']}, groups {g}")
        padding = _resolve_padding(op, a["padding"], kernel, stride, dilation, x.shape[2:])
        mode = a["padding_mode"]
        check_border_padding(op, "constant" if mode == "zeros" else mode, padding, x,
                             list(range(2, n + 2)))
        return {**a, "in": c, "kernel": list(kernel), "stride": list(stride),
                "dilation": list(dilation), "padding": padding}
    return norm


def _conv_shape(n: int):
    op = f"Conv{n}d"

    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        (x,) = ins
        dims = []
        for size, k, s, d, (pb, pa) in zip(x.shape[2:], a["kernel"], a["stride"], a["dilation"],
                                           a["padding"], strict=True):
            dims.append(positive_out(op, "output", (size + pb + pa - d * (k - 1) - 1) // s + 1, x))
        return x.with_shape((x.shape[0], a["out"], *dims))
    return shape


def _conv_params(a: dict, ins: list[TensorType]) -> list[ParamSpec]:
    ps = [ParamSpec(name="weight", shape=(a["out"], a["in"] // a["groups"], *a["kernel"]),
                    init=fan_in_uniform("weight"))]
    if a["bias"]:
        ps.append(ParamSpec(name="bias", shape=(a["out"],), init=fan_in_uniform("weight")))
    return ps


def _conv_flops(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
    per_out = 2 * (a["in"] // a["groups"]) * numel(a["kernel"])
    return Flops(flops=numel(out.shape) * per_out, other=numel(out.shape) if a["bias"] else 0)


for _n in (1, 2, 3):
    register(OpDef(
        name=f"Conv{_n}d", kind="layer", category="conv",
        args=(Arg("out", "int", min=1), Arg("kernel", "ints", min=1),
              Arg("stride", "ints", 1, min=1), Arg("padding", "padding", 0, min=0),
              Arg("dilation", "ints", 1, min=1), Arg("groups", "int", 1, min=1),
              Arg("bias", "bool", True),
              Arg("padding_mode", "str", "zeros",
                  choices=("zeros", "reflect", "replicate", "circular"))),
        normalize=_conv_norm(_n), shape=_conv_shape(_n), params=_conv_params,
        flops=_conv_flops, derives=("in",), stem="conv", output_reusable=True,
        doc=f"{_n}-d convolution (cross-correlation), as torch.nn.Conv{_n}d.",
    ))


def _convt_norm(n: int):
    op = f"ConvTranspose{n}d"

    def norm(a: dict, ins: list[TensorType]) -> dict:
        (x,) = ins
        need_float(op, x)
        need_rank(op, x, (n + 2,), _LAYOUT[n])
        c = need_known(op, "channel count", x.shape[1])
        g = a["groups"]
        if c % g or a["out"] % g:
            raise Problem("E0403", f"`groups` must divide the input and output channels of "
                          f"`{op}`", label=f"in {c}, out {a['out']}, groups {g}")
        stride = pair(a["stride"], n, "stride", op)
        outp = pair(a["output_padding"], n, "output_padding", op)
        for o, s in zip(outp, stride, strict=True):
            if o >= s:
                raise Problem("E0403", "`output_padding` must be smaller than `stride`",
                              label=f"output_padding {o}, stride {s}")
        return {**a, "in": c, "kernel": list(pair(a["kernel"], n, "kernel", op)),
                "stride": list(stride), "padding": list(pair(a["padding"], n, "padding", op)),
                "output_padding": list(outp)}
    return norm


def _convt_shape(n: int):
    op = f"ConvTranspose{n}d"

    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        (x,) = ins
        dims = [positive_out(op, "output", (h - 1) * s - 2 * p + k + o, x)
                for h, k, s, p, o in zip(x.shape[2:], a["kernel"], a["stride"], a["padding"],
                                         a["output_padding"], strict=True)]
        return x.with_shape((x.shape[0], a["out"], *dims))
    return shape


for _n in (1, 2):
    register(OpDef(
        name=f"ConvTranspose{_n}d", kind="layer", category="conv",
        args=(Arg("out", "int", min=1), Arg("kernel", "ints", min=1),
              Arg("stride", "ints", 1, min=1), Arg("padding", "ints", 0, min=0),
              Arg("output_padding", "ints", 0, min=0), Arg("groups", "int", 1, min=1),
              Arg("bias", "bool", True)),
        normalize=_convt_norm(_n), shape=_convt_shape(_n), derives=("in",), stem="convt",
        output_reusable=True,
        params=lambda a, ins: [ParamSpec(name="weight", shape=(a["in"], a["out"] // a["groups"],
                                                                *a["kernel"]),
                                         init=fan_in_uniform("weight"))]
        + ([ParamSpec(name="bias", shape=(a["out"],), init=fan_in_uniform("weight"))]
           if a["bias"] else []),
        flops=lambda a, ins, out: Flops(
            flops=2 * numel(ins[0].shape) * (a["out"] // a["groups"]) * numel(a["kernel"]),
            other=numel(out.shape) if a["bias"] else 0),
        doc=f"Transposed {_n}-d convolution, as torch.nn.ConvTranspose{_n}d "
            "(weight [in, out/groups, *kernel]).",
    ))


# ---- pooling ----------------------------------------------------------------------------
def _pool_norm(op: str, n: int):
    def norm(a: dict, ins: list[TensorType]) -> dict:
        (x,) = ins
        need_float(op, x)
        need_rank(op, x, (n + 2,), _LAYOUT[n])
        kernel = pair(a["kernel"], n, "kernel", op)
        stride = kernel if a["stride"] is None else pair(a["stride"], n, "stride", op)
        padding = pair(a["padding"], n, "padding", op)
        for k, p in zip(kernel, padding, strict=True):
            if p > k // 2:
                raise Problem("E0403", f"`padding` of `{op}` must be at most half the kernel",
                              label=f"padding {p} with kernel {k}")
        return {**a, "kernel": list(kernel), "stride": list(stride), "padding": list(padding)}
    return norm


def _pool_size(op: str, h: Dim, k: int, s: int, p: int, ceil_mode: bool, x: TensorType) -> Dim:
    """PyTorch's pooling output size. With `ceil_mode` a last window that would start past the
    input and its left padding is dropped; that cannot happen when s <= k - p, and otherwise
    depends on the size modulo s, which must then be known."""
    if not ceil_mode:
        return positive_out(op, "output", (h + 2 * p - k) // s + 1, x)
    out = (h + 2 * p - k + s - 1) // s + 1
    if isinstance(h, Sym):
        if s > k - p:
            raise Problem("E0405", f"the `ceil_mode` output size of `{op}` depends on the "
                          "input size modulo the stride", label=f"the size is the symbolic "
                          f"`{format_dim(h)}` with kernel {k}, stride {s}, padding {p}",
                          hint="give that size as a number, or use ceil_mode=false")
    elif (out - 1) * s >= h + p:
        out -= 1
    return positive_out(op, "output", out, x)


def _pool_shape(op: str):
    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        (x,) = ins
        dims = [_pool_size(op, h, k, s, p, a["ceil_mode"], x)
                for h, k, s, p in zip(x.shape[2:], a["kernel"], a["stride"], a["padding"],
                                      strict=True)]
        return x.with_shape((*x.shape[:2], *dims))
    return shape


_POOL_ARGS = (Arg("kernel", "ints", min=1), Arg("stride", "ints", None, min=1),
              Arg("padding", "ints", 0, min=0), Arg("ceil_mode", "bool", False))

for _kind in ("Max", "Avg"):
    for _n in (1, 2, 3):
        _name = f"{_kind}Pool{_n}d"
        register(OpDef(
            name=_name, kind="layer", category="pool",
            args=_POOL_ARGS + ((Arg("count_include_pad", "bool", True),) if _kind == "Avg"
                               else ()),
            normalize=_pool_norm(_name, _n), shape=_pool_shape(_name), stem=f"{_kind.lower()}pool",
            flops=lambda a, ins, out: Flops(other=numel(out.shape) * numel(a["kernel"])),
            doc=f"{_n}-d {_kind.lower()} pooling; stride defaults to the kernel"
                + ("; padded zeros count in the average when count_include_pad." if _kind == "Avg"
                   else "; padding never wins the max."),
        ))


def _adaptive_norm(op: str, n: int):
    def norm(a: dict, ins: list[TensorType]) -> dict:
        (x,) = ins
        need_float(op, x)
        need_rank(op, x, (n + 2,), _LAYOUT[n])
        size = pair(a["size"], n, "size", op)
        for h in x.shape[2:]:
            need_known(op, "input size", h)
        return {**a, "size": list(size)}
    return norm


for _name, _n, _kind in (("AdaptiveAvgPool1d", 1, "Avg"), ("AdaptiveAvgPool2d", 2, "Avg"),
                         ("AdaptiveMaxPool2d", 2, "Max")):
    register(OpDef(
        name=_name, kind="layer", category="pool",
        args=(Arg("size", "ints", min=1),),
        normalize=_adaptive_norm(_name, _n), stem=f"{_kind.lower()}pool",
        shape=lambda a, ins: ins[0].with_shape((*ins[0].shape[:2], *a["size"])),
        flops=lambda a, ins, out: Flops(other=numel(ins[0].shape)),
        doc=f"{'Average' if _kind == 'Avg' else 'Maximum'} pooling to a fixed output size, "
            "PyTorch's bins.",
    ))


def _global_shape(op: str):
    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        (x,) = ins
        need_float(op, x)
        if x.rank < 3:
            raise Problem("E0303", f"`{op}` expects [B, C, ...] with spatial dimensions",
                          label=f"got {fmt(x)}")
        return x.with_shape(x.shape[:2])
    return shape


for _kind in ("Avg", "Max"):
    register(OpDef(
        name=f"Global{_kind}Pool", kind="layer", category="pool", args=(),
        stem=f"{_kind.lower()}pool", shape=_global_shape(f"Global{_kind}Pool"),
        flops=lambda a, ins, out: Flops(other=numel(ins[0].shape)),
        doc=f"{'Mean' if _kind == 'Avg' else 'Maximum'} over every dimension after the "
            "channels: [B, C, ...] -> [B, C].",
    ))
