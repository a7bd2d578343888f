"""The oracle: each op computed by PyTorch, in float64: torch.nn.functional, or the torch.nn
module of the same name called with our tensors through `torch.func.functional_call` (strict,
which also proves that our parameter names are PyTorch's). Gradients land on the tensors passed
in and BatchNorm updates the buffers passed in, as a module would its own."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from archdsl.graph import Graph
from archdsl.symbolic import resolve_dims

Tensors = dict[str, torch.Tensor]
Oracle = Callable[[dict, Tensors, list[torch.Tensor]], torch.Tensor]


def _call(m: nn.Module, p: Tensors, a: dict, *xs: torch.Tensor, **kw) -> torch.Tensor:
    """Call module `m` in the mode `a["training"]` with exactly the tensors `p`."""
    return functional_call(m.train(a["training"]), p, xs, kw, strict=True)


def _conv(a, p, xs):
    (x,) = xs
    n = x.ndim - 2
    flat = [q for pair in reversed(a["padding"]) for q in pair]
    f = F.conv1d if n == 1 else F.conv2d
    return f(F.pad(x, flat), p["weight"], p.get("bias"), a["stride"], 0, a["dilation"],
             a["groups"])


def _pool(kind: str):
    def pool(a, p, xs):
        (x,) = xs
        f = getattr(F, f"{kind}_pool{x.ndim - 2}d")
        return f(x, a["kernel"], a["stride"], a["padding"])
    return pool


def _recurrent(op: str):
    def recurrent(a, p, xs):
        m = getattr(nn, op)(a["input_size"], a["hidden"], a["layers"], batch_first=True,
                            bidirectional=a["bidirectional"], dropout=a["dropout"])
        out, h = _call(m, p, a, xs[0])
        if a["return_sequences"]:
            return out
        hn = (h[0] if op == "LSTM" else h)[-(2 if a["bidirectional"] else 1):]
        return torch.cat(list(hn), dim=-1)
    return recurrent


def _mha(a, p, xs):
    q, k, v = xs * 3 if len(xs) == 1 else xs
    m = nn.MultiheadAttention(a["embed_dim"], a["heads"], dropout=a["dropout"], bias=a["bias"],
                              kdim=a["kdim"], vdim=a["vdim"], batch_first=True)
    mask = torch.ones(q.shape[1], k.shape[1]).triu(1).bool() if a["causal"] else None
    return _call(m, p, a, q, k, v, attn_mask=mask, need_weights=False)[0]


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
    cls = nn.BatchNorm1d if x.ndim < 4 else nn.BatchNorm2d
    return _call(cls(a["num_features"], a["eps"], a["momentum"], a["affine"]), p, a, x)


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


ORACLES: dict[str, Oracle] = {
    "Linear": lambda a, p, xs: F.linear(xs[0], p["weight"], p.get("bias")),
    "Conv1d": _conv, "Conv2d": _conv,
    "ConvTranspose2d": lambda a, p, xs: F.conv_transpose2d(
        xs[0], p["weight"], p.get("bias"), a["stride"], a["padding"], a["output_padding"],
        a["groups"]),
    "MaxPool1d": _pool("max"), "MaxPool2d": _pool("max"),
    "AvgPool1d": _pool("avg"), "AvgPool2d": _pool("avg"),
    "AdaptiveAvgPool2d": lambda a, p, xs: F.adaptive_avg_pool2d(xs[0], a["size"]),
    "GlobalAvgPool": lambda a, p, xs: xs[0].mean(dim=tuple(range(2, xs[0].ndim))),
    "BatchNorm1d": _bn, "BatchNorm2d": _bn,
    "LayerNorm": lambda a, p, xs: F.layer_norm(xs[0], (a["dim"],), p["weight"], p["bias"],
                                               a["eps"]),
    "Embedding": lambda a, p, xs: F.embedding(xs[0], p["weight"]),
    "PositionalEncoding": _posenc,
    "PositionalEmbedding": lambda a, p, xs: xs[0] + p["weight"][: xs[0].shape[1]],
    "Parameter": lambda a, p, xs: p[""],
    "param": lambda a, p, xs: p[a["name"]],
    "RNN": _recurrent("RNN"), "LSTM": _recurrent("LSTM"), "GRU": _recurrent("GRU"),
    "MultiHeadAttention": _mha, "AdditiveAttention": _additive,
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
    "Flatten": lambda a, p, xs: xs[0].flatten(1),
    "Reshape": lambda a, p, xs: xs[0].reshape(xs[0].shape[0], *a["dims"]),
    "reshape": lambda a, p, xs: xs[0].reshape(*a["shape"]),
    "transpose": lambda a, p, xs: xs[0].transpose(a["dim0"], a["dim1"]),
    "permute": lambda a, p, xs: xs[0].permute(*a["dims"]),
    "expand": lambda a, p, xs: xs[0].expand(*a["shape"]),
    "concat": lambda a, p, xs: torch.cat(xs, dim=a["dim"]),
    "getitem": lambda a, p, xs: xs[0][_index(a)],
    "mean": lambda a, p, xs: xs[0].mean(dim=a["dim"], keepdim=a["keepdim"]),
    "sum": lambda a, p, xs: xs[0].sum(dim=a["dim"], keepdim=a["keepdim"]),
    "add": _binary(torch.add), "sub": _binary(torch.sub), "mul": _binary(torch.mul),
    "div": _binary(torch.div), "neg": _act(torch.neg),
    "matmul": lambda a, p, xs: torch.matmul(*xs),
}


def run(op: str, a: dict, p: Tensors, xs: list[torch.Tensor], training: bool) -> torch.Tensor:
    """One op on torch tensors; gradients reach `p` and `xs`, buffer updates reach `p`."""
    return ORACLES[op]({**a, "training": training}, p, xs)


def run_graph(graph: Graph, state: Tensors, inputs: list[np.ndarray], training: bool
              ) -> list[torch.Tensor]:
    """A whole graph, op by op, on the state-dict tensors `state` (leaf tensors for gradients)."""
    env = {k: int(inputs[s.input].shape[s.axis]) for k, s in graph.symbols.items()}
    dtype = next(iter(state.values())).dtype if state else torch.float64
    values: dict[int, torch.Tensor] = {}
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
