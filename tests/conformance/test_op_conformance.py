"""Every op of the registry in isolation, with its edge cases, in every backend against the
float64 NumPy reference at the single-op tolerance of docs/verify.md."""

from __future__ import annotations

import re

import pytest

import archdsl
from archdsl.api import BACKENDS
from archdsl.ops.registry import REGISTRY
from archdsl.verify import SINGLE_OP, run

# (id, inputs, body). Inputs are `name: type` separated by `;`. The body is an expression
# (the output `y`) or, when a line starts with `output`, the statements of the model.
TABLE = [
    # ---- dense --------------------------------------------------------------------------
    ("Linear", "x: [B, 6]", "x |> Linear(4)"),
    ("Linear rank 3 no bias", "x: [B, 3, 6]", "x |> Linear(4, bias=false)"),
    ("Embedding i64", "t: i64[B, 5]", "t |> Embedding(7, 4)"),
    ("Embedding i32 rank 1", "t: i32[B]", "t |> Embedding(5, 3)"),
    ("PositionalEncoding", "x: [B, 5, 6]", "x |> PositionalEncoding(max_len=16)"),
    ("PositionalEncoding odd width", "x: [B, 4, 5]", "x |> PositionalEncoding"),
    ("PositionalEmbedding", "x: [B, 5, 4]", "x |> PositionalEmbedding(8)"),
    ("Parameter class token", "x: [B, 3, 4]",
     "cls = Parameter([1, 1, 4])\noutput y = concat([expand(cls, [B, 1, 4]), x], dim=1)"),
    ("Parameter zeros added", "x: [B, 3, 4]", "x + Parameter([3, 4], init=\"zeros\")"),
    ("tied weights", "t: i64[B, 4]",
     "e = Embedding(6, 5)\nh = t |> e\noutput y = h @ transpose(e.weight, 0, 1)"),
    # The loss sees the first output only: the second head gets no gradient, and SGD's and
    # Adam's weight decay leave it be, as PyTorch skips a parameter whose .grad is None.
    ("two outputs, loss on the first", "x: [B, 4]",
     "h = x |> Linear(6)\noutput a = h |> Linear(3)\noutput b = h |> Linear(2)"),
    # ---- convolution --------------------------------------------------------------------
    ("Conv1d", "x: [B, 3, 8]", "x |> Conv1d(4, 3)"),
    ("Conv1d stride 2 same odd", "x: [B, 3, 7]", "x |> Conv1d(4, 3, stride=2, padding=\"same\")"),
    ("Conv1d stride 2 same even", "x: [B, 3, 8]",
     "x |> Conv1d(4, 4, stride=2, padding=\"same\")"),
    ("Conv1d dilation same", "x: [B, 2, 8]", "x |> Conv1d(3, 3, dilation=2, padding=\"same\")"),
    ("Conv1d even kernel same", "x: [B, 2, 7]", "x |> Conv1d(3, 4, padding=\"same\")"),
    ("Conv1d groups valid", "x: [B, 4, 7]",
     "x |> Conv1d(6, 3, groups=2, padding=\"valid\", bias=false)"),
    ("Conv2d padding 1", "x: [B, 3, 6, 6]", "x |> Conv2d(4, 3, padding=1)"),
    ("Conv2d stride 2 same odd", "x: [B, 3, 7, 7]",
     "x |> Conv2d(4, 3, stride=2, padding=\"same\")"),
    ("Conv2d stride 2 same even", "x: [B, 3, 8, 8]",
     "x |> Conv2d(4, 3, stride=2, padding=\"same\")"),
    ("Conv2d even kernel same", "x: [B, 2, 6, 5]", "x |> Conv2d(3, 4, padding=\"same\")"),
    ("Conv2d stride 3 same kernel 2", "x: [B, 2, 7, 8]",
     "x |> Conv2d(3, 2, stride=3, padding=\"same\")"),
    ("Conv2d groups", "x: [B, 4, 6, 6]", "x |> Conv2d(6, 3, groups=2, padding=1)"),
    ("Conv2d depthwise", "x: [B, 3, 6, 6]", "x |> Conv2d(6, 3, groups=3, padding=1)"),
    ("Conv2d dilation", "x: [B, 2, 7, 7]", "x |> Conv2d(3, 3, dilation=2)"),
    ("Conv2d dilation stride 2 same", "x: [B, 2, 7, 6]",
     "x |> Conv2d(3, 3, stride=2, dilation=2, padding=\"same\")"),
    ("Conv2d tuples no bias", "x: [B, 2, 7, 6]",
     "x |> Conv2d(3, (3, 2), stride=(2, 1), padding=(1, 0), bias=false)"),
    ("ConvTranspose2d", "x: [B, 3, 4, 4]", "x |> ConvTranspose2d(2, 3)"),
    ("ConvTranspose2d stride 2 output_padding", "x: [B, 3, 4, 5]",
     "x |> ConvTranspose2d(2, 3, stride=2, padding=1, output_padding=1)"),
    ("ConvTranspose2d groups tuples", "x: [B, 4, 3, 4]",
     "x |> ConvTranspose2d(6, (4, 3), stride=(2, 3), padding=(1, 0), output_padding=(0, 2), "
     "groups=2, bias=false)"),
    # ---- pooling --------------------------------------------------------------------------
    ("MaxPool1d", "x: [B, 3, 8]", "x |> MaxPool1d(2)"),
    ("MaxPool1d padding stride", "x: [B, 3, 7]", "x |> MaxPool1d(3, stride=2, padding=1)"),
    ("MaxPool2d floor odd", "x: [B, 2, 7, 7]", "x |> MaxPool2d(2)"),
    ("MaxPool2d padding", "x: [B, 2, 6, 7]", "x |> MaxPool2d(3, stride=2, padding=1)"),
    ("AvgPool1d count_include_pad", "x: [B, 3, 7]", "x |> AvgPool1d(3, stride=2, padding=1)"),
    ("AvgPool2d floor odd", "x: [B, 2, 7, 7]", "x |> AvgPool2d(2)"),
    ("AvgPool2d padding count_include_pad", "x: [B, 2, 6, 7]",
     "x |> AvgPool2d(3, stride=2, padding=1)"),
    ("AvgPool2d tuples", "x: [B, 2, 7, 6]",
     "x |> AvgPool2d((3, 2), stride=(2, 1), padding=(1, 0))"),
    ("MaxPool2d tuples", "x: [B, 2, 6, 7]",
     "x |> MaxPool2d((2, 3), stride=(1, 2), padding=(1, 1))"),
    ("MaxPool1d stride above kernel", "x: [B, 2, 8]", "x |> MaxPool1d(2, stride=3)"),
    ("AvgPool2d stride above kernel", "x: [B, 2, 5, 6]", "x |> AvgPool2d(1, stride=2)"),
    ("MaxPool2d stride above kernel on one axis", "x: [B, 2, 6, 7]",
     "x |> MaxPool2d((2, 1), stride=2, padding=(1, 0))"),
    ("AdaptiveAvgPool2d uneven bins", "x: [B, 2, 7, 5]", "x |> AdaptiveAvgPool2d(3)"),
    ("AdaptiveAvgPool2d 1", "x: [B, 2, 5, 5]", "x |> AdaptiveAvgPool2d(1)"),
    ("AdaptiveAvgPool2d overlapping bins", "x: [B, 2, 3, 5]", "x |> AdaptiveAvgPool2d(4)"),
    ("GlobalAvgPool 2d", "x: [B, 3, 5, 4]", "x |> GlobalAvgPool"),
    ("GlobalAvgPool 1d", "x: [B, 3, 6]", "x |> GlobalAvgPool"),
    # ---- normalisation ----------------------------------------------------------------------
    ("BatchNorm1d features", "x: [6, 5]", "x |> BatchNorm1d"),
    ("BatchNorm1d sequence eps momentum", "x: [B, 3, 6]",
     "x |> BatchNorm1d(eps=1e-3, momentum=0.3)"),
    ("BatchNorm2d", "x: [B, 3, 5, 5]", "x |> BatchNorm2d"),
    ("BatchNorm2d eps momentum", "x: [B, 3, 4, 5]", "x |> BatchNorm2d(eps=0.1, momentum=0.5)"),
    ("BatchNorm2d no affine", "x: [B, 3, 5, 4]", "x |> BatchNorm2d(affine=false)"),
    ("LayerNorm", "x: [B, 6]", "x |> LayerNorm"),
    ("LayerNorm eps rank 3", "x: [B, 3, 5]", "x |> LayerNorm(eps=0.1)"),
    # ---- recurrent ----------------------------------------------------------------------------
    ("RNN", "x: [B, 4, 3]", "x |> RNN(5)"),
    ("RNN bidirectional 2 layers last", "x: [B, 4, 3]",
     "x |> RNN(4, layers=2, bidirectional=true, return_sequences=false)"),
    ("LSTM", "x: [B, 4, 3]", "x |> LSTM(5)"),
    ("LSTM bidirectional", "x: [B, 4, 3]", "x |> LSTM(4, bidirectional=true)"),
    ("LSTM 2 layers dropout", "x: [B, 4, 3]", "x |> LSTM(4, layers=2, dropout=0.3)"),
    ("LSTM bidirectional 2 layers last", "x: [B, 5, 3]",
     "x |> LSTM(3, layers=2, bidirectional=true, return_sequences=false)"),
    ("LSTM last", "x: [B, 4, 3]", "x |> LSTM(5, return_sequences=false)"),
    ("GRU", "x: [B, 4, 3]", "x |> GRU(5)"),
    ("GRU bidirectional", "x: [B, 4, 3]", "x |> GRU(4, bidirectional=true)"),
    ("GRU bidirectional 2 layers last", "x: [B, 5, 3]",
     "x |> GRU(3, layers=2, bidirectional=true, return_sequences=false)"),
    # ---- attention -----------------------------------------------------------------------------
    ("MultiHeadAttention self", "x: [B, 4, 6]", "x |> MultiHeadAttention(2)"),
    ("MultiHeadAttention causal", "x: [B, 5, 4]", "x |> MultiHeadAttention(2, causal=true)"),
    ("MultiHeadAttention no bias one head", "x: [B, 3, 4]",
     "x |> MultiHeadAttention(1, bias=false)"),
    ("MultiHeadAttention cross", "q: [B, 3, 4]; kv: [B, 5, 4]",
     "MultiHeadAttention(2)(q, kv, kv)"),
    ("MultiHeadAttention cross causal", "q: [B, 5, 4]; kv: [B, 3, 4]",
     "MultiHeadAttention(2, causal=true)(q, kv, kv)"),
    ("MultiHeadAttention cross widths", "q: [B, 3, 4]; k: [B, 5, 6]; v: [B, 5, 3]",
     "MultiHeadAttention(2)(q, k, v)"),
    ("MultiHeadAttention one step", "q: [B, 1, 4]; kv: [B, 4, 4]",
     "MultiHeadAttention(4, causal=true)(q, kv, kv)"),
    ("MultiHeadAttention dropout", "x: [B, 4, 4]", "x |> MultiHeadAttention(2, dropout=0.2)"),
    ("AdditiveAttention", "q: [B, 4]; v: [B, 5, 3]", "AdditiveAttention(6)(q, v)"),
    # ---- activations --------------------------------------------------------------------------
    ("ReLU", "x: [B, 3, 4]", "x |> ReLU"),
    ("relu", "x: [B, 5]", "relu(x)"),
    ("LeakyReLU", "x: [B, 5]", "x |> LeakyReLU"),
    ("LeakyReLU slope", "x: [B, 3, 4]", "x |> LeakyReLU(slope=0.2)"),
    ("GELU", "x: [B, 5]", "x |> GELU"),
    ("GELU tanh", "x: [B, 5]", "x |> GELU(approximate=\"tanh\")"),
    ("gelu", "x: [B, 5]", "gelu(x)"),
    ("gelu tanh", "x: [B, 5]", "gelu(x, approximate=\"tanh\")"),
    ("Tanh", "x: [B, 5]", "x |> Tanh"),
    ("tanh", "x: [B, 5]", "tanh(x)"),
    ("Sigmoid", "x: [B, 5]", "x |> Sigmoid"),
    ("sigmoid", "x: [B, 5]", "sigmoid(x)"),
    ("SiLU", "x: [B, 5]", "x |> SiLU"),
    ("silu", "x: [B, 5]", "silu(x)"),
    ("Identity", "x: [B, 5]", "x |> Identity"),
    ("Softmax", "x: [B, 3, 5]", "x |> Softmax"),
    ("Softmax dim 1", "x: [B, 3, 5]", "x |> Softmax(dim=1)"),
    ("softmax dim 0", "x: [B, 5]", "softmax(x, dim=0)"),
    ("Dropout", "x: [B, 5]", "x |> Dropout(0.3)"),
    # ---- arithmetic -----------------------------------------------------------------------------
    ("add broadcast", "a: [B, 3, 1]; b: [4]", "a + b"),
    ("add scalar first", "x: [B, 4]", "1.5 + x"),
    ("sub broadcast", "a: [B, 1, 4]; b: [3, 1]", "a - b"),
    ("sub scalar first", "x: [B, 4]", "2 - x"),
    ("sub scalar", "x: [B, 4]", "x - 0.5"),
    ("mul broadcast", "a: [B, 3, 4]; b: [B, 1, 4]", "a * b"),
    ("mul scalar", "x: [B, 4]", "x * 0.5"),
    ("div", "a: [B, 3, 4]; b: [3, 1]", "a / (sigmoid(b) + 0.5)"),
    ("div scalar first", "x: [B, 4]", "2.0 / (sigmoid(x) + 0.5)"),
    ("div scalar", "x: [B, 4]", "x / 4"),
    ("neg", "x: [B, 4]", "-x"),
    ("matmul batched", "a: [B, 3, 4]; b: [B, 4, 5]", "a @ b"),
    ("matmul broadcast batch", "a: [B, 1, 3, 4]; b: [2, 4, 5]", "a @ b"),
    ("matmul vector", "a: [B, 3, 4]; b: [4]", "a @ b"),
    ("matmul vector left", "a: [4]; b: [B, 4, 3]", "a @ b"),
    ("residual", "x: [B, 4]", "x + (x |> Linear(4) |> ReLU)"),
    # ---- shape ----------------------------------------------------------------------------------
    ("Flatten", "x: [B, 3, 4, 2]", "x |> Flatten"),
    ("Reshape", "x: [B, 12]", "x |> Reshape(3, 2, 2)"),
    ("Reshape inferred", "x: [B, 3, 4]", "x |> Reshape(-1, 2)"),
    ("reshape", "x: [B, 3, 4]", "reshape(x, [B, -1])"),
    ("reshape all", "x: [B, 3, 4]", "reshape(x, [4, -1, 3])"),
    ("transpose", "x: [B, 3, 4]", "transpose(x, 1, 2)"),
    ("transpose negative", "x: [B, 3, 4, 2]", "transpose(x, -1, 0)"),
    ("permute", "x: [B, 3, 4, 2]", "permute(x, [0, 2, 3, 1])"),
    ("expand", "x: [B, 1, 4]", "expand(x, [B, 3, 4])"),
    ("expand new dims", "x: [3, 1]", "expand(x, [2, -1, 4])"),
    ("concat dim 1", "a: [B, 2, 4]; b: [B, 3, 4]", "concat([a, b], dim=1)"),
    ("concat default dim 0", "a: [2, 4]; b: [3, 4]", "concat([a, b])"),
    ("concat three negative dim", "a: [B, 3, 2]; b: [B, 3, 1]; c: [B, 3, 3]",
     "concat([a, b, c], dim=-1)"),
    ("mean", "x: [B, 3, 4]", "mean(x, 1)"),
    ("mean all", "x: [B, 3, 4]", "mean(x)"),
    ("mean dims keepdim", "x: [B, 3, 4, 2]", "mean(x, dim=[1, -1], keepdim=true)"),
    ("sum", "x: [B, 3, 4]", "sum(x, dim=-1)"),
    ("sum all", "x: [B, 3, 4]", "sum(x)"),
    ("sum dims keepdim", "x: [B, 3, 4, 2]", "sum(x, dim=[2, 3], keepdim=true)"),
    ("index last", "x: [B, 5, 3]", "x[:, -1]"),
    ("index slice", "x: [B, 6, 3]", "x[:, 0:4]"),
    ("index step", "x: [B, 7, 3]", "x[:, 1:6:2, 1:]"),
    ("index integers", "x: [B, 4, 3]", "x[1, :, -2]"),
    ("index negative slice", "x: [B, 6]", "x[:, -4:-1]"),
]


def spec(inputs: str, body: str) -> str:
    lines = [f"    input {i.strip()}" for i in inputs.split(";")]
    stmts = body if re.search(r"^output ", body, re.M) else f"output y = {body}"
    lines += [f"    {s}" for s in stmts.splitlines()]
    return "model Row {\n" + "\n".join(lines) + "\n}\n"


def graph(inputs: str, body: str):
    return archdsl.load(spec(inputs, body)).graph()


def test_every_registered_op_has_a_row():
    used = {n.op for _, inputs, body in TABLE for n in graph(inputs, body).nodes}
    missing = sorted(set(REGISTRY) - used)
    assert not missing, f"ops without a conformance row: {', '.join(missing)}"


@pytest.mark.parametrize(("inputs", "body"), [r[1:] for r in TABLE], ids=[r[0] for r in TABLE])
def test_op_matches_the_reference(inputs, body):
    report = run(graph(inputs, body), list(BACKENDS), loss="mse", tolerances=SINGLE_OP)
    assert not report.errors, report.errors
    bad = [r for r in report.rows if not r.ok]
    assert not bad, "\n".join(f"{r.check} {r.backend} {r.name}: {r.max_rel:.2e}" for r in bad)
