"""How each op of the language becomes ONNX: one rule table keyed by op.

`LOWER[op](site)` emits the nodes that compute one node of the typed graph and returns the
name of the value holding its result. Parameters are read under their state-dict keys, in
PyTorch's layout; where ONNX wants another layout (a transposed `Linear` weight, recurrent
gates in ONNX's order) the rule converts it with nodes, which runtimes fold once at load.
A rule that meets a case ONNX cannot express exactly raises `Refusal` with the reason; an op
missing from the table is a gap the generator reports (E0901) with the node's location.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import numpy_helper

from archdsl.backends.numpy.kernels.dense import sinusoid_table
from archdsl.graph import Node, TensorType

from .builder import ELEMENT, NUMPY, Builder

END = np.iinfo(np.int64).max  # a Slice end meaning "to the end of the axis"


class Refusal(Exception):
    """A case ONNX cannot express exactly; the generator locates and reports it."""


@dataclass
class Site:
    """What a rule sees: the node, its inputs as value names and types, and the builder."""

    node: Node
    xs: list[str]
    ins: list[TensorType]
    b: Builder
    base: str  # the node's name: its layer path, or its scope and op
    params: dict[str, str]  # the layer's parameter names -> state-dict keys
    used: set[str]  # state-dict keys some node reads
    cache: dict[Any, Any]  # tensors derived from parameters once per export

    @property
    def args(self) -> dict[str, Any]:
        return self.node.args

    @property
    def x(self) -> str:
        return self.xs[0]

    @property
    def out(self) -> TensorType:
        return self.node.type

    def op(self, op_type: str, *inputs: str, hint: str = "", outputs: int = 1,
           **attrs: Any) -> Any:
        """One ONNX node; its name (and its outputs') is `base/hint`. Returns the output's
        name, or the list of them when `outputs` > 1."""
        names = self.b.node(op_type, list(inputs), f"{self.base}/{hint or op_type}", outputs,
                            **attrs)
        return names if outputs > 1 else names[0]

    def param(self, name: str) -> str:
        key = self.params[name]
        self.used.add(key)
        return key

    def const(self, value: Any, hint: str, dtype: Any = np.int64) -> str:
        return self.b.const(value, f"{self.base}/{hint}", dtype)

    def scalar(self, value: float, dtype: str) -> str:
        """A number as a constant of the graph dtype `dtype`."""
        if dtype == "bf16":  # NumPy has no bfloat16
            return self.cast(self.const(value, "scalar", np.float32), "f32", "bf16")
        return self.const(value, "scalar", NUMPY[dtype])

    def cast(self, x: str, have: str, want: str) -> str:
        return x if have == want else self.op("Cast", x, to=ELEMENT[want])


Rule = Callable[[Site], str]


# ---- dense ---------------------------------------------------------------------------------
def _project(s: Site, x: str, rank: int, weight: str, bias: str | None, hint: str) -> str:
    """`x W^T + b` with W in PyTorch's [out, in] layout (`nn.Linear`)."""
    if rank == 2:
        return s.op("Gemm", x, weight, *([bias] if bias else []), transB=1, hint=hint)
    y = s.op("MatMul", x, s.op("Transpose", weight, perm=[1, 0], hint=f"{hint}_t"), hint=hint)
    return s.op("Add", y, bias, hint=f"{hint}_bias") if bias else y


def _linear(s: Site) -> str:
    bias = s.param("bias") if s.args["bias"] else None
    return _project(s, s.x, s.ins[0].rank, s.param("weight"), bias, "MatMul")


def _embedding(s: Site) -> str:
    return s.op("Gather", s.param("weight"), s.x, axis=0)


def _first_rows(s: Site, table: str) -> str:
    """Rows [0, T) of a table, T the sequence length (dim 1 of the input)."""
    t = s.ins[0].shape[1]
    return s.op("Slice", table, s.const([0], "start"), s.b.dim(t), s.const([0], "axis"),
                hint="rows")


def _positional_encoding(s: Site) -> str:
    t, d = s.ins[0].shape[1], s.args["dim"]
    if isinstance(t, int):  # only the rows the model reads
        return s.op("Add", s.x, s.const(sinusoid_table(t, d), "table", np.float32))
    table = s.const(sinusoid_table(s.args["max_len"], d), "table", np.float32)
    return s.op("Add", s.x, _first_rows(s, table))


def _positional_embedding(s: Site) -> str:
    return s.op("Add", s.x, _first_rows(s, s.param("weight")))


# ---- convolution and pooling --------------------------------------------------------------
def _conv(s: Site) -> str:
    a = s.args
    pads = [before for before, _ in a["padding"]] + [after for _, after in a["padding"]]
    bias = [s.param("bias")] if a["bias"] else []
    return s.op("Conv", s.x, s.param("weight"), *bias, kernel_shape=a["kernel"],
                strides=a["stride"], dilations=a["dilation"], group=a["groups"], pads=pads)


def _conv_transpose(s: Site) -> str:
    a = s.args
    bias = [s.param("bias")] if a["bias"] else []
    return s.op("ConvTranspose", s.x, s.param("weight"), *bias, kernel_shape=a["kernel"],
                strides=a["stride"], pads=a["padding"] * 2, output_padding=a["output_padding"],
                group=a["groups"])


def _pool(op_type: str, **extra: Any) -> Rule:
    def rule(s: Site) -> str:
        a = s.args
        return s.op(op_type, s.x, kernel_shape=a["kernel"], strides=a["stride"],
                    pads=a["padding"] * 2, **extra)
    return rule


def _adaptive_avg_pool(s: Site) -> str:
    """PyTorch's bins [floor(i n / m), ceil((i + 1) n / m)): one average pooling when every
    bin has the same size, otherwise the mean of each bin, one axis at a time (the mean over
    a rectangle is the mean of its rows' means)."""
    sizes, out = s.ins[0].shape[2:], s.args["size"]
    if all(n % m == 0 for n, m in zip(sizes, out, strict=True)):
        kernel = [n // m for n, m in zip(sizes, out, strict=True)]
        return s.op("AveragePool", s.x, kernel_shape=kernel, strides=kernel)
    y = s.x
    for axis, (n, m) in enumerate(zip(sizes, out, strict=True), start=2):
        if n == m:
            continue
        axes = s.const([axis], "axis")
        bins = [(i * n // m, -(-(i + 1) * n // m)) for i in range(m)]
        means = [s.op("ReduceMean", s.op("Slice", y, s.const([lo], "start"),
                                         s.const([hi], "end"), axes, hint=f"bin{axis}"),
                      axes=[axis], keepdims=1, hint=f"mean{axis}") for lo, hi in bins]
        y = s.op("Concat", *means, axis=axis)
    return y


def _global_avg_pool(s: Site) -> str:
    return s.op("ReduceMean", s.x, axes=list(range(2, s.ins[0].rank)), keepdims=0)


# ---- normalisation ------------------------------------------------------------------------
def _batch_norm(s: Site) -> str:
    """Evaluation mode: the running statistics."""
    a = s.args
    if a["affine"]:
        scale, shift = s.param("weight"), s.param("bias")
    else:
        c = a["num_features"]
        scale, shift = s.const(np.ones(c), "ones", np.float32), s.const(np.zeros(c), "zeros",
                                                                        np.float32)
    return s.op("BatchNormalization", s.x, scale, shift, s.param("running_mean"),
                s.param("running_var"), epsilon=a["eps"])


def _layer_norm(s: Site) -> str:
    return s.op("LayerNormalization", s.x, s.param("weight"), s.param("bias"), axis=-1,
                epsilon=s.args["eps"])


# ---- recurrent ----------------------------------------------------------------------------
# ONNX's gate order as PyTorch's gate indices: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h.
_GATES = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}


def _recurrent_weights(s: Site, layer: int, dirs: tuple[str, ...]) -> tuple[str, str, str]:
    """ONNX's W [dirs, g*H, F], R [dirs, g*H, H] and B [dirs, 2*g*H] of one layer, from
    PyTorch's weight_ih/weight_hh/bias_ih/bias_hh with the gates reordered."""
    key = (s.node.layer, layer)
    if key in s.cache:  # a shared layer converts its weights once
        return s.cache[key]
    h, gates = s.args["hidden"], _GATES[s.node.op]
    rows = s.const(np.concatenate([np.arange(k * h, (k + 1) * h) for k in gates]), "gates")
    first = s.const([0], "axis")

    def reordered(name: str) -> str:
        p = s.param(name)
        return p if gates == [0] else s.op("Gather", p, rows, axis=0, hint=f"{name}/gates")

    def stacked(tensors: list[str], hint: str) -> str:
        parts = [s.op("Unsqueeze", t, first, hint=hint) for t in tensors]
        return parts[0] if len(parts) == 1 else s.op("Concat", *parts, axis=0, hint=hint)

    w = stacked([reordered(f"weight_ih_l{layer}{d}") for d in dirs], f"W_l{layer}")
    r = stacked([reordered(f"weight_hh_l{layer}{d}") for d in dirs], f"R_l{layer}")
    b = stacked([s.op("Concat", reordered(f"bias_ih_l{layer}{d}"),
                      reordered(f"bias_hh_l{layer}{d}"), axis=0, hint=f"B_l{layer}{d}")
                 for d in dirs], f"B_l{layer}")
    s.cache[key] = (w, r, b)
    return w, r, b


def _recurrent(s: Site) -> str:
    a = s.args
    dirs = ("", "_reverse") if a["bidirectional"] else ("",)
    merge = s.const([0, 0, -1], "merge")
    x = s.op("Transpose", s.x, perm=[1, 0, 2], hint="time_major")  # (T, B, F)
    for layer in range(a["layers"]):
        y, h_n = s.op(s.node.op, x, *_recurrent_weights(s, layer, dirs), outputs=2,
                      hidden_size=a["hidden"], hint=f"l{layer}",
                      direction="bidirectional" if len(dirs) == 2 else "forward",
                      linear_before_reset=1 if s.node.op == "GRU" else None)
        if layer < a["layers"] - 1 or a["return_sequences"]:
            # (T, dirs, B, H) -> (T, B, dirs * H): the directions side by side
            x = s.op("Reshape", s.op("Transpose", y, perm=[0, 2, 1, 3], hint=f"l{layer}_out"),
                     merge, hint=f"l{layer}_out")
    if a["return_sequences"]:  # (T, B, dirs * H) -> (B, T, dirs * H)
        return s.op("Transpose", x, perm=[1, 0, 2], hint="batch_major")
    # PyTorch's h_n of the last layer: (dirs, B, H) -> (B, dirs * H), forward first
    return s.op("Reshape", s.op("Transpose", h_n, perm=[1, 0, 2]), s.const([0, -1], "merge"))


# ---- attention ----------------------------------------------------------------------------
def _heads(s: Site, x: str, heads: int, perm: list[int], hint: str) -> str:
    """(B, T, E) -> (B, heads, T, E / heads), or another `perm` of (B, T, heads, d)."""
    split = s.op("Reshape", x, s.const([0, 0, heads, -1], "heads"), hint=hint)
    return s.op("Transpose", split, perm=perm, hint=hint)


def _attention_inputs(s: Site) -> list[str]:
    """The projected query, key and value, as nn.MultiheadAttention computes them."""
    a = s.args
    e = a["embed_dim"]
    if a["self_attention"]:  # one fused projection, split in three
        bias = s.param("in_proj_bias") if a["bias"] else None
        qkv = _project(s, s.x, 3, s.param("in_proj_weight"), bias, "in_proj")
        return s.op("Split", qkv, s.const([e, e, e], "split"), axis=-1, outputs=3,
                    hint="qkv")
    out = []
    for i, (x, what) in enumerate(zip(s.xs, "qkv", strict=True)):
        rows = (s.const([i * e], "start"), s.const([(i + 1) * e], "end"), s.const([0], "axis"))
        if "in_proj_weight" in s.params:
            w = s.op("Slice", s.param("in_proj_weight"), *rows, hint=f"{what}_proj_weight")
        else:
            w = s.param(f"{what}_proj_weight")
        bias = s.op("Slice", s.param("in_proj_bias"), *rows[:2], hint=f"{what}_proj_bias") \
            if a["bias"] else None
        out.append(_project(s, x, 3, w, bias, f"{what}_proj"))
    return out


def _multi_head_attention(s: Site) -> str:
    a = s.args
    h, e = a["heads"], a["embed_dim"]
    q, k, v = _attention_inputs(s)
    q = _heads(s, q, h, [0, 2, 1, 3], "q_heads")  # (B, h, Tq, d)
    k = _heads(s, k, h, [0, 2, 3, 1], "k_heads")  # (B, h, d, Tk)
    v = _heads(s, v, h, [0, 2, 1, 3], "v_heads")  # (B, h, Tk, d)
    dtype = s.ins[0].dtype
    scores = s.op("Mul", s.op("MatMul", q, k, hint="scores"),
                  s.scalar(1 / math.sqrt(e // h), dtype), hint="scores")  # (B, h, Tq, Tk)
    if a["causal"]:  # query i sees keys j <= i: -inf above the diagonal (top-left aligned)
        size = s.op("Slice", s.op("Shape", scores, hint="mask"), s.const([2], "start"),
                    s.const([4], "end"), hint="mask")
        fill = numpy_helper.from_array(np.array([-np.inf], NUMPY.get(dtype, np.float32)))
        full = s.op("ConstantOfShape", size, value=fill, hint="mask")
        scores = s.op("Add", scores, s.op("Trilu", full, s.const(1, "diagonal"), upper=1,
                                          hint="mask"), hint="masked")
    weights = s.op("Softmax", scores, axis=-1)
    o = s.op("Transpose", s.op("MatMul", weights, v, hint="context"), perm=[0, 2, 1, 3],
             hint="context")  # (B, Tq, h, d)
    o = s.op("Reshape", o, s.const([0, 0, e], "merge"), hint="context")  # (B, Tq, E)
    bias = s.param("out_proj.bias") if a["bias"] else None
    return _project(s, o, 3, s.param("out_proj.weight"), bias, "out_proj")


def _additive_attention(s: Site) -> str:
    """score_t = w . tanh(Wq q + Wk v_t + b); softmax over t; the weighted sum of v_t."""
    q, v = s.xs
    qp = _project(s, q, 2, s.param("query_proj.weight"), None, "query_proj")  # (B, U)
    kp = _project(s, v, 3, s.param("key_proj.weight"), s.param("key_proj.bias"),
                  "key_proj")  # (B, T, U)
    hidden = s.op("Tanh", s.op("Add", s.op("Unsqueeze", qp, s.const([1], "axis")), kp))
    scores = _project(s, hidden, 3, s.param("score.weight"), None, "score")  # (B, T, 1)
    weights = s.op("Transpose", s.op("Softmax", scores, axis=1), perm=[0, 2, 1])  # (B, 1, T)
    return s.op("Squeeze", s.op("MatMul", weights, v), s.const([1], "axis"))  # (B, E)


# ---- activations --------------------------------------------------------------------------
def _unary(op_type: str) -> Rule:
    return lambda s: s.op(op_type, s.x)


def _gelu(s: Site) -> str:
    """PyTorch's formulas: x/2 (1 + erf(x / sqrt 2)), or with tanh, x/2 (1 + tanh(sqrt(2/pi)
    (x + 0.044715 x^3))). Opset 17 has no Gelu op; Erf and Tanh make it exactly."""
    dtype, x = s.ins[0].dtype, s.x
    if s.args.get("approximate", "none") == "tanh":
        cube = s.op("Mul", s.op("Mul", x, x), x)
        inner = s.op("Add", x, s.op("Mul", cube, s.scalar(0.044715, dtype)))
        curve = s.op("Tanh", s.op("Mul", inner, s.scalar(math.sqrt(2 / math.pi), dtype)))
    else:
        curve = s.op("Erf", s.op("Mul", x, s.scalar(1 / math.sqrt(2), dtype)))
    half = s.op("Mul", x, s.scalar(0.5, dtype))
    return s.op("Mul", half, s.op("Add", curve, s.scalar(1.0, dtype)))


def _silu(s: Site) -> str:
    return s.op("Mul", s.x, s.op("Sigmoid", s.x))


def _leaky_relu(s: Site) -> str:
    return s.op("LeakyRelu", s.x, alpha=s.args["slope"])


def _softmax(s: Site) -> str:
    return s.op("Softmax", s.x, axis=s.args["dim"])


def _alias(s: Site) -> str:
    """Dropout and Identity: the input itself in evaluation."""
    return s.x


# ---- shape --------------------------------------------------------------------------------
def _reshape(s: Site) -> str:
    """The target shape with known sizes as numbers, a size kept from the same axis of the
    input as 0 (ONNX's "copy"), one other symbolic size as -1 and the rest computed."""
    src, dst = s.ins[0].shape, s.out.shape
    kept = [i < len(src) and not isinstance(d, int) and src[i] == d for i, d in enumerate(dst)]
    free = [i for i, d in enumerate(dst) if not isinstance(d, int) and not kept[i]]
    dims: list[Any] = [d if isinstance(d, int) else 0 if kept[i] else -1 if free == [i]
                       else s.b.dim(d) for i, d in enumerate(dst)]
    return s.op("Reshape", s.x, s.b.shape(dims, f"{s.base}/shape"))


def _expand(s: Site) -> str:
    src, dst = s.ins[0].shape, s.out.shape
    lead = len(dst) - len(src)
    dims = [1 if i >= lead and src[i - lead] == d else d if isinstance(d, int) else s.b.dim(d)
            for i, d in enumerate(dst)]
    return s.op("Expand", s.x, s.b.shape(dims, f"{s.base}/shape"))


def _transpose(s: Site) -> str:
    perm = list(range(s.ins[0].rank))
    i, j = s.args["dim0"], s.args["dim1"]
    perm[i], perm[j] = perm[j], perm[i]
    return s.op("Transpose", s.x, perm=perm)


def _reduce(op_type: str) -> Rule:
    """ReduceMean takes its axes as an attribute in opset 17, ReduceSum as an input; a sum of
    integers or booleans is int64, as torch.sum's."""
    def rule(s: Site) -> str:
        dims, keep = s.args["dim"], int(s.args["keepdim"])
        x = s.cast(s.x, s.ins[0].dtype, s.out.dtype)
        if op_type == "ReduceMean":
            return s.op(op_type, x, axes=dims, keepdims=keep)
        axes = [] if dims is None else [s.const(dims, "axes")]
        return s.op(op_type, x, *axes, keepdims=keep)
    return rule


def _getitem(s: Site) -> str:
    """One Slice for every slice and integer index (an integer i as [i, i + 1)), then a
    Squeeze of the integer-indexed axes."""
    starts, ends, axes, steps, drop = [], [], [], [], []
    for axis, item in enumerate(s.args["index"]):
        if isinstance(item, int):
            start, stop, step = item, item + 1 if item != -1 else END, 1
            drop.append(axis)
        else:
            start, stop, step = item
            if start is None and stop is None and step in (None, 1):
                continue
        starts.append(0 if start is None else start)
        ends.append(END if stop is None else stop)
        axes.append(axis)
        steps.append(1 if step is None else step)
    if not axes:
        return s.x
    y = s.op("Slice", s.x, s.const(starts, "starts"), s.const(ends, "ends"),
             s.const(axes, "axes"), s.const(steps, "steps"))
    return s.op("Squeeze", y, s.const(drop, "drop")) if drop else y


# ---- arithmetic ---------------------------------------------------------------------------
_ARITHMETIC = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div"}
_LOGICAL = {"add": "Or", "mul": "And"}  # PyTorch's + and * of two bool tensors


def _arithmetic(s: Site) -> str:
    """Operands are cast to the result's dtype first, as PyTorch's type promotion computes
    (an integer tensor times 0.5, or divided by anything, is f32)."""
    op, dtype = s.node.op, s.out.dtype
    if dtype == "bool":  # the checker lets only + and * of two bool tensors stay bool
        return s.op(_LOGICAL[op], *s.xs)
    xs = [s.cast(x, t.dtype, dtype) for x, t in zip(s.xs, s.ins, strict=True)]
    if len(xs) == 1:
        c = s.scalar(s.args["scalar"], dtype)
        xs = [c, xs[0]] if s.args["scalar_first"] else [xs[0], c]
    return s.op(_ARITHMETIC[op], *xs)


def _neg(s: Site) -> str:
    return s.op("Neg", s.x)  # the checker refuses `-` of a bool tensor, as PyTorch does


LOWER: dict[str, Rule] = {
    "Linear": _linear,
    "Embedding": _embedding,
    "PositionalEncoding": _positional_encoding,
    "PositionalEmbedding": _positional_embedding,
    "Parameter": lambda s: s.param(""),
    "param": lambda s: s.param(s.args["name"]),
    "Conv1d": _conv,
    "Conv2d": _conv,
    "ConvTranspose2d": _conv_transpose,
    "MaxPool1d": _pool("MaxPool"),
    "MaxPool2d": _pool("MaxPool"),
    "AvgPool1d": _pool("AveragePool", count_include_pad=1),
    "AvgPool2d": _pool("AveragePool", count_include_pad=1),
    "AdaptiveAvgPool2d": _adaptive_avg_pool,
    "GlobalAvgPool": _global_avg_pool,
    "BatchNorm1d": _batch_norm,
    "BatchNorm2d": _batch_norm,
    "LayerNorm": _layer_norm,
    "RNN": _recurrent,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "MultiHeadAttention": _multi_head_attention,
    "AdditiveAttention": _additive_attention,
    "ReLU": _unary("Relu"),
    "relu": _unary("Relu"),
    "LeakyReLU": _leaky_relu,
    "GELU": _gelu,
    "gelu": _gelu,
    "Tanh": _unary("Tanh"),
    "tanh": _unary("Tanh"),
    "Sigmoid": _unary("Sigmoid"),
    "sigmoid": _unary("Sigmoid"),
    "SiLU": _silu,
    "silu": _silu,
    "Softmax": _softmax,
    "softmax": _softmax,
    "Dropout": _alias,
    "Identity": _alias,
    "Flatten": lambda s: s.op("Flatten", s.x, axis=1),
    "Reshape": _reshape,
    "reshape": _reshape,
    "transpose": _transpose,
    "permute": lambda s: s.op("Transpose", s.x, perm=s.args["dims"]),
    "expand": _expand,
    "concat": lambda s: s.op("Concat", *s.xs, axis=s.args["dim"]),
    "mean": _reduce("ReduceMean"),
    "sum": _reduce("ReduceSum"),
    "getitem": _getitem,
    "add": _arithmetic,
    "sub": _arithmetic,
    "mul": _arithmetic,
    "div": _arithmetic,
    "neg": _neg,
    "matmul": lambda s: s.op("MatMul", *s.xs),
}
