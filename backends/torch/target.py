"""How each op of the language becomes PyTorch: the lowering tables of the torch target.

- `CONSTRUCT[op](site)` makes a layer's module in `__init__` (`nn.Conv2d(C, channels, 3)`):
  arguments as the spec wrote them, inferred sizes as the expressions elaboration traced.
- `FORWARD[op](site)` computes one node in `forward`.

An op missing from `FORWARD` is refused with its location (E0901). Classes a module needs
beyond torch.nn come from `layers.py`, copied into the generated file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archdsl.expr import Lit, Op, expr_of

from ..core.emitter import TOKEN, Lowered, OpSite
from ..core.pycode import Call, Expr, Seq, binop, call, flat, level_of, unary


def _kw(site: OpSite, name: str, default: Any, keyword: str | None = None) -> list[str]:
    """`keyword=value` when the spec gives the argument a value other than its default."""
    given = site.given.get(name)
    if given is None or (isinstance(given, Lit) and given.value == default and
                         type(given.value) is type(default)):
        return []
    return [f"{keyword or name}={site.text(given)}"]


def _ints(site: OpSite, name: str) -> str:
    """A size argument as written (`3`, `(3, 5)`), or its resolved value compacted."""
    if name in site.given:
        return site.text(site.given[name])
    v = site.args[name]
    if isinstance(v, list) and len(set(map(int, v))) == 1:
        return site.text(v[0])
    return site.text(tuple(v) if isinstance(v, list) else v)


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
    return call(
        f"nn.{site.op.name}", site.arg("in"), site.arg("out"), _ints(site, "kernel"),
        *_kw(site, "stride", 1), *pad,
        *(_kw(site, "output_padding", 0) if transposed else []),
        *([] if transposed else _kw(site, "dilation", 1)),
        *_kw(site, "groups", 1), *_kw(site, "bias", True),
    )


def _recurrent(site: OpSite) -> Expr:
    # PyTorch applies dropout between stacked layers only, so with one layer it means nothing
    # (and would warn): leave it out where the layer count is a literal 1.
    layers = site.given.get("layers", Lit(1))
    dropout = [] if isinstance(layers, Lit) and layers.value == 1 else _kw(site, "dropout", 0.0)
    return call(f"nn.{site.op.name}", site.arg("input_size"), site.arg("hidden"),
                *_kw(site, "layers", 1, "num_layers"), "batch_first=True", *dropout,
                *_kw(site, "bidirectional", False))


def _attention(site: OpSite) -> Expr:
    e = expr_of(site.args["embed_dim"])
    extra = [f"{k}={site.arg(k)}" for k in ("kdim", "vdim") if expr_of(site.args[k]) != e]
    return call("MultiHeadAttention", site.arg("embed_dim"), site.arg("heads"), *extra,
                *_kw(site, "bias", True), *_kw(site, "causal", False),
                *_kw(site, "dropout", 0.0))


_INIT = {
    "normal": "torch.randn({})",
    "zeros": "torch.zeros({})",
    "ones": "torch.ones({})",
    "uniform": "torch.rand({})",
    "xavier_uniform": "nn.init.xavier_uniform_(torch.empty({}))",
    "trunc_normal": "nn.init.trunc_normal_(torch.empty({}), std=0.02, a=-0.04, b=0.04)",
}


def _parameter(site: OpSite) -> Expr:
    shape = site.given.get("shape", expr_of(list(site.args["shape"])))
    dims = shape.args if isinstance(shape, Op) and shape.op in ("list", "tuple") else (shape,)
    sizes = ", ".join(site.text(d) for d in dims) or "()"
    return call("nn.Parameter", _INIT[site.args["init"]].format(sizes))


CONSTRUCT: dict[str, Callable[[OpSite], Expr]] = {
    "Linear": _new("nn.Linear", "in", "out", bias=True),
    "Conv1d": _conv,
    "Conv2d": _conv,
    "ConvTranspose2d": _conv,
    "BatchNorm1d": _new("nn.BatchNorm1d", "num_features", eps=1e-5, momentum=0.1, affine=True),
    "BatchNorm2d": _new("nn.BatchNorm2d", "num_features", eps=1e-5, momentum=0.1, affine=True),
    "LayerNorm": _new("nn.LayerNorm", "dim", eps=1e-5),
    "Embedding": _new("nn.Embedding", "num", "dim"),
    "RNN": _recurrent,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "MultiHeadAttention": _attention,
    "AdditiveAttention": _new("AdditiveAttention", "query_dim", "value_dim", "units"),
    "PositionalEncoding": _new("PositionalEncoding", "dim", max_len=5000),
    # nn.Embedding is exactly a learned [max_len, D] table initialised N(0, 1).
    "PositionalEmbedding": _new("nn.Embedding", "max_len", "dim"),
    "Parameter": _parameter,
}


def _pool_module(site: OpSite) -> Expr:
    stride = [] if site.given.get("stride") is None else [f"stride={site.arg('stride')}"]
    return call(f"nn.{site.op.name}", _ints(site, "kernel"), *stride, *_kw(site, "padding", 0))


# Layers `forward` computes with a function, as modules: the stages of an `nn.Sequential`.
AS_MODULE: dict[str, Callable[[OpSite], Expr]] = {
    "ReLU": lambda s: "nn.ReLU()",
    "LeakyReLU": lambda s: call("nn.LeakyReLU", s.arg("slope")),
    "GELU": lambda s: call("nn.GELU", *_kw(s, "approximate", "none")),
    "Tanh": lambda s: "nn.Tanh()",
    "Sigmoid": lambda s: "nn.Sigmoid()",
    "SiLU": lambda s: "nn.SiLU()",
    "Identity": lambda s: "nn.Identity()",
    "Softmax": lambda s: call("nn.Softmax", f"dim={s.arg('dim')}"),
    "Dropout": lambda s: call("nn.Dropout", s.arg("p")),
    "Flatten": lambda s: "nn.Flatten()",
    "MaxPool1d": _pool_module,
    "MaxPool2d": _pool_module,
    "AvgPool1d": _pool_module,
    "AvgPool2d": _pool_module,
    "AdaptiveAvgPool2d": lambda s: call("nn.AdaptiveAvgPool2d", _ints(s, "size")),
}


# ---- forward -------------------------------------------------------------------------------
def _module(site: OpSite) -> Expr:
    assert site.module is not None
    return Call(site.module, tuple(site.xs))


def _conv_forward(site: OpSite) -> Expr:
    given = site.given.get("padding")
    if isinstance(given, Lit) and given.value == "same" and not _same_stride(site):
        # PyTorch's padding="same" takes no stride: pad as the spec means it (the odd cell
        # after), which depends on the input's size.
        pads = call("same_padding", f"{_recv(site.x)}.shape[2:]", _ints(site, "kernel"),
                    _ints(site, "stride"), _ints(site, "dilation"))
        return call(site.module or "", call("F.pad", site.x, pads))
    return _module(site)


def _recurrent_forward(site: OpSite) -> Lowered:
    if site.args["return_sequences"]:
        return Lowered(_module(site), target="{}, _")
    # The last layer's final state of each direction: PyTorch's h_n, not output[:, -1].
    h_n = site.temp("h_n")
    state = f"({h_n}, _)" if site.op.name == "LSTM" else h_n
    code = (call("torch.cat", Seq((f"{h_n}[-2]", f"{h_n}[-1]")), "dim=1")
            if site.args["bidirectional"] else f"{h_n}[-1]")
    return Lowered(code, before=(f"_, {state} = {site.module}({flat(site.x)})",))


def _activation(func: str, *extra: str) -> Callable[[OpSite], Expr]:
    def rule(site: OpSite) -> Expr:
        inplace = ["inplace=True"] if site.reusable and site.op.inplace(site.args) else []
        return call(func, site.x, *extra, *inplace)
    return rule


def _leaky_relu(site: OpSite) -> Expr:
    inplace = ["inplace=True"] if site.reusable and site.op.inplace(site.args) else []
    return call("F.leaky_relu", site.x, site.arg("slope"), *inplace)


def _gelu(site: OpSite) -> Expr:
    return call("F.gelu", site.x, *_kw(site, "approximate", "none"))


def _softmax(site: OpSite) -> Expr:
    d = site.args["dim"]
    return call("F.softmax", site.x, f"dim={-1 if d == site.ins[0].rank - 1 else d}")


def _pool(func: str) -> Callable[[OpSite], Expr]:
    def rule(site: OpSite) -> Expr:
        kernel = _ints(site, "kernel")
        stride = [] if site.given.get("stride") is None else [f"stride={site.arg('stride')}"]
        return call(func, site.x, kernel, *stride, *_kw(site, "padding", 0))
    return rule


def _dims(site: OpSite, dims: list[int]) -> str:
    return str(dims[0]) if len(dims) == 1 else site.text(tuple(dims))


def _reshape_layer(site: OpSite) -> Expr:
    dims = site.given["dims"].args if "dims" in site.given else tuple(site.args["dims"])
    return call(f"{_recv(site.x)}.reshape", site.dim(site.node.type.shape[0]),
                *(site.text(d) for d in dims))


def _reshape(site: OpSite) -> Expr:
    shape = site.given.get("shape")
    dims = shape.args if isinstance(shape, Op) and shape.op in ("list", "tuple") else \
        site.args["shape"]
    return call(f"{_recv(site.x)}.reshape", *(site.text(d) for d in dims))


def _expand(site: OpSite) -> Expr:
    shape = site.given.get("shape")
    dims = shape.args if isinstance(shape, Op) and shape.op in ("list", "tuple") else \
        site.args["shape"]
    return call(f"{_recv(site.x)}.expand", *(site.text(d) for d in dims))


def _reduce(method: str) -> Callable[[OpSite], Expr]:
    def rule(site: OpSite) -> Expr:
        dims, keep = site.args["dim"], site.args["keepdim"]
        if dims is None:
            if not keep:
                return call(f"{_recv(site.x)}.{method}")
            dims = list(range(site.ins[0].rank))
        return call(f"{_recv(site.x)}.{method}", f"dim={_dims(site, dims)}",
                    *(["keepdim=True"] if keep else []))
    return rule


def _global_pool(site: OpSite) -> Expr:
    return call(f"{_recv(site.x)}.mean", f"dim={_dims(site, list(range(2, site.ins[0].rank)))}")


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


def _positional_embedding(site: OpSite) -> Expr:
    length = site.dim(site.ins[0].shape[1])
    plain = TOKEN.sub(lambda m: m.group(2), length)
    cut = f"[:{length}]" if plain.isidentifier() or plain.isdigit() else f"[: {length}]"
    return binop("+", site.x, f"{site.module}.weight{cut}")


_OPERATOR = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}


def _binary(site: OpSite) -> Expr:
    op = _OPERATOR[site.op.name]
    if len(site.xs) == 2:
        return binop(op, site.xs[0], site.xs[1])
    scalar = site.arg("scalar")
    return binop(op, scalar, site.x) if site.args["scalar_first"] else \
        binop(op, site.x, scalar)


def _recv(x: Expr) -> str:
    """An expression a method is called on: `x.flatten(1)`, `(a + b).mean(1)`."""
    text = flat(x)
    return text if level_of(x) >= 10 else f"({text})"


def _dropout(site: OpSite) -> Expr:
    return call("F.dropout", site.x, site.arg("p"), "self.training")


Rule = Callable[[OpSite], "Expr | Lowered"]

FORWARD: dict[str, Rule] = {
    "Linear": _module,
    "Conv1d": _conv_forward,
    "Conv2d": _conv_forward,
    "ConvTranspose2d": _module,
    "BatchNorm1d": _module,
    "BatchNorm2d": _module,
    "LayerNorm": _module,
    "Embedding": _module,
    "RNN": _recurrent_forward,
    "LSTM": _recurrent_forward,
    "GRU": _recurrent_forward,
    "MultiHeadAttention": _module,
    "AdditiveAttention": _module,
    "PositionalEncoding": _module,
    "PositionalEmbedding": _positional_embedding,
    "MaxPool1d": _pool("F.max_pool1d"),
    "MaxPool2d": _pool("F.max_pool2d"),
    "AvgPool1d": _pool("F.avg_pool1d"),
    "AvgPool2d": _pool("F.avg_pool2d"),
    "AdaptiveAvgPool2d": lambda s: call("F.adaptive_avg_pool2d", s.x, _ints(s, "size")),
    "GlobalAvgPool": _global_pool,
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
    "Softmax": _softmax,
    "softmax": _softmax,
    "Dropout": _dropout,
    "Flatten": lambda s: call(f"{_recv(s.x)}.flatten", "1"),
    "Reshape": _reshape_layer,
    "reshape": _reshape,
    "transpose": lambda s: call(f"{_recv(s.x)}.transpose", str(s.args["dim0"]),
                                str(s.args["dim1"])),
    "permute": lambda s: call(f"{_recv(s.x)}.permute", *(str(d) for d in s.args["dims"])),
    "expand": _expand,
    "concat": lambda s: call("torch.cat", Seq(tuple(s.xs)), f"dim={s.args['dim']}"),
    "mean": _reduce("mean"),
    "sum": _reduce("sum"),
    "getitem": _getitem,
    "add": _binary,
    "sub": _binary,
    "mul": _binary,
    "div": _binary,
    "matmul": _binary,
    "neg": lambda s: unary("-", s.x),
}
