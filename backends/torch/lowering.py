"""How each op of the language becomes PyTorch: two rule tables keyed by op.

- `CONSTRUCT[op](layer)` is the expression that builds the layer's module in `__init__`.
  Ops without an entry hold no state and need no module.
- `FORWARD[op](site)` is the expression (or statements) that computes a node in `forward`.

An op missing from `FORWARD` is a gap: the generator refuses it with its location (E0901)
instead of guessing. `HELPERS` names the classes of layers.py a constructor uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archdsl.graph import Layer, Node, TensorType
from archdsl.symbolic import Dim

from .code import Call, Expr, Seq, call


class Refusal(Exception):
    """A construct PyTorch cannot express exactly; the generator locates and reports it."""


@dataclass
class Site:
    """What a forward rule sees: the node, its inputs as expressions and its module."""

    node: Node
    xs: list[str]
    ins: list[TensorType]
    module: str | None
    dim: Callable[[Dim], str]  # a run-time expression for a (possibly symbolic) dimension
    temp: Callable[[str], str]  # a fresh local name

    @property
    def args(self) -> dict[str, Any]:
        return self.node.args

    @property
    def x(self) -> str:
        return self.xs[0]


@dataclass
class Lowered:
    """`target.format(out) = code`, after the statements in `before` (already complete)."""

    code: Expr
    target: str = "{}"
    before: tuple[str, ...] = ()


def lit(v: Any) -> str:
    """A Python literal as the formatter writes it."""
    if isinstance(v, (list, tuple)):
        inner = ", ".join(lit(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, str):  # repr escapes line breaks; no `"` stays bare (docstrings hold these)
        text = repr(v)
        if text[0] == "'":
            text = '"' + text[1:-1].replace("\\'", "'").replace('"', '\\"') + '"'
        return text
    return repr(v)


def ints(v: list[int]) -> int | tuple[int, ...]:
    """3 for [3, 3], (3, 5) for [3, 5]: the way PyTorch's size arguments are usually written."""
    return v[0] if len(set(v)) == 1 else tuple(v)


def _kw(name: str, value: Any, default: Any) -> list[str]:
    return [] if value == default else [f"{name}={lit(value)}"]


# ---- constructors --------------------------------------------------------------------------
def _new(func: str, *positional: str, **defaults: Any) -> Callable[[Layer], Expr]:
    """`func(args...)` from the layer's arguments, keywords only where they differ from the
    default, as a person writes a module's constructor."""
    def rule(layer: Layer) -> Expr:
        a = layer.args
        keywords = [kw for name, default in defaults.items() for kw in _kw(name, a[name], default)]
        return call(func, *(str(a[k]) for k in positional), *keywords)
    return rule


def _conv(layer: Layer) -> Expr:
    a = layer.args
    pads = a["padding"]
    symmetric = all(before == after for before, after in pads)
    return call(
        f"nn.{layer.op}", str(a["in"]), str(a["out"]), f"kernel_size={lit(ints(a['kernel']))}",
        *_kw("stride", ints(a["stride"]), 1),
        *(_kw("padding", ints([p for p, _ in pads]), 0) if symmetric else []),
        *_kw("dilation", ints(a["dilation"]), 1), *_kw("groups", a["groups"], 1),
        *_kw("bias", a["bias"], True),
    )


def _conv_transpose(layer: Layer) -> Expr:
    a = layer.args
    return call(
        "nn.ConvTranspose2d", str(a["in"]), str(a["out"]), f"kernel_size={lit(ints(a['kernel']))}",
        *_kw("stride", ints(a["stride"]), 1), *_kw("padding", ints(a["padding"]), 0),
        *_kw("output_padding", ints(a["output_padding"]), 0),
        *_kw("groups", a["groups"], 1), *_kw("bias", a["bias"], True),
    )


def _recurrent(layer: Layer) -> Expr:
    a = layer.args
    # PyTorch applies dropout between stacked layers only, so with one layer it means nothing
    # (and would warn): leave it out.
    dropout = _kw("dropout", a["dropout"], 0.0) if a["layers"] > 1 else []
    return call(f"nn.{layer.op}", str(a["input_size"]), str(a["hidden"]),
                *_kw("num_layers", a["layers"], 1), "batch_first=True", *dropout,
                *_kw("bidirectional", a["bidirectional"], False))


def _attention(layer: Layer) -> Expr:
    a = layer.args
    e = a["embed_dim"]
    return call("MultiHeadAttention", str(e), str(a["heads"]), *_kw("kdim", a["kdim"], e),
                *_kw("vdim", a["vdim"], e), *_kw("bias", a["bias"], True),
                *_kw("causal", a["causal"], False), *_kw("dropout", a["dropout"], 0.0))


_INIT = {
    "normal": "torch.randn({})",
    "zeros": "torch.zeros({})",
    "ones": "torch.ones({})",
    "uniform": "torch.rand({})",
    "xavier_uniform": "nn.init.xavier_uniform_(torch.empty({}))",
    "trunc_normal": "nn.init.trunc_normal_(torch.empty({}), std=0.02, a=-0.04, b=0.04)",
}


def _parameter(layer: Layer) -> Expr:
    shape, init = layer.args["shape"], layer.args["init"]  # the checker saw xavier's rank >= 2
    return call("nn.Parameter", _INIT[init].format(", ".join(str(d) for d in shape) or "()"))


CONSTRUCT: dict[str, Callable[[Layer], Expr]] = {
    "Linear": _new("nn.Linear", "in", "out", bias=True),
    "Conv1d": _conv,
    "Conv2d": _conv,
    "ConvTranspose2d": _conv_transpose,
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

# The classes of layers.py; the generator copies the ones a model constructs.
HELPERS = frozenset({"MultiHeadAttention", "AdditiveAttention", "PositionalEncoding"})


# ---- forward -------------------------------------------------------------------------------
def _module(s: Site) -> Expr:
    assert s.module is not None
    return Call(s.module, tuple(s.xs))


def _conv_forward(s: Site) -> Expr:
    pads = s.args["padding"]
    if all(before == after for before, after in pads):
        return _module(s)
    # Asymmetric ("same" with an even kernel): pad explicitly, F.pad lists the last dim first.
    flat_pads = [p for pair in reversed(pads) for p in pair]
    return call(s.module or "", call("F.pad", s.x, lit(flat_pads)))


def _recurrent_forward(s: Site) -> Lowered:
    if s.args["return_sequences"]:
        return Lowered(_module(s), target="{}, _")
    # The last layer's final state of each direction: PyTorch's h_n, not output[:, -1].
    h_n = s.temp("h_n")
    state = f"({h_n}, _)" if s.node.op == "LSTM" else h_n
    code = (call("torch.cat", Seq((f"{h_n}[-2]", f"{h_n}[-1]")), "dim=1")
            if s.args["bidirectional"] else f"{h_n}[-1]")
    return Lowered(code, before=(f"_, {state} = {s.module}({s.x})",))


def _activation(func: str, *extra: str) -> Callable[[Site], Expr]:
    return lambda s: call(func, s.x, *extra)


def _leaky_relu(s: Site) -> Expr:
    return call("F.leaky_relu", s.x, lit(s.args["slope"]))


def _gelu(s: Site) -> Expr:
    return call("F.gelu", s.x, *_kw("approximate", s.args.get("approximate", "none"), "none"))


def _softmax(s: Site) -> Expr:
    d = s.args["dim"]
    return call("F.softmax", s.x, f"dim={-1 if d == s.ins[0].rank - 1 else d}")


def _pool(func: str) -> Callable[[Site], Expr]:
    def rule(s: Site) -> Expr:
        a = s.args
        return call(func, s.x, lit(ints(a["kernel"])),
                    *_kw("stride", ints(a["stride"]), ints(a["kernel"])),
                    *_kw("padding", ints(a["padding"]), 0))
    return rule


def _dims(dims: tuple[Dim, ...] | list[Dim]) -> str:
    return lit(dims[0]) if len(dims) == 1 else lit(tuple(dims))


def _reshape(s: Site) -> Expr:
    shape = s.node.type.shape
    unknown = [i for i, d in enumerate(shape) if not isinstance(d, int)]
    dims = ["-1" if unknown == [i] else s.dim(d) for i, d in enumerate(shape)]
    return call(f"{s.x}.reshape", *dims)


def _expand(s: Site) -> Expr:
    shape, src = s.node.type.shape, s.ins[0].shape
    lead = len(shape) - len(src)
    dims = ["-1" if i >= lead and d == src[i - lead] else s.dim(d) for i, d in enumerate(shape)]
    return call(f"{s.x}.expand", *dims)


def _reduce(method: str) -> Callable[[Site], Expr]:
    def rule(s: Site) -> Expr:
        dims, keep = s.args["dim"], s.args["keepdim"]
        if dims is None:
            if not keep:
                return call(f"{s.x}.{method}")
            dims = list(range(s.ins[0].rank))
        return call(f"{s.x}.{method}", f"dim={_dims(dims)}", *_kw("keepdim", keep, False))
    return rule


def _global_pool(s: Site) -> Expr:
    return call(f"{s.x}.mean", f"dim={_dims(list(range(2, s.ins[0].rank)))}")


def _bound(v: int | None) -> str:
    return "" if v is None else str(v)


def _getitem(s: Site) -> str:
    parts = []
    for item in s.args["index"]:
        if isinstance(item, int):
            parts.append(str(item))
            continue
        start, stop, step = item
        text = f"{_bound(start)}:{_bound(stop)}"
        parts.append(text if step in (None, 1) else f"{text}:{step}")
    return f"{s.x}[{', '.join(parts)}]"


def _slice_to(n: str) -> str:
    """`[:n]` as the formatter writes it: spaces around `:` when `n` is an expression."""
    return f"[:{n}]" if re.fullmatch(r"\w+", n) else f"[: {n}]"


def _positional_embedding(s: Site) -> str:
    return f"{s.x} + {s.module}.weight{_slice_to(s.dim(s.ins[0].shape[1]))}"


_OPERATOR = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}


def _binary(s: Site) -> str:
    op = _OPERATOR[s.node.op]
    if len(s.xs) == 2:
        return f"{s.xs[0]} {op} {s.xs[1]}"
    scalar = lit(s.args["scalar"])
    return f"{scalar} {op} {s.x}" if s.args["scalar_first"] else f"{s.x} {op} {scalar}"


def _dropout(s: Site) -> Expr:
    return call("F.dropout", s.x, f"p={lit(s.args['p'])}", "training=self.training")


Rule = Callable[[Site], "Expr | Lowered"]

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
    "AdaptiveAvgPool2d": lambda s: call("F.adaptive_avg_pool2d", s.x,
                                                lit(ints(s.args["size"]))),
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
    "Flatten": lambda s: call(f"{s.x}.flatten", "1"),
    "Reshape": _reshape,
    "reshape": _reshape,
    "transpose": lambda s: call(f"{s.x}.transpose", str(s.args["dim0"]), str(s.args["dim1"])),
    "permute": lambda s: call(f"{s.x}.permute", *(str(d) for d in s.args["dims"])),
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
    "neg": lambda s: f"-{s.x}",
}



def plain_call(node: Node) -> bool:
    """Whether the node computes `module(inputs)`: a chain of such calls can be nn.Sequential."""
    rule = FORWARD.get(node.op)
    if rule is _conv_forward:
        return all(before == after for before, after in node.args["padding"])
    return rule is _module


# Activations that may overwrite their input (their backward needs only their output), and
# the producers whose output nothing else needs for backward, so overwriting it is safe.
IN_PLACE = ("ReLU", "relu", "LeakyReLU")
SAFE_TO_OVERWRITE = ("Linear", "Conv1d", "Conv2d", "ConvTranspose2d", "BatchNorm1d",
                     "BatchNorm2d", "LayerNorm", "add", "sub")
