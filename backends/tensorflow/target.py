"""How each op of the language becomes Keras: the lowering tables of the Keras target.

- `CONSTRUCT[op](site)` is the Keras layer a function makes for a layer with weights or state
  (`layers.Conv2D(channels, 3, use_bias=False)`), a `Layer` that also says how it is applied
  and in which layout; the layout pass names it after the layer's path.
- `FORWARD[op](site)` is one op applied, an `Op` whose input slots the layout pass fills.

Stock Keras layers and `keras.ops` wherever they compute what PyTorch computes; the layers of
`layers.py` (copied into a module that uses them) where Keras lacks PyTorch's semantics. An op
or a setting missing here is refused at compile time with its location (E0901).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archdsl.expr import Lit, Op, binary, expr_of
from archdsl.ops import plugin

from ..core.lowering import OpSite, Refused
from ..core.pycode import Call, Expr, Index, Seq, binop, call, unary
from . import steps
from .steps import ANCHOR, AXIS, FIRST, LAST, Layer, M, Stack, X

DTYPES = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64",
          "i32": "int32", "i64": "int64", "bool": "bool"}


def applied(layer: Call, *inputs: Expr) -> Call:
    """A layer made and applied at once: `layers.Flatten()(x)`."""
    return Call(layer, inputs)


def _op(site: OpSite, kind: str, code: Expr = "", data: tuple[Any, ...] = ()) -> steps.Op:
    return steps.Op(site.op.name, tuple(site.xs), kind=kind, code=code, ins=tuple(site.xs),
                    ranks=tuple(t.rank for t in site.ins),
                    dtypes=tuple(t.dtype for t in site.ins), rank=site.node.type.rank,
                    dtype=site.node.type.dtype, data=data, module=site.module,
                    loc=site.node.loc)


def elementwise(site: OpSite, code: Expr) -> steps.Op:
    """An op computed by `code` from its inputs `X[0]`, `X[1]`, ... elementwise, so in
    whichever layout they come (a plugin's `forward` rule returns one)."""
    return _op(site, "any", code)


def _refuse(site: OpSite, what: str) -> Refused:
    return Refused(f"the Keras backend cannot build `{site.op.name}` with {what}",
                   site.node.loc)


def _literal(site: OpSite, name: str) -> Any:
    """An argument's value when the spec writes it as a literal (or leaves the default)."""
    if name in site.given:
        given = site.given[name]
        return given.value if isinstance(given, Lit) else None
    return site.args[name]


def _same(values: Any) -> Any:
    """[2, 2] -> 2; a single value as it is."""
    if isinstance(values, (list, tuple)) and len(set(values)) == 1:
        return values[0]
    return values


# ---- layers a function makes ------------------------------------------------------------------
def _dense(site: OpSite) -> Layer:
    return Layer("keras.layers.Dense", (site.arg("out"), *site.keyword("bias", True, "use_bias")),
                 apply=call(M, X[0]), kind=FIRST, ranks=(site.ins[0].rank,),
                 rank=site.node.type.rank)


def _conv(site: OpSite) -> Layer:
    """Conv1D/Conv2D channels-last. Explicit padding pads first (ZeroPadding), unless it is
    what "same" gives at stride 1; TensorFlow has no strided dilated convolution, so one is
    computed at stride 1 and subsampled (the same numbers)."""
    n = site.ins[0].rank - 2
    if site.args["padding_mode"] != "zeros":
        raise _refuse(site, f'padding_mode="{site.args["padding_mode"]}"')
    stride = _literal(site, "stride")
    strided_dilated = any(s != 1 for s in _list(site.args["stride"])) and \
        any(d != 1 for d in _list(site.args["dilation"]))
    pads = site.args["padding"]  # resolved (before, after) pairs
    given = site.given.get("padding")
    before: tuple[Expr, ...] = ()
    padding: list[str] = []
    if isinstance(given, Lit) and given.value == "same" and not strided_dilated:
        padding = ['padding="same"']
    elif strided_dilated or any(p for pair in pads for p in pair):
        if not strided_dilated and _literal(site, "padding") is not None and \
                _pads_same(pads, site.args["kernel"], site.args["dilation"], stride):
            padding = ['padding="same"']
        else:
            width = site.ints("padding") if given is not None and not (
                isinstance(given, Lit) and isinstance(given.value, str)) else \
                _pairs(pads)
            before = (applied(call(f"keras.layers.ZeroPadding{n}D", width), X[0]),)
    strides = [] if strided_dilated else site.keyword("stride", 1, "strides")
    after: tuple[Expr, ...] = ()
    if strided_dilated:
        every = ", ".join(f"::{s}" for s in _list(site.args["stride"]))
        after = (Index(X[0], f":, {every}"),)
    return Layer(f"keras.layers.Conv{n}D", (
        site.arg("out"), site.ints("kernel"), *strides, *padding,
        *site.keyword("dilation", 1, "dilation_rate"), *site.keyword("groups", 1),
        *site.keyword("bias", True, "use_bias")),
        apply=call(M, X[0]), kind=LAST, before=before, after=after,
        ranks=(site.ins[0].rank,), rank=site.node.type.rank)


def _list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _pads_same(pads: list[list[int]], kernel: list[int], dilation: list[int],
               stride: Any) -> bool:
    """Whether explicit padding is exactly what "same" pads at stride 1."""
    if any(s != 1 for s in _list(stride if stride is not None else 2)):
        return False
    return all(b == a and 2 * b == d * (k - 1)
               for (b, a), k, d in zip(pads, kernel, dilation, strict=True))


def _pairs(pads: list[list[int]]) -> str:
    if len(pads) == 1:
        return f"({pads[0][0]}, {pads[0][1]})" if pads[0][0] != pads[0][1] else str(pads[0][0])
    if all(b == a for b, a in pads):
        return str(_same([b for b, _ in pads])) if len({b for b, _ in pads}) == 1 else \
            f"({', '.join(str(b) for b, _ in pads)})"
    return f"({', '.join(f'({b}, {a})' for b, a in pads)})"


def _conv_transpose(site: OpSite) -> Layer:
    """Conv1DTranspose / Conv2DTranspose, then PyTorch's `padding` cropped from each side
    (Keras's `output_padding` adds the same rows and columns after as PyTorch's). Keras has no
    groups: a grouped one is the `GroupedConv{n}DTranspose` of layers.py."""
    n = site.ins[0].rank - 2
    grouped = _literal(site, "groups") != 1
    func = f"GroupedConv{n}DTranspose" if grouped else f"keras.layers.Conv{n}DTranspose"
    after: tuple[Expr, ...] = ()
    if any(_list(site.args["padding"])):
        after = (applied(call(f"keras.layers.Cropping{n}D", site.ints("padding")), X[0]),)
    output_padding = site.keyword("output_padding", 0)
    kernel, stride = _literal(site, "kernel"), _literal(site, "stride")
    if not output_padding and (kernel is None or stride is None or any(
            k < s for k, s in zip(_list(site.args["kernel"]), _list(site.args["stride"]),
                                  strict=True))):
        # Keras's default output size adds stride - kernel rows where the kernel is smaller
        output_padding = ["output_padding=0"]
    return Layer(func, (
        site.arg("out"), site.ints("kernel"), *site.keyword("stride", 1, "strides"),
        *output_padding, *(site.keyword("groups", 1) if grouped else []),
        *site.keyword("bias", True, "use_bias")),
        apply=call(M, X[0]), kind=LAST, after=after, ranks=(n + 2,), rank=n + 2)


def _momentum(site: OpSite) -> str:
    """PyTorch's momentum m weighs the batch; Keras's weighs the running value: 1 - m."""
    m = _literal(site, "momentum")
    if m is not None:
        return repr(round(1 - m, 12))
    return f"1 - {site.arg('momentum')}"


def _batch_norm(site: OpSite) -> Layer:
    affine = [] if _literal(site, "affine") is True else \
        [f"center={site.arg('affine')}", f"scale={site.arg('affine')}"]
    rank = site.ins[0].rank
    return Layer("BatchNorm", (f"momentum={_momentum(site)}", f"epsilon={site.arg('eps')}",
                               *affine),
                 apply=call(M, X[0]), kind=LAST if rank >= 3 else "any", ranks=(rank,),
                 rank=rank)


def _layer_norm(site: OpSite) -> Layer:
    affine = _literal(site, "elementwise_affine")
    flags = []
    if affine is not True:
        flags = [f"center={site.arg('elementwise_affine')}",
                 f"scale={site.arg('elementwise_affine')}"]
    elif _literal(site, "bias") is not True:
        flags = [f"center={site.arg('bias')}"]
    return Layer("keras.layers.LayerNormalization", (f"epsilon={site.arg('eps')}", *flags),
                 apply=call(M, X[0]), kind=FIRST, ranks=(site.ins[0].rank,),
                 rank=site.node.type.rank)


def _embedding(site: OpSite) -> Layer:
    if site.args.get("padding_idx") is not None:
        raise _refuse(site, "`padding_idx`")
    return Layer("keras.layers.Embedding", (site.arg("num"), site.arg("dim")), apply=call(M, X[0]),
                 kind=FIRST, ranks=(site.ins[0].rank,), rank=site.node.type.rank)


def _recurrent(site: OpSite) -> Stack:
    """One Keras layer per PyTorch layer (named `.l0`, `.l1` when stacked), bidirectional
    ones wrapped; dropout between them in training, as PyTorch applies it. GRU is Keras's
    (`reset_after=True` is PyTorch's formula); RNN and LSTM run the cells of layers.py, which
    keep PyTorch's two biases."""
    if len(site.xs) > 1:
        raise _refuse(site, "an initial state")
    if site.args["return_state"]:
        raise _refuse(site, "`return_state=true`")
    hidden = site.arg("hidden")
    count = int(site.args["layers"])
    made: list[Layer] = []
    names: list[str | None] = []
    for k in range(count):
        if k and site.args["dropout"]:
            made.append(Layer("keras.layers.Dropout", (site.arg("dropout"),), apply=call(M, X[0])))
            names.append(None)
        sequences = ["return_sequences=True"] if k < count - 1 or \
            site.args["return_sequences"] else []
        if site.op.name == "GRU":
            inner: Expr = call("keras.layers.GRU", hidden, *sequences)
        else:
            cell = {"LSTM": "LSTMCell", "RNN": "RNNCell"}[site.op.name]
            inner = call("keras.layers.RNN", call(cell, hidden), *sequences)
        if site.args["bidirectional"]:
            inner = call("keras.layers.Bidirectional", inner)
        assert not isinstance(inner, str)
        made.append(Layer(inner.func, inner.args, apply=call(M, X[0])))
        names.append(f"l{k}" if count > 1 else "")
    return Stack(site.op.name, (), layers=tuple(made), names=tuple(names))


def _attention(site: OpSite) -> Layer:
    """Keras's MultiHeadAttention is PyTorch's: per-head query/key/value projections of
    embed_dim / heads, scores scaled by their root, dropout on the weights, one output
    projection; `state_dict` packs them as PyTorch does."""
    width = site.text(binary("//", _expr(site, "embed_dim"), _expr(site, "heads")))
    return Layer("keras.layers.MultiHeadAttention", (
        site.arg("heads"), width, *site.keyword("dropout", 0.0),
        *site.keyword("bias", True, "use_bias")),
        apply=call(M, X[0], X[0]), kind=FIRST, ranks=(3,), rank=3)


def _expr(site: OpSite, name: str) -> Any:
    return site.given[name] if name in site.given else expr_of(site.args[name])


def _parameter(site: OpSite) -> Layer:
    shape = site.given.get("shape", expr_of(list(site.args["shape"])))
    dims = shape.args if isinstance(shape, Op) and shape.op in ("list", "tuple") else (shape,)
    sizes = ", ".join(site.text(d) for d in dims)
    init = [site.arg("init")] if site.keyword("init", "normal") else []
    return Layer("Parameter", (f"({sizes},)" if len(dims) == 1 else f"({sizes})", *init,
                               *site.keyword("value", None)),
                 apply=call(M, ANCHOR), kind=FIRST, rank=len(dims), read=True)


CONSTRUCT: dict[str, Callable[[OpSite], Layer | Stack]] = {
    "Linear": _dense,
    "Conv1d": _conv,
    "Conv2d": _conv,
    "ConvTranspose2d": _conv_transpose,
    "BatchNorm1d": _batch_norm,
    "BatchNorm2d": _batch_norm,
    "LayerNorm": _layer_norm,
    "Embedding": _embedding,
    "RNN": _recurrent,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "MultiHeadAttention": _attention,
    "AdditiveAttention": lambda s: Layer("AdditiveAttention", (s.arg("units"),),
                                         apply=call(M, X[0], X[1]), kind=FIRST,
                                         ranks=(2, 3), rank=2),
    "PositionalEmbedding": lambda s: Layer("PositionalEmbedding", (s.arg("max_len"),),
                                           apply=call(M, X[0]), kind=FIRST, ranks=(3,),
                                           rank=3),
    "Parameter": _parameter,
}


# ---- ops applied --------------------------------------------------------------------------------
def _apply(site: OpSite) -> steps.Op:
    return _op(site, "apply")


def _mha_apply(site: OpSite) -> steps.Op:
    """Keras calls attention as (query, value, key=...), the key defaulting to the value."""
    if len(site.xs) > 3 or site.node.args.get("key_padding_mask"):
        raise _refuse(site, "`key_padding_mask`")
    causal = ["use_causal_mask=True"] if _literal(site, "causal") is True else \
        [] if _literal(site, "causal") is False else [f"use_causal_mask={site.arg('causal')}"]
    if len(site.xs) == 1:
        code = call(M, X[0], X[0], *causal)
    elif site.xs[1] == site.xs[2]:
        code = call(M, X[0], X[1], *causal)
    else:
        code = call(M, X[0], X[2], f"key={X[1]}", *causal)
    return _op(site, "apply", code)


def _activation(func: str, *extra: str) -> Callable[[OpSite], steps.Op]:
    return lambda site: _op(site, "any", call(func, X[0], *extra))


def _gelu(site: OpSite) -> steps.Op:
    value = _literal(site, "approximate")
    flag = "True" if value == "tanh" else "False" if value is not None else \
        f'{site.arg("approximate")} == "tanh"'
    return _op(site, "any", call("keras.ops.gelu", X[0], f"approximate={flag}"))


def _softmax(site: OpSite) -> steps.Op:
    return _op(site, "axis", call("keras.ops.softmax", X[0], f"axis={AXIS}"),
               (site.args["dim"] % site.ins[0].rank,))


def _pool(kind: str) -> Callable[[OpSite], steps.Op]:
    """Keras pooling, channels-last. PyTorch pads a max pool with -inf (padding never wins)
    and an average pool with zeros that count in the divisor."""
    def rule(site: OpSite) -> steps.Op:
        if site.args["ceil_mode"]:
            raise _refuse(site, "`ceil_mode=true`")
        n = site.ins[0].rank - 2
        padded = any(_list(site.args["padding"]))
        if kind == "Average" and padded and not site.args["count_include_pad"]:
            raise _refuse(site, "`count_include_pad=false`")
        x: Expr = X[0]
        if padded and kind == "Max":
            widths = ", ".join(["(0, 0)", *(f"({p}, {p})" for p in _list(site.args["padding"])),
                                "(0, 0)"])
            x = call("keras.ops.pad", x, f"({widths})", 'constant_values=float("-inf")')
        elif padded:
            x = applied(call(f"keras.layers.ZeroPadding{n}D", site.ints("padding")), X[0])
        stride = [] if site.given.get("stride") is None else [f"strides={site.ints('stride')}"]
        pool = call(f"keras.layers.{kind}Pooling{n}D", site.ints("kernel"), *stride)
        return _op(site, LAST, applied(pool, x))
    return rule


def _global_pool(site: OpSite) -> steps.Op:
    n = site.ins[0].rank - 2
    return _op(site, LAST, applied(call(f"keras.layers.GlobalAveragePooling{n}D"), X[0]))


def _positional_encoding(site: OpSite) -> steps.Op:
    layer = call("PositionalEncoding", *site.keyword("max_len", 5000))
    return _op(site, FIRST, applied(layer, X[0]))


def _dims(site: OpSite, name: str) -> tuple[str, ...]:
    given = site.given.get(name)
    values = given.args if isinstance(given, Op) and given.op in ("list", "tuple") else \
        site.args[name]
    return tuple(site.text(d) for d in values)


def _reshape_layer(site: OpSite) -> steps.Op:
    dims = _dims(site, "dims")
    x = site.ins[0]
    return _op(site, "reshape", data=(site.dim(x.shape[0]), *dims), code="batch")


def _reshape(site: OpSite) -> steps.Op:
    x = site.ins[0]
    dims = _dims(site, "shape")
    kept = x.rank > 0 and len(dims) > 0 and dims[0] == site.dim(x.shape[0])
    return _op(site, "reshape", code="batch" if kept else "", data=dims)


def _expand(site: OpSite) -> steps.Op:
    x = site.ins[0]
    dims = _dims(site, "shape")
    have = tuple(site.dim(d) for d in x.shape)
    return _op(site, "expand", data=(dims, have))


def _transpose(site: OpSite) -> steps.Op:
    perm = list(range(site.ins[0].rank))
    a, b = site.args["dim0"] % len(perm), site.args["dim1"] % len(perm)
    perm[a], perm[b] = perm[b], perm[a]
    return _op(site, "permute", data=tuple(perm))


def _permute(site: OpSite) -> steps.Op:
    rank = site.ins[0].rank
    return _op(site, "permute", data=tuple(d % rank for d in site.args["dims"]))


def _concat(site: OpSite) -> steps.Op:
    rank = site.node.type.rank
    return _op(site, "axis", call("keras.ops.concatenate", Seq(X[:len(site.xs)]),
                                  f"axis={AXIS}"), (site.args["dim"] % rank,))


def _reduce(func: str) -> Callable[[OpSite], steps.Op]:
    def rule(site: OpSite) -> steps.Op:
        rank = site.ins[0].rank
        dims = site.args["dim"]
        # dim=[] reduces every dimension, as in PyTorch
        axes = None if not dims else tuple(sorted({d % rank for d in dims}))
        x: Expr = X[0]
        if site.node.type.dtype != site.ins[0].dtype:  # torch.sum of int32 or bool: int64
            x = call("keras.ops.cast", x, f'"{DTYPES[site.node.type.dtype]}"')
        return _op(site, "reduce", call(func, x), (axes, bool(site.args["keepdim"])))
    return rule


def _getitem(site: OpSite) -> steps.Op:
    return _op(site, "getitem", data=tuple(tuple(i) if isinstance(i, list) else i
                                           for i in site.args["index"]))


_OPERATOR = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}


def _cast(site: OpSite, k: int) -> Expr:
    """Input k in the result's dtype, as PyTorch's type promotion gives it."""
    want = site.node.type.dtype
    if site.ins[k].dtype == want or want == "bool":
        return X[k]
    return call("keras.ops.cast", X[k], f'"{DTYPES[want]}"')


def _binary(site: OpSite) -> steps.Op:
    op = _OPERATOR[site.op.name]
    kind = FIRST if op == "@" else "any"
    if len(site.xs) == 2:
        return _op(site, kind, binop(op, _cast(site, 0), _cast(site, 1)))
    scalar = site.arg("scalar")
    code = binop(op, scalar, _cast(site, 0)) if site.args["scalar_first"] else \
        binop(op, _cast(site, 0), scalar)
    return _op(site, kind, code)


Rule = Callable[[OpSite], steps.Op]

FORWARD: dict[str, Rule] = {
    "Linear": _apply,
    "Conv1d": _apply,
    "Conv2d": _apply,
    "ConvTranspose2d": _apply,
    "BatchNorm1d": _apply,
    "BatchNorm2d": _apply,
    "LayerNorm": _apply,
    "Embedding": _apply,
    "RNN": _apply,
    "LSTM": _apply,
    "GRU": _apply,
    "MultiHeadAttention": _mha_apply,
    "AdditiveAttention": _apply,
    "PositionalEmbedding": _apply,
    "PositionalEncoding": _positional_encoding,
    "MaxPool1d": _pool("Max"),
    "MaxPool2d": _pool("Max"),
    "AvgPool1d": _pool("Average"),
    "AvgPool2d": _pool("Average"),
    "AdaptiveAvgPool2d": lambda s: _op(s, LAST, applied(
        call("keras.layers.AdaptiveAveragePooling2D", s.ints("size")), X[0])),
    "GlobalAvgPool": _global_pool,
    "ReLU": _activation("keras.ops.relu"),
    "relu": _activation("keras.ops.relu"),
    "LeakyReLU": lambda s: _op(s, "any", call("keras.ops.leaky_relu", X[0],
                                             f"negative_slope={s.arg('slope')}")),
    "GELU": _gelu,
    "gelu": _gelu,
    "Tanh": _activation("keras.ops.tanh"),
    "tanh": _activation("keras.ops.tanh"),
    "Sigmoid": _activation("keras.ops.sigmoid"),
    "sigmoid": _activation("keras.ops.sigmoid"),
    "SiLU": _activation("keras.ops.silu"),
    "silu": _activation("keras.ops.silu"),
    "Softmax": _softmax,
    "softmax": _softmax,
    "Dropout": lambda s: _op(s, "any", applied(call("keras.layers.Dropout", s.arg("p")), X[0])),
    "Flatten": lambda s: _op(s, FIRST, applied(call("keras.layers.Flatten"), X[0])),
    "Reshape": _reshape_layer,
    "reshape": _reshape,
    "transpose": _transpose,
    "permute": _permute,
    "expand": _expand,
    "concat": _concat,
    "mean": _reduce("keras.ops.mean"),
    "sum": _reduce("keras.ops.sum"),
    "getitem": _getitem,
    "add": _binary,
    "sub": _binary,
    "mul": _binary,
    "div": _binary,
    "matmul": _binary,
    "neg": lambda s: _op(s, "any", unary("-", X[0])),
}

# LANGUAGE.md section 10's spatial, recurrent and attention ops.
from . import target_spatial  # noqa: E402 (its rules use this module's helpers)

CONSTRUCT.update(target_spatial.CONSTRUCT)
FORWARD.update(target_spatial.FORWARD)

# LANGUAGE.md section 10's elementwise, reduction, shape, norm and padding ops.
from . import target_elementwise  # noqa: E402 (its rules use this module's helpers)

CONSTRUCT.update(target_elementwise.CONSTRUCT)
FORWARD.update(target_elementwise.FORWARD)

# A plugin op's rules (archdsl.ops.plugin.lower(op, "tensorflow", forward=rule)) join them.
PLUGIN_TABLES: dict[str, dict[str, Any]] = {"construct": CONSTRUCT, "forward": FORWARD}
plugin.install("tensorflow", PLUGIN_TABLES)
