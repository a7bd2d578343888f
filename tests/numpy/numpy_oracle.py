"""The oracle: each op computed by PyTorch, in float64: torch.nn.functional, or the torch.nn
module of the same name called with our tensors through `torch.func.functional_call` (strict,
which also proves that our parameter names are PyTorch's). Gradients land on the tensors passed
in and BatchNorm updates the buffers passed in, as a module would its own."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from archdsl import draws
from archdsl.graph import Graph
from archdsl.symbolic import resolve_dims

Tensors = dict[str, torch.Tensor]
Oracle = Callable[[dict, Tensors, list[torch.Tensor]], Any]


def _call(m: nn.Module, p: Tensors, a: dict, *xs: torch.Tensor, **kw) -> torch.Tensor:
    """Call module `m` in the mode `a["training"]` with exactly the tensors `p`."""
    return functional_call(m.train(a["training"]), p, xs, kw, strict=True)


def _conv(a, p, xs):
    (x,) = xs
    n = x.ndim - 2
    flat = [q for pair in reversed(a["padding"]) for q in pair]
    mode = a["padding_mode"]
    f = getattr(F, f"conv{n}d")
    return f(F.pad(x, flat, mode="constant" if mode == "zeros" else mode), p["weight"],
             p.get("bias"), a["stride"], 0, a["dilation"], a["groups"])


def _convt(a, p, xs):
    (x,) = xs
    f = getattr(F, f"conv_transpose{x.ndim - 2}d")
    return f(x, p["weight"], p.get("bias"), a["stride"], a["padding"], a["output_padding"],
             a["groups"])


def _pool(kind: str):
    def pool(a, p, xs):
        (x,) = xs
        f = getattr(F, f"{kind}_pool{x.ndim - 2}d")
        extra = {"count_include_pad": a["count_include_pad"]} if kind == "avg" else {}
        return f(x, a["kernel"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"], **extra)
    return pool


def _recurrent(op: str):
    def recurrent(a, p, xs):
        m = getattr(nn, op)(a["input_size"], a["hidden"], a["layers"], batch_first=True,
                            bidirectional=a["bidirectional"], dropout=a["dropout"])
        x, *state = xs
        out, h = _call(m, p, a, x, (tuple(state) if op == "LSTM" else state[0]) if state
                       else None)
        if not a["return_sequences"]:
            hn = (h[0] if op == "LSTM" else h)[-(2 if a["bidirectional"] else 1):]
            out = torch.cat(list(hn), dim=-1)
        if a["return_state"]:
            return (out, *h) if op == "LSTM" else (out, h)
        return out
    return recurrent


def _cell(op: str):
    def cell(a, p, xs):
        m = getattr(nn, op)(a["input_size"], a["hidden"], a["bias"])
        x, *state = xs
        return _call(m, p, a, x, (tuple(state) if op == "LSTMCell" else state[0]) if state
                     else None)
    return cell


def _key_padding(a, xs):
    """The positional inputs and the key padding mask, or None."""
    return (xs[:-1], xs[-1]) if a.get("key_padding_mask") else (xs, None)


def _mha(a, p, xs):
    xs, key_mask = _key_padding(a, xs)
    q, k, v = xs * 3 if len(xs) == 1 else xs
    m = nn.MultiheadAttention(a["embed_dim"], a["heads"], dropout=a["dropout"], bias=a["bias"],
                              kdim=a["kdim"], vdim=a["vdim"], batch_first=True)
    mask = torch.ones(q.shape[1], k.shape[1]).triu(1).bool() if a["causal"] else None
    return _call(m, p, a, q, k, v, attn_mask=mask, key_padding_mask=key_mask,
                 need_weights=False)[0]


def _rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _attention(a, p, xs):
    """Hugging Face's Llama attention written out: projections, rotary embeddings, repeat_kv,
    masked softmax."""
    xs, key_mask = _key_padding(a, xs)
    q, k, v = xs * 3 if len(xs) == 1 else xs
    hd = a["head_dim"]

    def heads(x, name, n):
        y = F.linear(x, p[f"{name}.weight"], p.get(f"{name}.bias"))
        return y.view(x.shape[0], x.shape[1], n, hd).transpose(1, 2)

    q, k, v = heads(q, "q_proj", a["heads"]), heads(k, "k_proj", a["kv_heads"]), \
        heads(v, "v_proj", a["kv_heads"])
    if a["rotary"]:
        inv_freq = 1.0 / a["rope_base"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)

        def rope(t):
            emb = torch.outer(torch.arange(t.shape[2], dtype=torch.float64), inv_freq)
            emb = torch.cat((emb, emb), dim=-1).to(t.dtype)
            return t * emb.cos() + _rotate_half(t) * emb.sin()

        q, k = rope(q), rope(k)
    group = a["heads"] // a["kv_heads"]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if a["causal"]:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), -math.inf)
    if key_mask is not None:
        s = s.masked_fill(key_mask[:, None, None, :], -math.inf)
    o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)
    return F.linear(o, p["o_proj.weight"], p.get("o_proj.bias"))


def _additive(a, p, xs):
    q, v = xs
    t = torch.tanh(F.linear(q, p["query_proj.weight"])[:, None]
                   + F.linear(v, p["key_proj.weight"], p["key_proj.bias"]))
    w = torch.softmax(F.linear(t, p["score.weight"])[..., 0], dim=-1)
    return (w[..., None] * v).sum(1)


def _posenc(a, p, xs):
    (x,) = xs
    t, d = x.shape[1], x.shape[2]
    pos = torch.arange(t, dtype=x.dtype)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=x.dtype) * (-math.log(10000.0) / d))
    pe = torch.zeros(t, d, dtype=x.dtype)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: d // 2])
    return x + pe


def _bn(a, p, xs):
    (x,) = xs
    cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[x.ndim]
    return _call(cls(a["num_features"], a["eps"], a["momentum"], a["affine"]), p, a, x)


def _instance_norm(a, p, xs):
    (x,) = xs
    m = getattr(nn, f"InstanceNorm{x.ndim - 2}d")(a["num_features"], a["eps"], a["momentum"],
                                                  a["affine"], a["track_running_stats"])
    return _call(m, p, a, x)


def _pad(a, p, xs):
    """F.pad; a non-constant mode pads the last k dimensions of a (k+1)-d tensor, so the
    leading dimensions are folded into one."""
    (x,) = xs
    k = len(a["padding"]) // 2
    if a["mode"] == "constant":
        return F.pad(x, a["padding"], value=a["value"])
    folded = x.reshape(-1, *x.shape[x.ndim - k:])
    y = F.pad(folded, a["padding"], mode=a["mode"])
    return y.reshape(*x.shape[:x.ndim - k], *y.shape[1:])


def _where(a, p, xs):
    cond, *tensors = xs
    it = iter(tensors)
    return torch.where(cond, *(next(it) if a[k] is None else a[k] for k in ("a", "b")))


def _dims(a, x):
    return tuple(range(x.ndim)) if a["dim"] is None else a["dim"]


def _index(a):
    return tuple(i if isinstance(i, int) else slice(*i) for i in a["index"])


def _binary(f):
    def binary(a, p, xs):
        if len(xs) == 2:
            return f(*xs)
        return f(a["scalar"], xs[0]) if a["scalar_first"] else f(xs[0], a["scalar"])
    return binary


def _act(f):
    return lambda a, p, xs: f(xs[0])


def _dropout(a, p, xs):
    return F.dropout(xs[0], a["p"], a["training"])


def _randn_like(a, p, xs):
    """The next draw of the active `archdsl.noise` context, which the tests give both sides."""
    return torch.as_tensor(draws.draw(tuple(xs[0].shape))).to(xs[0].dtype)


ORACLES: dict[str, Oracle] = {
    "Linear": lambda a, p, xs: F.linear(xs[0], p["weight"], p.get("bias")),
    "Conv1d": _conv, "Conv2d": _conv, "Conv3d": _conv,
    "ConvTranspose1d": _convt, "ConvTranspose2d": _convt,
    "MaxPool1d": _pool("max"), "MaxPool2d": _pool("max"), "MaxPool3d": _pool("max"),
    "AvgPool1d": _pool("avg"), "AvgPool2d": _pool("avg"), "AvgPool3d": _pool("avg"),
    "AdaptiveAvgPool1d": lambda a, p, xs: F.adaptive_avg_pool1d(xs[0], a["size"]),
    "AdaptiveAvgPool2d": lambda a, p, xs: F.adaptive_avg_pool2d(xs[0], a["size"]),
    "AdaptiveMaxPool2d": lambda a, p, xs: F.adaptive_max_pool2d(xs[0], a["size"]),
    "GlobalAvgPool": lambda a, p, xs: xs[0].mean(dim=tuple(range(2, xs[0].ndim))),
    "GlobalMaxPool": lambda a, p, xs: xs[0].amax(dim=tuple(range(2, xs[0].ndim))),
    "BatchNorm1d": _bn, "BatchNorm2d": _bn, "BatchNorm3d": _bn,
    "GroupNorm": lambda a, p, xs: _call(nn.GroupNorm(a["groups"], a["num_channels"], a["eps"],
                                                     a["affine"]), p, a, xs[0]),
    "InstanceNorm1d": _instance_norm, "InstanceNorm2d": _instance_norm,
    "LayerNorm": lambda a, p, xs: _call(nn.LayerNorm(a["dim"], a["eps"], a["elementwise_affine"],
                                                     a["bias"]), p, a, xs[0]),
    "RMSNorm": lambda a, p, xs: _call(nn.RMSNorm(a["dim"], a["eps"], a["elementwise_affine"]),
                                      p, a, xs[0]),
    "Embedding": lambda a, p, xs: F.embedding(xs[0], p["weight"], a["padding_idx"]),
    "PositionalEncoding": _posenc,
    "PositionalEmbedding": lambda a, p, xs: xs[0] + p["weight"][: xs[0].shape[1]],
    "Parameter": lambda a, p, xs: p[""],
    "param": lambda a, p, xs: p[a["name"]],
    "RNN": _recurrent("RNN"), "LSTM": _recurrent("LSTM"), "GRU": _recurrent("GRU"),
    "RNNCell": _cell("RNNCell"), "LSTMCell": _cell("LSTMCell"), "GRUCell": _cell("GRUCell"),
    "MultiHeadAttention": _mha, "AdditiveAttention": _additive, "Attention": _attention,
    "ReLU": _act(F.relu), "relu": _act(F.relu),
    "LeakyReLU": lambda a, p, xs: F.leaky_relu(xs[0], a["slope"]),
    "GELU": lambda a, p, xs: F.gelu(xs[0], approximate=a["approximate"]),
    "gelu": lambda a, p, xs: F.gelu(xs[0], approximate=a["approximate"]),
    "Tanh": _act(torch.tanh), "tanh": _act(torch.tanh),
    "Sigmoid": _act(torch.sigmoid), "sigmoid": _act(torch.sigmoid),
    "SiLU": _act(F.silu), "silu": _act(F.silu), "Identity": _act(lambda x: x),
    "Softmax": lambda a, p, xs: torch.softmax(xs[0], a["dim"]),
    "softmax": lambda a, p, xs: torch.softmax(xs[0], a["dim"]),
    "Dropout": _dropout,
    "randn_like": _randn_like,
    "Dropout1d": lambda a, p, xs: F.dropout1d(xs[0], a["p"], a["training"]),
    "Dropout2d": lambda a, p, xs: F.dropout2d(xs[0], a["p"], a["training"]),
    "DropPath": lambda a, p, xs: xs[0],  # evaluation only: the identity
    **{op: _act(f) for op, f in (("ReLU6", F.relu6), ("relu6", F.relu6),
                                 ("Hardswish", F.hardswish), ("hardswish", F.hardswish),
                                 ("Hardsigmoid", F.hardsigmoid), ("hardsigmoid", F.hardsigmoid),
                                 ("Mish", F.mish), ("mish", F.mish))},
    **{op: (lambda a, p, xs: F.elu(xs[0], a["alpha"])) for op in ("ELU", "elu")},
    **{op: (lambda a, p, xs: F.softplus(xs[0], a["beta"], a["threshold"]))
       for op in ("Softplus", "softplus")},
    "PReLU": lambda a, p, xs: F.prelu(xs[0], p["weight"]),
    **{op: (lambda a, p, xs: torch.log_softmax(xs[0], a["dim"]))
       for op in ("LogSoftmax", "log_softmax")},
    **{op: _pad for op in ("Pad", "pad")},
    **{op: (lambda a, p, xs: F.interpolate(xs[0], a["size"], a["scale"], a["mode"],
                                           a["align_corners"]))
       for op in ("Upsample", "interpolate")},
    "PixelShuffle": lambda a, p, xs: F.pixel_shuffle(xs[0], a["r"]),
    "PixelUnshuffle": lambda a, p, xs: F.pixel_unshuffle(xs[0], a["r"]),
    **{op: _act(getattr(torch, op)) for op in ("exp", "log", "sqrt", "rsqrt", "abs",
                                               "zeros_like", "ones_like")},
    "clamp": lambda a, p, xs: torch.clamp(xs[0], a["min"], a["max"]),
    "maximum": lambda a, p, xs: torch.maximum(*xs),
    "minimum": lambda a, p, xs: torch.minimum(*xs),
    "where": _where,
    "masked_fill": lambda a, p, xs: xs[0].masked_fill(xs[1], a["value"]),
    "amax": lambda a, p, xs: torch.amax(xs[0], _dims(a, xs[0]), a["keepdim"]),
    "amin": lambda a, p, xs: torch.amin(xs[0], _dims(a, xs[0]), a["keepdim"]),
    "var": lambda a, p, xs: torch.var(xs[0], _dims(a, xs[0]), keepdim=a["keepdim"],
                                      correction=int(a["unbiased"])),
    "Flatten": lambda a, p, xs: xs[0].flatten(1),
    "Reshape": lambda a, p, xs: xs[0].reshape(xs[0].shape[0], *a["dims"]),
    "reshape": lambda a, p, xs: xs[0].reshape(*a["shape"]),
    "transpose": lambda a, p, xs: xs[0].transpose(a["dim0"], a["dim1"]),
    "permute": lambda a, p, xs: xs[0].permute(*a["dims"]),
    "expand": lambda a, p, xs: xs[0].expand(*a["shape"]),
    "concat": lambda a, p, xs: torch.cat(xs, dim=a["dim"]),
    "getitem": lambda a, p, xs: xs[0][_index(a)],
    "stack": lambda a, p, xs: torch.stack(xs, a["dim"]),
    "unsqueeze": lambda a, p, xs: xs[0].unsqueeze(a["dim"]),
    "squeeze": lambda a, p, xs: xs[0].squeeze(a["dim"]),
    "flatten": lambda a, p, xs: xs[0].flatten(a["start"], a["end"]),
    "split": lambda a, p, xs: torch.split(xs[0], a["size"], a["dim"]),
    "chunk": lambda a, p, xs: torch.chunk(xs[0], a["n"], a["dim"]),
    "part": lambda a, p, xs: xs[0][a["index"]],
    "mean": lambda a, p, xs: xs[0].mean(dim=a["dim"], keepdim=a["keepdim"]),
    "sum": lambda a, p, xs: xs[0].sum(dim=a["dim"], keepdim=a["keepdim"]),
    "add": _binary(torch.add), "sub": _binary(torch.sub), "mul": _binary(torch.mul),
    "div": _binary(torch.div), "neg": _act(torch.neg),
    **{op: _binary(getattr(operator, op)) for op in ("eq", "ne", "lt", "le", "gt", "ge")},
    "pow": lambda a, p, xs: torch.pow(xs[0], a["exponent"]),
    "matmul": lambda a, p, xs: torch.matmul(*xs),
}


def run(op: str, a: dict, p: Tensors, xs: list[torch.Tensor], training: bool) -> Any:
    """One op on torch tensors (a tuple of them for a multi-output op); gradients reach `p`
    and `xs`, buffer updates reach `p`."""
    return ORACLES[op]({**a, "training": training}, p, xs)


def run_graph(graph: Graph, state: Tensors, inputs: list[np.ndarray], training: bool
              ) -> list[torch.Tensor]:
    """A whole graph, op by op, on the state-dict tensors `state` (leaf tensors for gradients)."""
    env = {k: int(inputs[s.input].shape[s.axis]) for k, s in graph.symbols.items()}
    dtype = next(iter(state.values())).dtype if state else torch.float64
    values: dict[int, torch.Tensor] = {}
    draws.begin()
    for node in graph.nodes:
        if node.op == "input":
            x = torch.as_tensor(inputs[graph.inputs.index(node.id)])
            values[node.id] = x.to(dtype) if x.is_floating_point() else x
            continue
        layer = graph.layers.get(node.layer) if node.layer else None
        p = {s.name: state[layer.key(s)] for s in layer.params} if layer else {}
        values[node.id] = run(node.op, resolve_dims(node.args, env), p,
                              [values[i] for i in node.inputs], training)
    return [values[i] for i in graph.outputs]
