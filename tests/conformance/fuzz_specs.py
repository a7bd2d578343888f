"""A hypothesis strategy for small valid `.arch` specs: a random stack of the contract's layers
at tiny sizes, shape-consistent by construction, printed as `.arch` text.

The strategy tracks the tensor it has built so far (its kind and its sizes after the batch)
and draws only stages that fit it, computing each stage's output size with the contract's
rules; the checker must then accept every spec it prints.

It also keeps away from results that are ill-conditioned by nature, where float32 cannot
agree with float64 whatever the backend does: a quantity whose true value is zero, or one
that divides rounding noise by a tiny spread.
- LayerNorm normalises at least three values, BatchNorm at least four (the fuzz test binds
  the batch to 4): two values normalise to about ±1 whatever they are.
- BatchNorm only normalises the model's input. Deeper in a stack its input may vary little
  across the batch (after a layer of fan-in one, say), and a bias or a weight of fan-in one
  before it has a true gradient of zero, BatchNorm being blind to a channel's shift and
  scale. The conformance table and the specs test it in depth.
- Softmax and cross-entropy never see a dimension of size 1, and cross-attention has at
  least two keys: one class or one key makes the result constant and every gradient zero.
- Softmax ignores a shift along its dimension, so it runs along the one a bias varies on
  (the channels, or the last of a sequence or features), never along one where a bias
  before it has no gradient; so does cross-entropy, a softmax over the last dimension. And
  its outputs sum to 1, so an l1 loss right after it, whose gradient is ±1 for each output,
  has a true gradient of zero wherever all outputs lie on one side of their targets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import strategies as st

MAX = 8  # no size after the batch grows past this
LOSSES = ("cross_entropy", "mse", "bce_with_logits", "l1")
ACTIVATIONS = ("ReLU", "LeakyReLU(slope=0.2)", "GELU", "GELU(approximate=\"tanh\")", "Tanh",
               "Sigmoid", "SiLU", "Identity", "Dropout(0.3)", "relu", "tanh", "sigmoid", "gelu",
               "silu")
EPS = (1e-5, 1e-3, 0.1)
MOMENTUM = (0.1, 0.3, 0.9)
# Normalising two values gives about ±1 whatever they are: the true input gradient is of the
# order of eps, and float32 returns rounding noise.
NORM_MIN = 3


@dataclass(frozen=True)
class Tensor:
    """`kind` is image [B, C, H, W], signal [B, C, L], sequence [B, T, F] or features [B, F];
    `dims` are the sizes after the batch."""

    kind: str
    dims: tuple[int, ...]
    fresh: bool = False  # the model's float input itself, before any stage


def _conv_out(n: int, k: int, s: int, p: int | str, d: int = 1) -> int:
    if p == "same":
        return -(-n // s)
    pad = 0 if p == "valid" else p
    return (n + 2 * pad - d * (k - 1) - 1) // s + 1


def _groups(draw, c: int, out: int) -> int:
    return draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0 and out % g == 0]))


def _show(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"' if isinstance(v, str) else str(v)


def _call(layer: str, *args: object, **kw: object) -> str:
    """`Layer(a, b, k=v)` with the keywords whose value is not None."""
    parts = [*map(str, args), *(f"{k}={_show(v)}" for k, v in kw.items() if v is not None)]
    return f"{layer}({', '.join(parts)})"


def _conv(draw, t: Tensor, layer: str) -> tuple[str, Tensor]:
    """Conv1d or Conv2d with a random stride, padding, dilation and groups."""
    c, *sizes = t.dims
    out = draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 2))
    d = draw(st.integers(1, 2))
    p = draw(st.sampled_from(["same", "valid", 0, 1]))
    if any(_conv_out(n, k, s, p, d) < 1 for n in sizes):
        p = "same"
    g = _groups(draw, c, out)
    call = _call(layer, out, k, stride=s if s > 1 else None, padding=p or None,
                 dilation=d if d > 1 else None, groups=g if g > 1 else None,
                 bias=None if draw(st.booleans()) else False)
    return f"x |> {call}", Tensor(t.kind, (out, *(_conv_out(n, k, s, p, d) for n in sizes)))


def _conv_transpose(draw, t: Tensor) -> tuple[str, Tensor]:
    c, h, w = t.dims
    out = draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 2))
    p = draw(st.integers(0, (k - 1) // 2))
    op = draw(st.integers(0, s - 1))
    g = _groups(draw, c, out)
    new = tuple((n - 1) * s - 2 * p + k + op for n in (h, w))
    call = _call("ConvTranspose2d", out, k, stride=s if s > 1 else None, padding=p or None,
                 output_padding=op or None, groups=g if g > 1 else None)
    return f"x |> {call}", Tensor("image", (out, *new))


def _pool(draw, t: Tensor, dims: str) -> tuple[str, Tensor]:
    c, *sizes = t.dims
    kind = draw(st.sampled_from(["Max", "Avg"]))
    k = draw(st.integers(1, min(3, *sizes)))
    s = draw(st.sampled_from([None, 1, 2]))
    p = draw(st.integers(0, k // 2))
    new = tuple(_conv_out(n, k, s or k, p) for n in sizes)
    return f"x |> {_call(f'{kind}Pool{dims}', k, stride=s, padding=p or None)}", \
        Tensor(t.kind, (c, *new))


def _batchnorm(draw, t: Tensor, dims: str) -> tuple[str, Tensor]:
    call = _call(f"BatchNorm{dims}", eps=draw(st.sampled_from(EPS)),
                 momentum=draw(st.sampled_from(MOMENTUM)),
                 affine=None if draw(st.booleans()) else False)
    return f"x |> {call}", t


def _activation(draw, t: Tensor) -> tuple[str, Tensor]:
    name = draw(st.sampled_from(ACTIVATIONS))
    # Softmax runs along the dimension a bias varies on: the channels, or the last one.
    dim, size = (1, t.dims[0]) if t.kind in ("image", "signal") else (-1, t.dims[-1])
    if draw(st.integers(0, 7)) == 0 and size > 1:
        return f"x |> Softmax(dim={dim})", t
    return (f"{name}(x)" if name.islower() else f"x |> {name}"), t


def _residual(draw, t: Tensor) -> tuple[str, Tensor]:
    inner = {"image": f"Conv2d({t.dims[0]}, 3, padding=1)",
             "signal": f"Conv1d({t.dims[0]}, 3, padding=\"same\")",
             "sequence": f"Linear({t.dims[-1]})", "features": f"Linear({t.dims[-1]})"}[t.kind]
    op = draw(st.sampled_from(["+", "-", "*"]))
    return f"x {op} (x |> {inner} |> Tanh)", t


def _scalar(draw, t: Tensor) -> tuple[str, Tensor]:
    return draw(st.sampled_from(["x * 0.5", "1 - x", "-x", "x / 2", "2 + x"])), t


def image_stage(draw, t: Tensor) -> tuple[str, Tensor]:
    c, h, w = t.dims
    pick = draw(st.sampled_from(["conv", "conv", "convT", "pool", "adaptive", "bn", "act",
                                 "residual", "flatten", "global", "signal"]))
    if pick == "conv":
        return _conv(draw, t, "Conv2d")
    if pick == "convT" and max(h, w) <= 4:
        return _conv_transpose(draw, t)
    if pick == "pool":
        return _pool(draw, t, "2d")
    if pick == "adaptive":
        s = draw(st.integers(1, 4))
        return f"x |> AdaptiveAvgPool2d({s})", Tensor("image", (c, s, s))
    if pick == "bn" and t.fresh:
        return _batchnorm(draw, t, "2d")
    if pick == "residual":
        return _residual(draw, t)
    if pick == "flatten" and c * h * w <= 4 * MAX:
        return "x |> Flatten", Tensor("features", (c * h * w,))
    if pick == "global":
        return "x |> GlobalAvgPool", Tensor("features", (c,))
    if pick == "signal" and h * w <= MAX:
        return f"reshape(x, [B, {c}, -1])", Tensor("signal", (c, h * w))
    return _activation(draw, t)


def signal_stage(draw, t: Tensor) -> tuple[str, Tensor]:
    c, n = t.dims
    pick = draw(st.sampled_from(["conv", "conv", "pool", "bn", "act", "residual", "sequence",
                                 "global", "flatten"]))
    if pick == "conv":
        return _conv(draw, t, "Conv1d")
    if pick == "pool":
        return _pool(draw, t, "1d")
    if pick == "bn" and t.fresh:
        return _batchnorm(draw, t, "1d")
    if pick == "residual":
        return _residual(draw, t)
    if pick == "sequence":
        return "transpose(x, 1, 2)", Tensor("sequence", (n, c))
    if pick == "global":
        return "x |> GlobalAvgPool", Tensor("features", (c,))
    if pick == "flatten":
        return "x |> Flatten", Tensor("features", (c * n,))
    return _activation(draw, t)


def sequence_stage(draw, t: Tensor) -> tuple[str, Tensor]:
    n, f = t.dims
    pick = draw(st.sampled_from(["linear", "norm", "rnn", "rnn", "attention", "cross",
                                 "position", "act", "residual", "signal", "last", "mean",
                                 "slice", "concat"]))
    if pick == "linear":
        out = draw(st.integers(1, MAX))
        call = _call("Linear", out, bias=None if draw(st.booleans()) else False)
        return f"x |> {call}", Tensor("sequence", (n, out))
    if pick == "norm" and f >= NORM_MIN:
        return f"x |> LayerNorm(eps={draw(st.sampled_from(EPS))})", t
    if pick == "rnn":
        layer = draw(st.sampled_from(["RNN", "LSTM", "GRU"]))
        hidden = draw(st.integers(1, 4))
        layers = draw(st.integers(1, 2))
        bi = draw(st.booleans())
        seq = draw(st.booleans())
        call = _call(layer, hidden, layers=layers if layers > 1 else None,
                     bidirectional=bi or None, return_sequences=None if seq else False,
                     dropout=0.2 if layers > 1 and draw(st.booleans()) else None)
        width = hidden * (2 if bi else 1)
        return f"x |> {call}", \
            Tensor("sequence", (n, width)) if seq else Tensor("features", (width,))
    if pick in ("attention", "cross"):
        heads = draw(st.sampled_from([h for h in range(1, f + 1) if f % h == 0]))
        call = _call("MultiHeadAttention", heads, causal=draw(st.booleans()) or None,
                     bias=None if draw(st.booleans()) else False)
        if pick == "attention":
            return f"x |> {call}", t
        if n < 2:
            return f"x |> {call}", t
        m = draw(st.integers(2, n))
        start = draw(st.integers(0, n - m))
        kv = f"x[:, {start}:{start + m}]"
        return f"{call}(x, {kv}, {kv})", t
    if pick == "position":
        if draw(st.booleans()):
            return f"x |> PositionalEncoding(max_len={draw(st.integers(n, MAX))})", t
        return f"x |> PositionalEmbedding({draw(st.integers(n, MAX))})", t
    if pick == "residual":
        return _residual(draw, t)
    if pick == "signal":
        return "transpose(x, 1, 2)", Tensor("signal", (f, n))
    if pick == "last":
        return "x[:, -1]", Tensor("features", (f,))
    if pick == "mean":
        return f"{draw(st.sampled_from(['mean', 'sum']))}(x, 1)", Tensor("features", (f,))
    if pick == "slice" and n > 1:
        a = draw(st.integers(0, n - 1))
        b = draw(st.integers(a + 1, n))
        return f"x[:, {a}:{b}]", Tensor("sequence", (b - a, f))
    if pick == "concat" and f < MAX:
        k = draw(st.integers(1, MAX - f))
        return f"concat([x, x |> Linear({k})], dim=-1)", Tensor("sequence", (n, f + k))
    return _activation(draw, t)


def features_stage(draw, t: Tensor) -> tuple[str, Tensor]:
    (f,) = t.dims
    pick = draw(st.sampled_from(["linear", "linear", "bn", "norm", "act", "residual",
                                 "scalar", "sequence", "image"]))
    if pick == "linear":
        out = draw(st.integers(1, MAX))
        return f"x |> Linear({out})", Tensor("features", (out,))
    if pick == "bn" and t.fresh:
        return _batchnorm(draw, t, "1d")
    if pick == "norm" and f >= NORM_MIN:
        return "x |> LayerNorm", t
    if pick == "residual":
        return _residual(draw, t)
    if pick == "scalar":
        return _scalar(draw, t)
    divisors = [d for d in range(2, f) if f % d == 0]
    if pick == "sequence" and divisors:
        d = draw(st.sampled_from(divisors))
        return f"x |> Reshape({f // d}, {d})", Tensor("sequence", (f // d, d))
    if pick == "image" and divisors:
        d = draw(st.sampled_from(divisors))
        return f"x |> Reshape({f // d}, {d}, 1)", Tensor("image", (f // d, d, 1))
    return _activation(draw, t)


STAGES = {"image": image_stage, "signal": signal_stage, "sequence": sequence_stage,
          "features": features_stage}


def _input(draw) -> tuple[list[str], Tensor]:
    """The input declaration (and an embedding for token ids) and the tensor it gives."""
    kind = draw(st.sampled_from(["image", "signal", "sequence", "features", "tokens"]))
    size = st.integers(2, 6)
    if kind == "tokens":
        n, num, dim = draw(size), draw(st.integers(4, 9)), draw(st.integers(1, 6))
        return ([f"input t: i64[B, {n}]", f"x = t |> Embedding({num}, {dim})"],
                Tensor("sequence", (n, dim)))
    dims = {"image": (draw(st.integers(1, 4)), draw(size), draw(size)),
            "signal": (draw(st.integers(1, 4)), draw(size)),
            "sequence": (draw(size), draw(st.integers(1, 6))),
            "features": (draw(st.integers(1, MAX)),)}[kind]
    return [f"input x: [B, {', '.join(map(str, dims))}]"], Tensor(kind, dims, fresh=True)


@st.composite
def specs(draw, max_stages: int = 5) -> str:
    """A model `Fuzz` with one input, 1 to `max_stages` stages and a drawn training loss."""
    lines, t = _input(draw)
    for _ in range(draw(st.integers(1, max_stages))):
        expr, t = STAGES[t.kind](draw, t)
        t = replace(t, fresh=False)
        lines.append(f"x = {expr}")
    lines.append(f"output y: [B, {', '.join(map(str, t.dims))}] = x")
    # cross-entropy is a softmax over the last dimension: the rules of Softmax apply
    classes = t.kind in ("sequence", "features") and t.dims[-1] > 1
    losses = [x for x in LOSSES if not (x == "cross_entropy" and not classes
                                        or x == "l1" and "Softmax" in lines[-1])]
    lines.append(f"train {{ loss = \"{draw(st.sampled_from(losses))}\" }}")
    return "model Fuzz {\n" + "".join(f"    {line}\n" for line in lines) + "}\n"


# Names and strings that made generated code go wrong once (issue 14): long names make long
# lines in repeats and loops, and strings that Python's identifier normalisation (NFKC) makes
# equal, or that are not identifiers at all, must stay apart.
LONG_NAMES = ("ResidualProjectionBlockWithAVeryLongNameIndeed", "Mix")
LONG_PARAMS = ("expansion_factor_of_the_hidden_layer", "e")
STRINGS = ('"relu"', '"tanh"', '"ﬁ"', '"fi"', '"x²"', '"é"', '"a b"', '""')


@st.composite
def structured_specs(draw) -> str:
    """Blocks around small stacks: a block with long names repeated (`* n`) and looped, chosen
    between by a string argument, and one bound block applied to feature maps of two sizes
    whose body reshapes with the sizes of each call (`[B, out, -1]`, `[B, out, H * W]`)."""
    name, param = draw(st.sampled_from(LONG_NAMES)), draw(st.sampled_from(LONG_PARAMS))
    width, expand = draw(st.integers(2, 5)), draw(st.integers(1, 3))
    first, second = draw(st.sampled_from(STRINGS)), draw(st.sampled_from(STRINGS))
    repeat, loops = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    out, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    (h1, w1), (h2, w2) = [(draw(st.integers(1, 4)), draw(st.integers(1, 4))) for _ in range(2)]
    last = draw(st.sampled_from(["-1", "H * W"]))
    return f"""block {name}(width: int, {param}: int, act: str = "relu") {{
    input x: [B, F]
    h = x |> Linear(width * {param}) |> Linear(F)
    h = if act == {first} then tanh(h) else (h |> ReLU)
    output y = x + h
}}

block Head(out: int) {{
    input x: [B, C, H, W]
    y = x |> Conv2d(out, 1)
    output z = reshape(y, [B, out, {last}]) |> Tanh
}}

model Fuzz {{
    input a: [B, {width}]
    input p: [B, {c}, {h1}, {w1}]
    input q: [B, {c}, {h2}, {w2}]
    x = a |> {name}({width}, {expand}, act={second}) * {repeat}
    for i in range({loops}) {{
        x = x |> {name}({width}, i + 1)
    }}
    head = Head({out})
    y = concat([reshape(head(p), [B, {out * h1 * w1}]), reshape(head(q), [B, {out * h2 * w2}])],
               dim=1)
    output z: [B, {width + out * (h1 * w1 + h2 * w2)}] = concat([x, y], dim=1)
    train {{ loss = "mse" }}
}}
"""
