"""The Keras lowerings of LANGUAGE.md section 10's spatial, recurrent and attention ops:
3-d convolution and pooling, transposed 1-d convolution, border padding modes, `ceil_mode`,
adaptive and global max pooling, resampling, pixel shuffles, recurrent cells and states,
padded embeddings, Llama-style attention and attention masks. target.py joins `CONSTRUCT`
and `FORWARD` into its tables; the layers of layers_spatial.py fill Keras's gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..core.lowering import OpSite
from ..core.pycode import Expr, binop, call, unary
from . import steps, target
from .steps import FIRST, LAST, Layer, M, Stack, X
from .target import _list, _op, _refuse, applied


def _need_known_sizes(site: OpSite, what: str) -> None:
    """Refuse `what` when a spatial size of the input is symbolic (known only when the
    model runs): its layer computes indices, weights or shapes from the sizes."""
    if not all(isinstance(n, int) for n in site.ins[0].shape[2:]):
        raise _refuse(site, f"{what} on a size known only when the model runs")


def _axes(values: Any) -> str:
    """Per-axis values as code: one number when they are all the same."""
    values = _list(values)
    return str(values[0]) if len(set(values)) == 1 else _ints(values)


def _ints(values: list[int]) -> str:
    return f"({', '.join(map(str, values))},)" if len(values) == 1 else \
        f"({', '.join(map(str, values))})"


# ---- convolution ------------------------------------------------------------------------------
def _conv(site: OpSite) -> Layer:
    """Zero padding as target.py's; PyTorch's other modes pad with `BorderPad` (the resolved
    (before, after) widths, odd cell after for "same") and convolve without padding."""
    mode = site.args["padding_mode"]
    if mode == "zeros":
        return target._conv(site)
    _need_known_sizes(site, f'padding_mode="{mode}"')
    n = site.ins[0].rank - 2
    pads = [tuple(p) for p in site.args["padding"]]
    strides = [int(s) for s in _list(site.args["stride"])]
    dilations = [int(d) for d in _list(site.args["dilation"])]
    strided_dilated = any(s != 1 for s in strides) and any(d != 1 for d in dilations)
    pad = applied(call("BorderPad", repr(pads), f'"{mode}"'), X[0])
    after: tuple[Expr, ...] = ()
    if strided_dilated:  # TensorFlow has none: stride 1, then every s-th cell
        after = (f"{X[0]}[:, {', '.join(f'::{s}' for s in strides)}]",)
    stride = [] if strided_dilated else site.keyword("stride", 1, "strides")
    return Layer(f"keras.layers.Conv{n}D", (
        site.arg("out"), site.ints("kernel"), *stride,
        *site.keyword("dilation", 1, "dilation_rate"), *site.keyword("groups", 1),
        *site.keyword("bias", True, "use_bias")),
        apply=call(M, X[0]), kind=LAST, before=(pad,), after=after,
        ranks=(site.ins[0].rank,), rank=site.node.type.rank)


# ---- pooling ----------------------------------------------------------------------------------
def _pool(kind: str) -> Callable[[OpSite], steps.Op]:
    """target.py's stock Keras pooling, or `Pool` for `ceil_mode`, an average that does not
    count its padding, and 3-d pooling (which TensorFlow's own lacks in float64)."""
    stock = target._pool("Max" if kind == "max" else "Average")

    def rule(site: OpSite) -> steps.Op:
        ceil = site.args["ceil_mode"]
        counted = site.args.get("count_include_pad", True)
        n = site.ins[0].rank - 2
        if n < 3 and not ceil and (counted or not any(_list(site.args["padding"]))):
            return stock(site)
        kernel, stride = site.args["kernel"], site.args["stride"]
        flags = [*([] if stride == kernel else [f"stride={_axes(stride)}"]),
                 *([] if not any(_list(site.args["padding"])) else
                   [f"padding={_axes(site.args['padding'])}"]),
                 *(["ceil_mode=True"] if ceil else []),
                 *([] if counted else ["count_include_pad=False"])]
        layer = call("Pool", f'"{kind}"', _axes(kernel), *flags)
        return _op(site, LAST, applied(layer, X[0]))
    return rule


def _global_max(site: OpSite) -> steps.Op:
    n = site.ins[0].rank - 2
    return _op(site, LAST, applied(call(f"keras.layers.GlobalMaxPooling{n}D"), X[0]))


def _adaptive(kind: str) -> Callable[[OpSite], steps.Op]:
    def rule(site: OpSite) -> steps.Op:
        n = site.ins[0].rank - 2
        layer = call(f"keras.layers.Adaptive{kind}Pooling{n}D", site.ints("size"))
        return _op(site, LAST, applied(layer, X[0]))
    return rule


# ---- resampling --------------------------------------------------------------------------------
def _resample(site: OpSite) -> steps.Op:
    """`Resample` of layers_spatial.py, from the input's sizes (known when the model is
    built)."""
    _need_known_sizes(site, "resampling")
    mode = site.args["mode"]
    which = "size" if site.args["size"] is not None else "scale"
    extra = [f"{which}={_ints(_list(site.args[which]))}"]
    if site.args["align_corners"]:
        extra.append("align_corners=True")
    return _op(site, LAST, applied(call("Resample", f'"{mode}"', *extra), X[0]))


def _shuffle(inverse: bool) -> Callable[[OpSite], steps.Op]:
    def rule(site: OpSite) -> steps.Op:
        _need_known_sizes(site, "a pixel shuffle")
        layer = call("PixelShuffle", site.arg("r"), *(["inverse=True"] if inverse else []))
        return _op(site, FIRST, applied(layer, X[0]))
    return rule


# ---- tables -----------------------------------------------------------------------------------
def _embedding(site: OpSite) -> Layer:
    """Keras's Embedding; `PaddedEmbedding` with `padding_idx` (stored non-negative)."""
    if site.args.get("padding_idx") is None:
        return target._embedding(site)
    return Layer("PaddedEmbedding", (site.arg("num"), site.arg("dim"),
                                     f"padding_idx={site.args['padding_idx']}"),
                 apply=call(M, X[0]), kind=FIRST, ranks=(site.ins[0].rank,),
                 rank=site.node.type.rank)


# ---- recurrent ------------------------------------------------------------------------------
def _cell(site: OpSite) -> Layer:
    mode = site.op.name[:-len("Cell")].lower()
    return Layer("Cell", (f'"{mode}"', site.arg("hidden"),
                          *site.keyword("bias", True, "use_bias")),
                 apply=call(M, *X[:len(site.xs)]), kind=FIRST,
                 ranks=tuple(t.rank for t in site.ins), rank=2)


def _applied_to_all(site: OpSite) -> steps.Op:
    """The layer applied to every input; several results (an LSTM cell's h and c, a
    layer's states) leave as a tuple, their ranks in `data` for the layout pass."""
    op = _op(site, "apply", call(M, *X[:len(site.xs)]))
    return replace(op, data=tuple(t.rank for t in site.node.parts)) if site.node.parts else op


def _recurrent(site: OpSite) -> Layer | Stack:
    """target.py's stack of Keras layers, or `Recurrent` when the layer takes initial
    states or returns its final ones (the same Keras layers, named alike, inside)."""
    if len(site.xs) == 1 and not site.args["return_state"]:
        return target._recurrent(site)
    flags = [f"layers={site.arg('layers')}"] if site.args["layers"] != 1 else []
    for name in ("bidirectional", "return_state"):
        flags += [f"{name}=True"] if site.args[name] else []
    flags += [] if site.args["return_sequences"] else ["return_sequences=False"]
    flags += [f"dropout={site.arg('dropout')}"] if site.args["dropout"] else []
    return Layer("Recurrent", (f'"{site.op.name.lower()}"', site.arg("hidden"), *flags),
                 apply=call(M, *X[:len(site.xs)]), kind=FIRST,
                 ranks=tuple(t.rank for t in site.ins), rank=site.node.type.rank)


# ---- attention --------------------------------------------------------------------------------
def _masked(site: OpSite) -> bool:
    return bool(site.node.args.get("key_padding_mask"))


def _own_attention(site: OpSite) -> bool:
    """Whether MultiHeadAttention needs `MultiheadAttention` of layers_spatial.py: with a
    `key_padding_mask`, or heads 1 wide (whose projection bias Keras 3.15's `ops.add` puts
    along the sequence when its length is the head count)."""
    heads = site.args["heads"]
    return _masked(site) or (site.args["embed_dim"] // heads == 1 and heads != 1)


def _attention_layer(site: OpSite, func: str, args: tuple[str, ...]) -> Layer:
    return Layer(func, args, apply=_attention_call(site), kind=FIRST,
                 ranks=tuple(t.rank for t in site.ins), rank=3)


def _attention_call(site: OpSite) -> Expr:
    """`attention(q[, k, v][, key_padding_mask=m])`: the mask is the last input."""
    n = len(site.xs)
    if _masked(site):
        return call(M, *X[:n - 1], f"key_padding_mask={X[n - 1]}")
    return call(M, *X[:n])


def _multi_head(site: OpSite) -> Layer:
    if not _own_attention(site):
        return target._attention(site)
    return _attention_layer(site, "MultiheadAttention", (
        site.arg("heads"), *site.keyword("bias", True), *site.keyword("causal", False),
        *site.keyword("dropout", 0.0)))


def _multi_head_apply(site: OpSite) -> steps.Op:
    if not _own_attention(site):
        return target._mha_apply(site)
    return _op(site, "apply", _attention_call(site))


def _llama(site: OpSite) -> Layer:
    return _attention_layer(site, "Attention", (
        site.arg("heads"), *site.keyword("kv_heads", None), *site.keyword("bias", False),
        *site.keyword("causal", False), *site.keyword("rotary", False),
        *site.keyword("rope_base", 10000.0), *site.keyword("dropout", 0.0)))


# ---- arithmetic -------------------------------------------------------------------------------
def _add(site: OpSite) -> steps.Op:
    """target.py's `a + b`, unless Keras 3.15's `ops.add` could take `b` for a bias: when
    `b` squeezes to one dimension of a's axis 1 or last axis length it adds `b` along that
    axis (`tf.nn.bias_add`), wherever broadcasting puts it. Then `b + a` when `a` surely
    has two dimensions of more than one cell, else `a - (-b)`: the same sums, bit for bit."""
    op = target._binary(site)
    if len(site.xs) != 2 or not _may_misplace(site.ins[0].shape, site.ins[1].shape):
        return op
    a, b = target._cast(site, 0), target._cast(site, 1)
    if sum(isinstance(d, int) and d > 1 for d in site.ins[0].shape) >= 2:
        return replace(op, code=binop("+", b, a))
    return replace(op, code=binop("-", a, unary("-", b)))


def _may_misplace(a: list[Any], b: list[Any]) -> bool:
    """Whether `ops.add(a, b)` may run as a bias add along the wrong axis: `b` has one
    dimension that may exceed 1, and it is not b's last one matching a's last (which Keras
    picks first); checked in the layout a tensor of rank 3 or more may be held in too."""
    layouts = [(a, b)]
    if len(a) == len(b) >= 3:
        layouts.append(tuple([x[0], *x[2:], x[1]] for x in (a, b)))  # channels-last
    for x1, x2 in layouts:
        wide = [k for k, d in enumerate(x2) if d != 1]
        if len(wide) == 1 and len(x1) > 1 and not (
                wide[0] == len(x2) - 1 and x1[-1] == x2[-1]):
            return True
    return False


CONSTRUCT: dict[str, Callable[[OpSite], Layer | Stack]] = {
    "Conv1d": _conv,
    "Conv2d": _conv,
    "Conv3d": _conv,
    "ConvTranspose1d": target._conv_transpose,
    "Embedding": _embedding,
    "RNNCell": _cell,
    "GRUCell": _cell,
    "LSTMCell": _cell,
    "RNN": _recurrent,
    "GRU": _recurrent,
    "LSTM": _recurrent,
    "MultiHeadAttention": _multi_head,
    "Attention": _llama,
}

FORWARD: dict[str, Callable[[OpSite], steps.Op]] = {
    "Conv3d": target._apply,
    "ConvTranspose1d": target._apply,
    "MaxPool1d": _pool("max"),
    "MaxPool2d": _pool("max"),
    "MaxPool3d": _pool("max"),
    "AvgPool1d": _pool("avg"),
    "AvgPool2d": _pool("avg"),
    "AvgPool3d": _pool("avg"),
    "AdaptiveAvgPool1d": _adaptive("Average"),
    "AdaptiveMaxPool2d": _adaptive("Max"),
    "GlobalMaxPool": _global_max,
    "RNNCell": _applied_to_all,
    "GRUCell": _applied_to_all,
    "LSTMCell": _applied_to_all,
    "RNN": _applied_to_all,
    "GRU": _applied_to_all,
    "LSTM": _applied_to_all,
    "add": _add,
    "MultiHeadAttention": _multi_head_apply,
    "Attention": lambda site: _op(site, "apply", _attention_call(site)),
    "Upsample": _resample,
    "interpolate": _resample,
    "PixelShuffle": _shuffle(False),
    "PixelUnshuffle": _shuffle(True),
}
