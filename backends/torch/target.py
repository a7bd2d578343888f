"""How each op of the language becomes PyTorch: the lowering tables of the torch target.

- `CONSTRUCT[op](site)` makes a layer's module in `__init__` (`nn.Conv2d(C, channels, 3)`):
  arguments as the spec wrote them, inferred sizes as the expressions elaboration traced.
- `FORWARD[op](site)` computes one node in `forward`.
- `AS_MODULE[op](site)` is a layer `forward` computes with a function, as a module: a stage
  of an `nn.Sequential`.

An op missing from `FORWARD` is refused with its location (E0901); a rule that meets
arguments PyTorch cannot express exactly raises `Refused` with the reason. Classes a module
needs beyond torch.nn come from `layers.py`, copied into the generated file. A plugin adds
rows through `PLUGIN_TABLES` (`archdsl.ops.plugin.lower`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archdsl.expr import Lit, Op, expr_of
from archdsl.ops import plugin

from ..core.helpers import definitions
from ..core.lowering import Lowered, OpSite, Refused, plain
from ..core.pycode import Call, Expr, Seq, binop, call, flat, level_of, unary


def _kw(site: OpSite, name: str, default: Any, keyword: str | None = None) -> list[str]:
    """`keyword=value` when the spec gives the argument a value other than its default."""
    given = site.given.get(name)
    if given is None or (isinstance(given, Lit) and given.value == default and
                         type(given.value) is type(default)):
        return []
    return [f"{keyword or name}={site.text(given)}"]


def _same_stride(site: OpSite) -> bool:
    """Whether `padding="same"` is PyTorch's own (stride fixed at 1)."""
    stride = site.given.get("stride", Lit(1))
    return isinstance(stride, Lit) and stride.value in (1, (1, 1), [1, 1], (1,), [1])


def _padding(site: OpSite) -> list[str]:
    given = site.given.get("padding")
    if isinstance(given, Lit) and isinstance(given.value, str):
        if given.value == "valid":
            return []
        return ['padding="same"'] if _same_stride(site) else []
    return _kw(site, "padding", 0)


def _recv(x: Expr) -> str:
    """An expression a method is called on: `x.flatten(1)`, `(a + b).mean(1)`."""
    text = flat(x)
    return text if level_of(x) >= 10 else f"({text})"


def _inplace(site: OpSite) -> list[str]:
    return ["inplace=True"] if site.reusable and site.op.inplace(site.args) else []


# ---- constructors ---------------------------------------------------------------------------
def _new(func: str, *positional: str, **defaults: Any) -> Callable[[OpSite], Expr]:
    """`func(args...)`: the positional arguments, then keywords that differ from default."""
    def rule(site: OpSite) -> Expr:
        kws = [kw for name, default in defaults.items() for kw in _kw(site, name, default)]
        return call(func, *(site.arg(k) for k in positional), *kws)
    return rule


def _conv(site: OpSite) -> Expr:
    transposed = site.op.name.startswith("ConvTranspose")
    pad = _kw(site, "padding", 0) if transposed else _padding(site)
    # Without padding here (none, or an uneven "same" that `forward` pads) the mode is moot.
    mode = _kw(site, "padding_mode", "zeros") if pad and not transposed else []
    return call(
        f"nn.{site.op.name}", site.arg("in"), site.arg("out"), site.ints("kernel"),
        *_kw(site, "stride", 1), *pad,
        *(_kw(site, "output_padding", 0) if transposed else []),
        *([] if transposed else _kw(site, "dilation", 1)),
        *_kw(site, "groups", 1), *_kw(site, "bias", True), *mode,
    )


def _recurrent(site: OpSite) -> Expr:
    # PyTorch applies dropout between stacked layers only, so with one layer it means nothing
    # (and would warn): leave it out where the layer count is a literal 1.
    layers = site.given.get("layers", Lit(1))
    dropout = [] if isinstance(layers, Lit) and layers.value == 1 else _dropout_kw(site)
    return call(f"nn.{site.op.name}", site.arg("input_size"), site.arg("hidden"),
                *_kw(site, "layers", 1, "num_layers"), "batch_first=True", *dropout,
                *_kw(site, "bidirectional", False))


def _dropout_kw(site: OpSite) -> list[str]:
    """`dropout=...` unless the elaborated value is 0 (written so, or turned off since, as
    `archdsl verify` does)."""
    return _kw(site, "dropout", 0.0) if site.args["dropout"] else []


def _attention(site: OpSite) -> Expr:
    e = expr_of(site.args["embed_dim"])
    extra = [f"{k}={site.arg(k)}" for k in ("kdim", "vdim") if expr_of(site.args[k]) != e]
    return call("MultiHeadAttention", site.arg("embed_dim"), site.arg("heads"), *extra,
                *_kw(site, "bias", True), *_kw(site, "causal", False), *_dropout_kw(site))


def _llama_attention(site: OpSite) -> Expr:
    return call("Attention", site.arg("dim"), site.arg("heads"),
                *_kw(site, "kv_heads", None), *_kw(site, "bias", False),
                *_kw(site, "causal", False), *_kw(site, "rotary", False),
                *_kw(site, "rope_base", 10000.0), *_dropout_kw(site))


# `Parameter(shape, init)`: how each init makes its tensor, from the sizes as a tuple.
_INIT = {
    "normal": "torch.randn({})",
    "zeros": "torch.zeros({})",
    "ones": "torch.ones({})",
    "uniform": "torch.rand({})",
    "xavier_uniform": "nn.init.xavier_uniform_(torch.empty({}))",
    "trunc_normal": "nn.init.trunc_normal_(torch.empty({}), std=0.02, a=-0.04, b=0.04)",
    "kaiming_uniform": "nn.init.kaiming_uniform_(torch.empty({}))",
    "kaiming_normal": "nn.init.kaiming_normal_(torch.empty({}))",
    "constant": "torch.full({}, {value})",
}


def _parameter(site: OpSite) -> Expr:
    shape = site.given.get("shape", expr_of(list(site.args["shape"])))
    dims = shape.args if isinstance(shape, Op) and shape.op in ("list", "tuple") else (shape,)
    sizes = [site.text(d) for d in dims]
    init = site.args["init"]
    if init == "constant":  # torch.full takes the sizes as one tuple
        tuple_ = f"({sizes[0]},)" if len(sizes) == 1 else f"({', '.join(sizes)})"
        return call("nn.Parameter", _INIT[init].format(tuple_, value=site.arg("value")))
    return call("nn.Parameter", _INIT[init].format(", ".join(sizes) or "()"))


def _embedding(site: OpSite) -> Expr:
    return call("nn.Embedding", site.arg("num"), site.arg("dim"),
                *_kw(site, "padding_idx", None))


def _layer_norm(site: OpSite) -> Expr:
    return call("nn.LayerNorm", site.arg("dim"), *_kw(site, "eps", 1e-5),
                *_kw(site, "elementwise_affine", True), *_kw(site, "bias", True))


def _rms_norm(site: OpSite) -> Expr:
    # Always written: archdsl's default eps (1e-6) is not PyTorch's (machine epsilon).
    return call("nn.RMSNorm", site.arg("dim"), f"eps={site.arg('eps')}",
                *_kw(site, "elementwise_affine", True))


def _group_norm(site: OpSite) -> Expr:
    return call("nn.GroupNorm", site.arg("groups"), site.arg("num_channels"),
                *_kw(site, "eps", 1e-5), *_kw(site, "affine", True))


def _instance_norm(site: OpSite) -> Expr:
    return call(f"nn.{site.op.name}", site.arg("num_features"), *_kw(site, "eps", 1e-5),
                *_kw(site, "momentum", 0.1), *_kw(site, "affine", False),
                *_kw(site, "track_running_stats", False))


def _batch_norm(site: OpSite) -> Expr:
    return call(f"nn.{site.op.name}", site.arg("num_features"), *_kw(site, "eps", 1e-5),
                *_kw(site, "momentum", 0.1), *_kw(site, "affine", True))


def _cell(site: OpSite) -> Expr:
    return call(f"nn.{site.op.name}", site.arg("input_size"), site.arg("hidden"),
                *_kw(site, "bias", True))


CONSTRUCT: dict[str, Callable[[OpSite], Expr]] = {
    "Linear": _new("nn.Linear", "in", "out", bias=True),
    "Conv1d": _conv,
    "Conv2d": _conv,
    "Conv3d": _conv,
    "ConvTranspose1d": _conv,
    "ConvTranspose2d": _conv,
    "BatchNorm1d": _batch_norm,
    "BatchNorm2d": _batch_norm,
    "BatchNorm3d": _batch_norm,
    "LayerNorm": _layer_norm,
    "RMSNorm": _rms_norm,
    "GroupNorm": _group_norm,
    "InstanceNorm1d": _instance_norm,
    "InstanceNorm2d": _instance_norm,
    "Embedding": _embedding,
    "RNN": _recurrent,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "RNNCell": _cell,
    "GRUCell": _cell,
    "LSTMCell": _cell,
    "MultiHeadAttention": _attention,
    "Attention": _llama_attention,
    "AdditiveAttention": _new("AdditiveAttention", "query_dim", "value_dim", "units"),
    "PositionalEncoding": _new("PositionalEncoding", "dim", max_len=5000),
    # nn.Embedding is exactly a learned [max_len, D] table initialised N(0, 1).
    "PositionalEmbedding": _new("nn.Embedding", "max_len", "dim"),
    "Parameter": _parameter,
    "PReLU": _new("nn.PReLU", num_parameters=1, init=0.25),
    "DropPath": _new("DropPath", "p"),
}


def _pool_module(site: OpSite) -> Expr:
    stride = [] if site.given.get("stride") is None else [f"stride={site.arg('stride')}"]
    return call(f"nn.{site.op.name}", site.ints("kernel"), *stride, *_kw(site, "padding", 0),
                *_kw(site, "ceil_mode", False), *_kw(site, "count_include_pad", True))


def _upsample_module(site: OpSite) -> Expr:
    return call("nn.Upsample", *_resample_args(site))


# nn's padding modules by mode, for the dimensions they pad (F.pad's own limits).
_PAD_MODULES = {"constant": "ConstantPad", "reflect": "ReflectionPad",
                "replicate": "ReplicationPad", "circular": "CircularPad"}


def _pad_module(site: OpSite) -> Expr | None:
    k = len(site.args["padding"]) // 2
    mode = site.args["mode"]
    if not 1 <= k <= 3 or (mode != "constant" and k != site.ins[0].rank - 2):
        return None
    name = f"nn.{_PAD_MODULES[mode]}{k}d"
    value = [site.arg("value")] if mode == "constant" else []
    return call(name, site.arg("padding"), *value)


def _activation_module(name: str, *args: str) -> Callable[[OpSite], Expr]:
    def rule(site: OpSite) -> Expr:
        return call(f"nn.{name}", *(kw for a in args for kw in _kw(site, a, _DEFAULT[a])))
    return rule


_DEFAULT: dict[str, Any] = {"alpha": 1.0, "beta": 1.0, "threshold": 20.0}

# Layers `forward` computes with a function, as modules: the stages of an `nn.Sequential`.
AS_MODULE: dict[str, Callable[[OpSite], Expr | None]] = {
    "ReLU": lambda s: "nn.ReLU()",
    "LeakyReLU": lambda s: call("nn.LeakyReLU", s.arg("slope")),
    "GELU": lambda s: call("nn.GELU", *_kw(s, "approximate", "none")),
    "Tanh": lambda s: "nn.Tanh()",
    "Sigmoid": lambda s: "nn.Sigmoid()",
    "SiLU": lambda s: "nn.SiLU()",
    "ReLU6": lambda s: "nn.ReLU6()",
    "Hardswish": lambda s: "nn.Hardswish()",
    "Hardsigmoid": lambda s: "nn.Hardsigmoid()",
    "Mish": lambda s: "nn.Mish()",
    "ELU": _activation_module("ELU", "alpha"),
    "Softplus": _activation_module("Softplus", "beta", "threshold"),
    "Identity": lambda s: "nn.Identity()",
    "Softmax": lambda s: call("nn.Softmax", f"dim={s.arg('dim')}"),
    "LogSoftmax": lambda s: call("nn.LogSoftmax", f"dim={s.arg('dim')}"),
    "Dropout": lambda s: call("nn.Dropout", s.arg("p")),
    "Dropout1d": lambda s: call("nn.Dropout1d", s.arg("p")),
    "Dropout2d": lambda s: call("nn.Dropout2d", s.arg("p")),
    "Flatten": lambda s: "nn.Flatten()",
    "MaxPool1d": _pool_module,
    "MaxPool2d": _pool_module,
    "MaxPool3d": _pool_module,
    "AvgPool1d": _pool_module,
    "AvgPool2d": _pool_module,
    "AvgPool3d": _pool_module,
    "AdaptiveAvgPool1d": lambda s: call("nn.AdaptiveAvgPool1d", s.ints("size")),
    "AdaptiveAvgPool2d": lambda s: call("nn.AdaptiveAvgPool2d", s.ints("size")),
    "AdaptiveMaxPool2d": lambda s: call("nn.AdaptiveMaxPool2d", s.ints("size")),
    "Upsample": _upsample_module,
    "PixelShuffle": lambda s: call("nn.PixelShuffle", s.arg("r")),
    "PixelUnshuffle": lambda s: call("nn.PixelUnshuffle", s.arg("r")),
    "Pad": _pad_module,
}


# ---- forward: layers with modules ----------------------------------------------------------
def _module(site: OpSite) -> Expr:
    assert site.module is not None
    return Call(site.module, tuple(site.xs))


def _conv_forward(site: OpSite) -> Expr:
    given = site.given.get("padding")
    if isinstance(given, Lit) and given.value == "same" and not _same_stride(site):
        # PyTorch's padding="same" takes no stride: pad as the spec means it (the odd cell
        # after), which depends on the input's size.
        pads = call("same_padding", f"{_recv(site.x)}.shape[2:]", site.ints("kernel"),
                    site.ints("stride"), site.ints("dilation"))
        mode = site.args["padding_mode"]  # the class is this instance's: written as a literal
        modes = [] if mode == "zeros" else [f'mode="{mode}"']
        return call(site.module or "", call("F.pad", site.x, pads, *modes))
    return _module(site)


def _state(site: OpSite) -> list[Expr]:
    """The input and the initial state as the module takes them: `x, (h0, c0)` for LSTM."""
    x, *state = site.xs
    if site.op.name.startswith("LSTM") and state:
        return [x, Seq(tuple(state), "(", ")")]
    return [x, *state]


def _recurrent_forward(site: OpSite) -> Lowered:
    lstm = site.op.name == "LSTM"
    run = Call(site.module or "", tuple(_state(site)))
    returns_state = site.args["return_state"]
    if site.args["return_sequences"]:
        if returns_state:
            return Lowered(run, target="{0}, ({1}, {2})" if lstm else "{0}, {1}")
        return Lowered(run, target="{}, _")
    # The last layer's final state of each direction: PyTorch's h_n, not output[:, -1].
    h_n = site.temp("h_n")
    c_n = site.temp("c_n") if lstm else ""
    state = f"({h_n}, {c_n if returns_state else '_'})" if lstm else h_n
    last = (call("torch.cat", Seq((f"{h_n}[-2]", f"{h_n}[-1]")), "dim=1")
            if site.args["bidirectional"] else f"{h_n}[-1]")
    before = (f"_, {state} = {flat(run)}",)
    if returns_state:
        parts = (last, h_n, c_n) if lstm else (last, h_n)
        return Lowered(Seq(parts, "", ""), target=", ".join(
            f"{{{k}}}" for k in range(len(parts))), before=before)
    return Lowered(last, before=before)


def _cell_forward(site: OpSite) -> Expr:
    return Call(site.module or "", tuple(_state(site)))


def _attention_forward(site: OpSite) -> Expr:
    """`self.attn(q, k, v, key_padding_mask=m)`: the mask is the last input when given."""
    xs = list(site.xs)
    mask = [f"key_padding_mask={flat(xs.pop())}"] if site.args.get("key_padding_mask") else []
    return Call(site.module or "", (*xs, *mask))


def _positional_embedding(site: OpSite) -> Expr:
    length = site.dim(site.ins[0].shape[1])
    bare = plain(length)
    cut = f"[:{length}]" if bare.isidentifier() or bare.isdigit() else f"[: {length}]"
    return binop("+", site.x, f"{site.module}.weight{cut}")


# ---- forward: functions ----------------------------------------------------------------------
def _activation(func: str, *args: str) -> Callable[[OpSite], Expr]:
    """`func(x, args that differ from their defaults, inplace=True when it may)`."""
    def rule(site: OpSite) -> Expr:
        kws = [kw for a in args for kw in _kw(site, a, _DEFAULT[a])]
        return call(func, site.x, *kws, *_inplace(site))
    return rule


def _leaky_relu(site: OpSite) -> Expr:
    return call("F.leaky_relu", site.x, site.arg("slope"), *_inplace(site))


def _gelu(site: OpSite) -> Expr:
    return call("F.gelu", site.x, *_kw(site, "approximate", "none"))


def _softmax(func: str) -> Callable[[OpSite], Expr]:
    def rule(site: OpSite) -> Expr:
        d = site.args["dim"]
        return call(func, site.x, f"dim={-1 if d == site.ins[0].rank - 1 else d}")
    return rule


def _dropout(func: str) -> Callable[[OpSite], Expr]:
    return lambda site: call(func, site.x, site.arg("p"), "self.training")


def _pool(func: str) -> Callable[[OpSite], Expr]:
    def rule(site: OpSite) -> Expr:
        kernel = site.ints("kernel")
        stride = [] if site.given.get("stride") is None else [f"stride={site.arg('stride')}"]
        return call(func, site.x, kernel, *stride, *_kw(site, "padding", 0),
                    *_kw(site, "ceil_mode", False), *_kw(site, "count_include_pad", True))
    return rule


def _dims(site: OpSite, dims: list[int]) -> str:
    return str(dims[0]) if len(dims) == 1 else site.text(tuple(dims))


def _global_pool(method: str) -> Callable[[OpSite], Expr]:
    def rule(site: OpSite) -> Expr:
        dims = list(range(2, site.ins[0].rank))
        return call(f"{_recv(site.x)}.{method}", f"dim={_dims(site, dims)}")
    return rule


def _resample_args(site: OpSite) -> list[str]:
    """nn.Upsample's and F.interpolate's arguments: `size` or `scale_factor`, the mode."""
    which = "size" if site.args["size"] is not None else "scale"
    value = site.arg(which)
    out = [f"size={value}" if which == "size" else f"scale_factor={value}"]
    out += _kw(site, "mode", "nearest")
    if site.args["align_corners"] is not None:
        out += _kw(site, "align_corners", False)
    return out


def _pad(site: OpSite) -> Lowered | Expr:
    """F.pad. Its border modes pad the last `rank - 2` dimensions of a rank 3-5 input: fewer
    trailing dimensions are padded by folding the leading ones into the batch, and a `bool`
    tensor goes through uint8, which F.pad reflects and replicates (it refuses bool)."""
    mode, k = site.args["mode"], len(site.args["padding"]) // 2
    x, rank = site.x, site.ins[0].rank
    if mode == "constant":
        value = _kw(site, "value", 0.0)
        return call("F.pad", x, site.arg("padding"), *value)
    if k > 3:
        raise Refused(f"F.pad pads at most 3 dimensions in mode \"{mode}\"; this pads {k}",
                      site.node.loc, "pad the dimensions in two steps")
    before: tuple[str, ...] = ()
    lead = rank - k
    if lead != 2 and not (isinstance(x, str) and x.isidentifier()):
        var = site.temp("h")
        before, x = (f"{var} = {flat(x)}",), var
    as_bool = site.ins[0].dtype == "bool" and mode in ("reflect", "replicate")
    src: Expr = call(f"{_recv(x)}.to", "torch.uint8") if as_bool else x
    if lead != 2:  # (leading..., *padded) -> (N, 1, *padded)
        src = call(f"{_recv(call(f'{_recv(src)}.flatten', '0', str(lead - 1)))}.unsqueeze", "1")
    out: Expr = call("F.pad", src, site.arg("padding"), f'mode="{mode}"')
    if lead != 2:
        out = call(f"{_recv(call(f'{_recv(out)}.squeeze', '1'))}.unflatten", "0",
                   f"{_recv(x)}.shape[:{lead}]")
    if as_bool:
        out = call(f"{_recv(out)}.bool")
    return Lowered(out, before=before) if before else out


def _reshape_layer(site: OpSite) -> Expr:
    dims = site.given["dims"].args if "dims" in site.given else tuple(site.args["dims"])
    return call(f"{_recv(site.x)}.reshape", site.dim(site.node.type.shape[0]),
                *(site.text(d) for d in dims))


def _shape_list(site: OpSite) -> tuple[Any, ...]:
    shape = site.given.get("shape")
    return shape.args if isinstance(shape, Op) and shape.op in ("list", "tuple") else \
        tuple(site.args["shape"])


def _reduce(method: str, **extra: str) -> Callable[[OpSite], Expr]:
    """`x.method(dim=..., keepdim=True)`; `extra` maps a bool argument to the keyword it
    adds when false (`var`'s population default: `correction=0`)."""
    def rule(site: OpSite) -> Expr:
        dims, keep = site.args["dim"], site.args["keepdim"]
        kws = [kw for arg, kw in extra.items() if not site.args[arg]]
        if dims is None:
            if not keep:
                return call(f"{_recv(site.x)}.{method}", *kws)
            dims = list(range(site.ins[0].rank))
        return call(f"{_recv(site.x)}.{method}", f"dim={_dims(site, dims)}",
                    *(["keepdim=True"] if keep else []), *kws)
    return rule


def _bound(v: int | None) -> str:
    return "" if v is None else str(v)


def _getitem(site: OpSite) -> str:
    parts = []
    for item in site.args["index"]:
        if isinstance(item, int):
            parts.append(str(item))
            continue
        start, stop, step = item
        text = f"{_bound(start)}:{_bound(stop)}"
        parts.append(text if step in (None, 1) else f"{text}:{step}")
    return f"{_recv(site.x)}[{', '.join(parts)}]"


_OPERATOR = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}
_COMPARISON = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _operands(site: OpSite) -> tuple[Expr, Expr]:
    if len(site.xs) == 2:
        return site.xs[0], site.xs[1]
    scalar = site.arg("scalar")
    return (scalar, site.x) if site.args["scalar_first"] else (site.x, scalar)


def _binary(site: OpSite) -> Expr:
    return binop(_OPERATOR[site.op.name], *_operands(site))


def _comparison(site: OpSite) -> str:
    """`a < b`: looser than arithmetic, so only another comparison needs brackets (Python
    would chain `a < b < c`)."""
    a, b = (flat(x) if level_of(x) > 0 else f"({flat(x)})" for x in _operands(site))
    return f"{a} {_COMPARISON[site.op.name]} {b}"


def _where(site: OpSite) -> Expr:
    """torch.where; two numbers are written as floats, the language's `f32` for them."""
    tensors = iter(site.xs[1:])
    numbers = [site.args[k] for k in ("a", "b")]
    both = all(n is not None for n in numbers)
    operands = [next(tensors) if n is None else
                site.text(float(n)) if both else site.arg(k)
                for k, n in zip(("a", "b"), numbers, strict=True)]
    return call("torch.where", site.x, *operands)


def _split(site: OpSite) -> Expr:
    return call(f"{_recv(site.x)}.split", site.arg("size"), f"dim={site.arg('dim')}")


def _chunk(site: OpSite) -> Expr:
    return call(f"{_recv(site.x)}.chunk", site.arg("n"), f"dim={site.arg('dim')}")


def _flatten(site: OpSite) -> Expr:
    end = [] if site.args["end"] == max(site.ins[0].rank, 1) - 1 else [site.arg("end")]
    return call(f"{_recv(site.x)}.flatten", site.arg("start"), *end)


def _clamp(site: OpSite) -> Expr:
    bounds = [f"{b}={site.arg(b)}" for b in ("min", "max") if site.args[b] is not None]
    return call(f"{_recv(site.x)}.clamp", *bounds)


def _method(name: str, *args: str) -> Callable[[OpSite], Expr]:
    """`x.name(args as written)`."""
    return lambda site: call(f"{_recv(site.x)}.{name}", *(site.arg(a) for a in args))


def _function(func: str) -> Callable[[OpSite], Expr]:
    """`func(every input)`."""
    return lambda site: call(func, *site.xs)


Rule = Callable[[OpSite], "Expr | Lowered"]

FORWARD: dict[str, Rule] = {
    # layers built in the constructor
    "Linear": _module,
    "Conv1d": _conv_forward,
    "Conv2d": _conv_forward,
    "Conv3d": _conv_forward,
    "ConvTranspose1d": _module,
    "ConvTranspose2d": _module,
    "BatchNorm1d": _module,
    "BatchNorm2d": _module,
    "BatchNorm3d": _module,
    "LayerNorm": _module,
    "RMSNorm": _module,
    "GroupNorm": _module,
    "InstanceNorm1d": _module,
    "InstanceNorm2d": _module,
    "Embedding": _module,
    "RNN": _recurrent_forward,
    "LSTM": _recurrent_forward,
    "GRU": _recurrent_forward,
    "RNNCell": _cell_forward,
    "GRUCell": _cell_forward,
    "LSTMCell": _cell_forward,
    "MultiHeadAttention": _attention_forward,
    "Attention": _attention_forward,
    "AdditiveAttention": _module,
    "PositionalEncoding": _module,
    "PositionalEmbedding": _positional_embedding,
    "PReLU": _module,
    "DropPath": _module,
    # pooling and resampling
    "MaxPool1d": _pool("F.max_pool1d"),
    "MaxPool2d": _pool("F.max_pool2d"),
    "MaxPool3d": _pool("F.max_pool3d"),
    "AvgPool1d": _pool("F.avg_pool1d"),
    "AvgPool2d": _pool("F.avg_pool2d"),
    "AvgPool3d": _pool("F.avg_pool3d"),
    "AdaptiveAvgPool1d": lambda s: call("F.adaptive_avg_pool1d", s.x, s.ints("size")),
    "AdaptiveAvgPool2d": lambda s: call("F.adaptive_avg_pool2d", s.x, s.ints("size")),
    "AdaptiveMaxPool2d": lambda s: call("F.adaptive_max_pool2d", s.x, s.ints("size")),
    "GlobalAvgPool": _global_pool("mean"),
    "GlobalMaxPool": _global_pool("amax"),
    "Upsample": lambda s: call("F.interpolate", s.x, *_resample_args(s)),
    "interpolate": lambda s: call("F.interpolate", s.x, *_resample_args(s)),
    "PixelShuffle": lambda s: call("F.pixel_shuffle", s.x, s.arg("r")),
    "PixelUnshuffle": lambda s: call("F.pixel_unshuffle", s.x, s.arg("r")),
    "Pad": _pad,
    "pad": _pad,
    # activations, as layers and as functions
    "ReLU": _activation("F.relu"),
    "relu": _activation("F.relu"),
    "LeakyReLU": _leaky_relu,
    "GELU": _gelu,
    "gelu": _gelu,
    "Tanh": _activation("torch.tanh"),
    "tanh": _activation("torch.tanh"),
    "Sigmoid": _activation("torch.sigmoid"),
    "sigmoid": _activation("torch.sigmoid"),
    "SiLU": _activation("F.silu"),
    "silu": _activation("F.silu"),
    "ReLU6": _activation("F.relu6"),
    "relu6": _activation("F.relu6"),
    "Hardswish": _activation("F.hardswish"),
    "hardswish": _activation("F.hardswish"),
    "Hardsigmoid": _activation("F.hardsigmoid"),
    "hardsigmoid": _activation("F.hardsigmoid"),
    "Mish": _activation("F.mish"),
    "mish": _activation("F.mish"),
    "ELU": _activation("F.elu", "alpha"),
    "elu": _activation("F.elu", "alpha"),
    "Softplus": _activation("F.softplus", "beta", "threshold"),
    "softplus": _activation("F.softplus", "beta", "threshold"),
    "Softmax": _softmax("F.softmax"),
    "softmax": _softmax("F.softmax"),
    "LogSoftmax": _softmax("F.log_softmax"),
    "log_softmax": _softmax("F.log_softmax"),
    "Dropout": _dropout("F.dropout"),
    "Dropout1d": _dropout("F.dropout1d"),
    "Dropout2d": _dropout("F.dropout2d"),
    # elementwise functions
    "exp": _function("torch.exp"),
    "log": _function("torch.log"),
    "sqrt": _function("torch.sqrt"),
    "rsqrt": _function("torch.rsqrt"),
    "abs": _function("torch.abs"),
    "clamp": _clamp,
    "maximum": _function("torch.maximum"),
    "minimum": _function("torch.minimum"),
    "where": _where,
    "masked_fill": lambda s: call(f"{_recv(s.x)}.masked_fill", s.xs[1], s.arg("value")),
    "zeros_like": _function("torch.zeros_like"),
    "ones_like": _function("torch.ones_like"),
    "randn_like": _function("torch.randn_like"),  # archdsl.noise: runtime.build's hooks
    # shapes and reductions
    "Flatten": lambda s: call(f"{_recv(s.x)}.flatten", "1"),
    "flatten": _flatten,
    "Reshape": _reshape_layer,
    "reshape": lambda s: call(f"{_recv(s.x)}.reshape", *(s.text(d) for d in _shape_list(s))),
    "expand": lambda s: call(f"{_recv(s.x)}.expand", *(s.text(d) for d in _shape_list(s))),
    "transpose": lambda s: call(f"{_recv(s.x)}.transpose", str(s.args["dim0"]),
                                str(s.args["dim1"])),
    "permute": lambda s: call(f"{_recv(s.x)}.permute", *(str(d) for d in s.args["dims"])),
    "unsqueeze": _method("unsqueeze", "dim"),
    "squeeze": _method("squeeze", "dim"),
    "concat": lambda s: call("torch.cat", Seq(tuple(s.xs)), f"dim={s.args['dim']}"),
    "stack": lambda s: call("torch.stack", Seq(tuple(s.xs)), f"dim={s.arg('dim')}"),
    "split": _split,
    "chunk": _chunk,
    "mean": _reduce("mean"),
    "sum": _reduce("sum"),
    "amax": _reduce("amax"),
    "amin": _reduce("amin"),
    "var": _reduce("var", unbiased="correction=0"),
    "getitem": _getitem,
    # operators
    "add": _binary,
    "sub": _binary,
    "mul": _binary,
    "div": _binary,
    "matmul": _binary,
    "eq": _comparison,
    "ne": _comparison,
    "lt": _comparison,
    "le": _comparison,
    "gt": _comparison,
    "ge": _comparison,
    "pow": lambda s: binop("**", s.x, s.arg("exponent")),
    "neg": lambda s: unary("-", s.x),
}

# The tables a plugin may add rows to (archdsl.ops.plugin.lower(op, "torch", ...)); a
# plugin's `helpers` are Python source (classes, functions) copied into the modules using them.
HELPERS: dict[str, str] = {}
PLUGIN_TABLES: dict[str, dict[str, Any]] = {
    "construct": CONSTRUCT, "forward": FORWARD, "as_module": AS_MODULE, "helpers": HELPERS,
}
plugin.install("torch", PLUGIN_TABLES)


def plugin_helpers() -> dict[str, str]:
    """The classes and functions plugins' helpers define, by name."""
    return {name: code for text in HELPERS.values() for name, code in definitions(text).items()}
