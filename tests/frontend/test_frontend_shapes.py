"""Shape rules: for every op a user can write, cases that pass (input types -> output type,
parameter shapes in PyTorch's layout) and cases that fail (the code, and the shapes the
diagnostic must name). Expected values are worked out by hand, never by asking archdsl.

Also: symbolic dimensions, JSON round trips, shared layers, the paths of repeats and loops,
the gan pairing rule and `if` decided at compile time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from contract import EXAMPLE_FILES

import archdsl
from archdsl.graph import GanGraph, Graph
from archdsl.ops import REGISTRY
from archdsl.symbolic import Sym

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.arch")) + EXAMPLE_FILES

Shapes = dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class Ok:
    op: str
    inputs: dict[str, str]  # name -> type, as a spec writes it
    expr: str  # the output's expression
    out: str  # "dtype[shape]"
    params: Shapes | None = None  # of the op's layer, by parameter name ("" for Parameter)
    buffers: Shapes | None = None
    args: dict[str, Any] = field(default_factory=dict)  # subset of the normalized arguments
    pre: str = ""  # statements before the output

    @property
    def id(self) -> str:
        return f"{self.op}: {self.expr}"


@dataclass(frozen=True)
class Bad:
    op: str
    inputs: dict[str, str]
    expr: str
    code: str
    shows: tuple[str, ...]  # text the diagnostic's message or label must contain
    pre: str = ""

    @property
    def id(self) -> str:
        return f"{self.op}: {self.expr}"


X4 = {"x": "[B, 4]"}
IDS = {"x": "i64[B, 4]"}
SEQ = {"x": "[B, T, 16]"}
IMG = {"x": "[B, 3, 8, 8]"}

PASSING = [
    # ---- dense --------------------------------------------------------------------------
    Ok("Linear", SEQ, "x |> Linear(4)", "f32[B, T, 4]", {"weight": (4, 16), "bias": (4,)},
       args={"in": 16, "out": 4}),
    Ok("Linear", X4, "x |> Linear(3, bias=false)", "f32[B, 3]", {"weight": (3, 4)}),
    Ok("Embedding", {"x": "i64[B, T]"}, "x |> Embedding(100, 8)", "f32[B, T, 8]",
       {"weight": (100, 8)}),
    Ok("Embedding", {"x": "i32[B]"}, "x |> Embedding(10, 3)", "f32[B, 3]", {"weight": (10, 3)}),
    Ok("PositionalEncoding", SEQ, "x |> PositionalEncoding", "f32[B, T, 16]", {},
       args={"max_len": 5000, "dim": 16}),
    Ok("PositionalEncoding", {"x": "[B, 10, 16]"}, "x |> PositionalEncoding(max_len=10)",
       "f32[B, 10, 16]", {}),
    Ok("PositionalEmbedding", SEQ, "x |> PositionalEmbedding(64)", "f32[B, T, 16]",
       {"weight": (64, 16)}),
    Ok("Parameter", X4, "x + Parameter([1, 4])", "f32[B, 4]", {"": (1, 4)}),
    Ok("Parameter", X4, "x + cls", "f32[B, 4]", {"": (1, 4)},
       pre="cls = Parameter([1, 4], init=\"zeros\")", args={"init": "zeros"}),
    # ---- convolution --------------------------------------------------------------------
    Ok("Conv2d", {"x": "[B, 3, 32, 32]"}, "x |> Conv2d(16, 3, padding=1)", "f32[B, 16, 32, 32]",
       {"weight": (16, 3, 3, 3), "bias": (16,)}),
    # span 2*(3-1)+1 = 5: (10 - 5)//2 + 1 = 3
    Ok("Conv2d", {"x": "[B, 4, 10, 10]"},
       "x |> Conv2d(8, 3, stride=2, dilation=2, groups=2, bias=false)", "f32[B, 8, 3, 3]",
       {"weight": (8, 2, 3, 3)}),
    # "same", stride 1, even kernel: total padding 3, the extra one after
    Ok("Conv2d", {"x": "[B, 1, 7, 7]"}, 'x |> Conv2d(2, 4, padding="same")', "f32[B, 2, 7, 7]",
       args={"padding": [[1, 2], [1, 2]]}),
    # "same", stride 1, dilation 2: span 5, total 4
    Ok("Conv2d", {"x": "[B, 1, 9, 9]"}, 'x |> Conv2d(2, 3, padding="same", dilation=2)',
       "f32[B, 2, 9, 9]", args={"padding": [[2, 2], [2, 2]]}),
    # "same", stride 2, odd size 7: ceil(7/2) = 4, total (4-1)*2 + 3 - 7 = 2
    Ok("Conv2d", {"x": "[B, 1, 7, 7]"}, 'x |> Conv2d(2, 3, stride=2, padding="same")',
       "f32[B, 2, 4, 4]", args={"padding": [[1, 1], [1, 1]]}),
    # "same", stride 2, even size 8: ceil(8/2) = 4, total 3*2 + 3 - 8 = 1, after
    Ok("Conv2d", {"x": "[B, 1, 8, 8]"}, 'x |> Conv2d(2, 3, stride=2, padding="same")',
       "f32[B, 2, 4, 4]", args={"padding": [[0, 1], [0, 1]]}),
    # "same", stride 2, mixed sizes 8 x 7 and a (3, 1) kernel: totals 1 and 0
    Ok("Conv2d", {"x": "[B, 1, 8, 7]"},
       'x |> Conv2d(2, (3, 1), stride=2, padding="same")', "f32[B, 2, 4, 4]",
       args={"padding": [[0, 1], [0, 0]]}),
    Ok("Conv2d", {"x": "[B, 1, 8, 8]"}, 'x |> Conv2d(2, 3, padding="valid")', "f32[B, 2, 6, 6]",
       args={"padding": [[0, 0], [0, 0]]}),
    Ok("Conv2d", {"x": "[B, 3, H, W]"}, "x |> Conv2d(4, 3, stride=2, padding=1)",
       "f32[B, 4, (H + 1)//2, (W + 1)//2]", {"weight": (4, 3, 3, 3), "bias": (4,)}),
    # (H + 8 - 8 - 1)//3 + 1 = (H + 2)//3
    Ok("Conv2d", {"x": "[B, 3, H, W]"}, "x |> Conv2d(4, 5, stride=3, padding=4, dilation=2)",
       "f32[B, 4, (H + 2)//3, (W + 2)//3]"),
    Ok("Conv2d", {"x": "[B, 3, H, W]"}, "x |> Conv2d(4, 3)", "f32[B, 4, H - 2, W - 2]"),
    Ok("Conv2d", {"x": "[B, 3, H, W]"}, 'x |> Conv2d(4, 3, padding="same")', "f32[B, 4, H, W]"),
    Ok("Conv1d", {"x": "[B, 4, 10]"}, "x |> Conv1d(6, 3, stride=2, padding=1)", "f32[B, 6, 5]",
       {"weight": (6, 4, 3), "bias": (6,)}),
    # "same", stride 2, odd size 9, kernel 4: ceil(9/2) = 5, total 4*2 + 4 - 9 = 3
    Ok("Conv1d", {"x": "[B, 2, 9]"}, 'x |> Conv1d(2, 4, stride=2, padding="same")',
       "f32[B, 2, 5]", args={"padding": [[1, 2]]}),
    Ok("Conv1d", {"x": "[B, 4, T]"}, "x |> Conv1d(8, 3, padding=1, groups=4)", "f32[B, 8, T]",
       {"weight": (8, 1, 3), "bias": (8,)}),
    Ok("ConvTranspose2d", {"x": "[B, 8, 7, 7]"}, "x |> ConvTranspose2d(4, 4, stride=2, padding=1)",
       "f32[B, 4, 14, 14]", {"weight": (8, 4, 4, 4), "bias": (4,)}),
    # (5 - 1)*2 - 2 + 3 + 1 = 10; weight [in, out/groups, kh, kw]
    Ok("ConvTranspose2d", {"x": "[B, 8, 5, 5]"},
       "x |> ConvTranspose2d(4, 3, stride=2, padding=1, output_padding=1, groups=2, bias=false)",
       "f32[B, 4, 10, 10]", {"weight": (8, 2, 3, 3)}),
    Ok("ConvTranspose2d", {"x": "[B, 3, H, W]"},
       "x |> ConvTranspose2d(2, 4, stride=2, padding=1)", "f32[B, 2, 2*H, 2*W]"),
    # ---- pooling ------------------------------------------------------------------------
    Ok("MaxPool2d", {"x": "[B, 3, 9, 9]"}, "x |> MaxPool2d(2)", "f32[B, 3, 4, 4]", {},
       args={"stride": [2, 2]}),
    Ok("MaxPool2d", IMG, "x |> MaxPool2d(3, stride=2, padding=1)", "f32[B, 3, 4, 4]"),
    Ok("MaxPool2d", {"x": "[B, 3, H, W]"}, "x |> MaxPool2d(2)", "f32[B, 3, H//2, W//2]"),
    Ok("MaxPool1d", {"x": "[B, 2, 7]"}, "x |> MaxPool1d(2)", "f32[B, 2, 3]"),
    Ok("AvgPool1d", {"x": "[B, 2, 10]"}, "x |> AvgPool1d(3, stride=1)", "f32[B, 2, 8]"),
    Ok("AvgPool2d", {"x": "[B, 1, 8, 9]"}, "x |> AvgPool2d(kernel=(2, 3))", "f32[B, 1, 4, 3]"),
    Ok("AvgPool2d", {"x": "[B, 3, H, W]"}, "x |> AvgPool2d(3, stride=2, padding=1)",
       "f32[B, 3, (H + 1)//2, (W + 1)//2]"),
    Ok("AdaptiveAvgPool2d", {"x": "[B, 8, 7, 7]"}, "x |> AdaptiveAvgPool2d(1)",
       "f32[B, 8, 1, 1]"),
    Ok("AdaptiveAvgPool2d", {"x": "[B, 8, 7, 9]"}, "x |> AdaptiveAvgPool2d((2, 3))",
       "f32[B, 8, 2, 3]"),
    Ok("GlobalAvgPool", {"x": "[B, 8, 5, 5]"}, "x |> GlobalAvgPool", "f32[B, 8]", {}),
    Ok("GlobalAvgPool", {"x": "[B, 8, T]"}, "x |> GlobalAvgPool", "f32[B, 8]"),
    # ---- normalisation ------------------------------------------------------------------
    Ok("BatchNorm1d", {"x": "[B, 8]"}, "x |> BatchNorm1d", "f32[B, 8]",
       {"weight": (8,), "bias": (8,)},
       {"running_mean": (8,), "running_var": (8,), "num_batches_tracked": ()}),
    Ok("BatchNorm1d", {"x": "[B, 8, T]"}, "x |> BatchNorm1d(momentum=0.01)", "f32[B, 8, T]",
       args={"momentum": 0.01, "num_features": 8}),
    Ok("BatchNorm2d", {"x": "[B, 8, H, W]"}, "x |> BatchNorm2d", "f32[B, 8, H, W]",
       {"weight": (8,), "bias": (8,)},
       {"running_mean": (8,), "running_var": (8,), "num_batches_tracked": ()}),
    Ok("BatchNorm2d", IMG, "x |> BatchNorm2d(affine=false)", "f32[B, 3, 8, 8]", {}),
    Ok("LayerNorm", SEQ, "x |> LayerNorm(eps=1e-6)", "f32[B, T, 16]",
       {"weight": (16,), "bias": (16,)}),
    # ---- recurrent ----------------------------------------------------------------------
    Ok("RNN", {"x": "[B, T, 4]"}, "x |> RNN(8)", "f32[B, T, 8]",
       {"weight_ih_l0": (8, 4), "weight_hh_l0": (8, 8), "bias_ih_l0": (8,),
        "bias_hh_l0": (8,)}),
    Ok("LSTM", {"x": "[B, T, 4]"}, "x |> LSTM(8, layers=2, bidirectional=true)",
       "f32[B, T, 16]",
       {"weight_ih_l0": (32, 4), "weight_hh_l0": (32, 8), "bias_ih_l0": (32,),
        "bias_hh_l0": (32,),
        "weight_ih_l0_reverse": (32, 4), "weight_hh_l0_reverse": (32, 8),
        "bias_ih_l0_reverse": (32,), "bias_hh_l0_reverse": (32,),
        "weight_ih_l1": (32, 16), "weight_hh_l1": (32, 8), "bias_ih_l1": (32,),
        "bias_hh_l1": (32,),
        "weight_ih_l1_reverse": (32, 16), "weight_hh_l1_reverse": (32, 8),
        "bias_ih_l1_reverse": (32,), "bias_hh_l1_reverse": (32,)}),
    Ok("LSTM", {"x": "[B, T, 4]"}, "x |> LSTM(8, bidirectional=true, return_sequences=false)",
       "f32[B, 16]"),
    Ok("GRU", {"x": "[B, T, 3]"}, "x |> GRU(6, return_sequences=false)", "f32[B, 6]",
       {"weight_ih_l0": (18, 3), "weight_hh_l0": (18, 6), "bias_ih_l0": (18,),
        "bias_hh_l0": (18,)}),
    # ---- attention ----------------------------------------------------------------------
    Ok("MultiHeadAttention", SEQ, "x |> MultiHeadAttention(4)", "f32[B, T, 16]",
       {"in_proj_weight": (48, 16), "in_proj_bias": (48,), "out_proj.weight": (16, 16),
        "out_proj.bias": (16,)}, args={"embed_dim": 16, "self_attention": True}),
    Ok("MultiHeadAttention", SEQ, "x |> MultiHeadAttention(2, causal=true, bias=false)",
       "f32[B, T, 16]", {"in_proj_weight": (48, 16), "out_proj.weight": (16, 16)}),
    Ok("MultiHeadAttention", {"x": "[B, T, 16]", "m": "[B, S, 16]"},
       "MultiHeadAttention(4)(x, m, m)", "f32[B, T, 16]",
       {"in_proj_weight": (48, 16), "in_proj_bias": (48,), "out_proj.weight": (16, 16),
        "out_proj.bias": (16,)}, args={"self_attention": False}),
    Ok("MultiHeadAttention", {"x": "[B, T, 16]", "k": "[B, S, 8]", "v": "[B, S, 4]"},
       "MultiHeadAttention(4)(query=x, key=k, value=v)", "f32[B, T, 16]",
       {"q_proj_weight": (16, 16), "k_proj_weight": (16, 8), "v_proj_weight": (16, 4),
        "in_proj_bias": (48,), "out_proj.weight": (16, 16), "out_proj.bias": (16,)},
       args={"kdim": 8, "vdim": 4}),
    Ok("AdditiveAttention", {"q": "[B, 4]", "v": "[B, T, 6]"}, "AdditiveAttention(10)(q, v)",
       "f32[B, 6]",
       {"query_proj.weight": (10, 4), "key_proj.weight": (10, 6), "key_proj.bias": (10,),
        "score.weight": (1, 10)}),
    # ---- activations and friends --------------------------------------------------------
    Ok("ReLU", X4, "x |> ReLU", "f32[B, 4]", {}),
    Ok("relu", {"x": "f16[B, 4]"}, "relu(x)", "f16[B, 4]"),
    Ok("LeakyReLU", X4, "x |> LeakyReLU(0.2)", "f32[B, 4]", {}, args={"slope": 0.2}),
    Ok("GELU", X4, 'x |> GELU(approximate="tanh")', "f32[B, 4]", {},
       args={"approximate": "tanh"}),
    Ok("gelu", X4, "gelu(x)", "f32[B, 4]", args={"approximate": "none"}),
    Ok("Tanh", X4, "x |> Tanh", "f32[B, 4]"),
    Ok("tanh", X4, "tanh(x)", "f32[B, 4]"),
    Ok("Sigmoid", X4, "x |> Sigmoid", "f32[B, 4]"),
    Ok("sigmoid", {"x": "bf16[B, 4]"}, "sigmoid(x)", "bf16[B, 4]"),
    Ok("SiLU", X4, "x |> SiLU", "f32[B, 4]"),
    Ok("silu", X4, "silu(x)", "f32[B, 4]"),
    Ok("Identity", IDS, "x |> Identity", "i64[B, 4]", {}),
    Ok("Softmax", SEQ, "x |> Softmax(dim=1)", "f32[B, T, 16]", args={"dim": 1}),
    Ok("softmax", SEQ, "softmax(x)", "f32[B, T, 16]", args={"dim": 2}),
    Ok("Dropout", X4, "x |> Dropout", "f32[B, 4]", {}, args={"p": 0.5}),
    # ---- moving elements ----------------------------------------------------------------
    Ok("Flatten", {"x": "[B, 3, 4, 5]"}, "x |> Flatten", "f32[B, 60]", {}),
    Ok("Flatten", {"x": "[B, C, 4]"}, "x |> Flatten", "f32[B, 4*C]"),
    Ok("Reshape", {"x": "[B, 12]"}, "x |> Reshape(2, -1)", "f32[B, 2, 6]", {}),
    Ok("Reshape", {"x": "[B, 12]"}, "x |> Reshape(3, 2, 2)", "f32[B, 3, 2, 2]"),
    Ok("reshape", SEQ, "reshape(x, [B, -1, 4])", "f32[B, 4*T, 4]"),
    Ok("reshape", {"x": "[B, 2, 6]"}, "reshape(x, [B, 3, 4])", "f32[B, 3, 4]"),
    Ok("transpose", SEQ, "transpose(x, 1, 2)", "f32[B, 16, T]", args={"dim0": 1, "dim1": 2}),
    Ok("transpose", SEQ, "transpose(x, -1, 0)", "f32[16, T, B]", args={"dim0": 2, "dim1": 0}),
    Ok("permute", SEQ, "permute(x, [2, 0, 1])", "f32[16, B, T]"),
    Ok("expand", {"x": "[B, 1, 8]"}, "expand(x, [B, 5, 8])", "f32[B, 5, 8]"),
    Ok("expand", {"x": "[1, 8]"}, "expand(x, [3, 4, -1])", "f32[3, 4, 8]"),
    Ok("concat", {"x": "[B, T, 8]", "m": "[B, S, 8]"}, "concat([x, m], dim=1)",
       "f32[B, S + T, 8]"),
    Ok("concat", {"x": "[4, 3]", "y": "[2, 3]"}, "concat([x, y])", "f32[6, 3]"),
    Ok("mean", SEQ, "mean(x, 1)", "f32[B, 16]"),
    Ok("mean", SEQ, "mean(x, [1, 2], keepdim=true)", "f32[B, 1, 1]"),
    Ok("sum", SEQ, "sum(x, dim=-1)", "f32[B, T]"),
    Ok("sum", SEQ, "sum(x)", "f32[]"),
    Ok("sum", {"x": "i32[B, 4]"}, "sum(x, 1)", "i64[B]"),  # torch.sum: integers give int64
    Ok("sum", {"x": "bool[B, 4]"}, "sum(x, keepdim=true)", "i64[1, 1]"),
    # ---- operators: broadcasting, matmul, indexing, parameter reads ---------------------
    Ok("add", {"x": "[B, 1, 8]", "y": "[5, 1]"}, "x + y", "f32[B, 5, 8]"),
    Ok("add", {"x": "i32[B, 4]", "y": "[4]"}, "x + y", "f32[B, 4]"),
    Ok("sub", {"x": "[B, T, 8]", "y": "[B, 1, 1]"}, "x - y", "f32[B, T, 8]"),
    Ok("mul", X4, "x * 0.5", "f32[B, 4]", args={"scalar": 0.5, "scalar_first": False}),
    Ok("mul", IDS, "x * 0.5", "f32[B, 4]"),
    Ok("div", IDS, "1 / x", "f32[B, 4]", args={"scalar": 1, "scalar_first": True}),
    Ok("neg", X4, "-x", "f32[B, 4]"),
    Ok("matmul", {"x": "[B, 3, 4]", "w": "[4, 5]"}, "x @ w", "f32[B, 3, 5]"),
    Ok("matmul", {"x": "[2, 1, 3, 4]", "y": "[5, 4, 6]"}, "x @ y", "f32[2, 5, 3, 6]"),
    Ok("matmul", {"v": "[4]", "w": "[4, 5]"}, "v @ w", "f32[5]"),
    Ok("matmul", {"w": "[4, 5]", "v": "[5]"}, "w @ v", "f32[4]"),
    Ok("matmul", {"x": "[B, T, 8]", "m": "[B, S, 8]"}, "x @ transpose(m, 1, 2)",
       "f32[B, T, S]"),
    Ok("getitem", {"x": "[B, 5, 8]"}, "x[:, 1:4]", "f32[B, 3, 8]", args={"index": [
        [None, None, None], [1, 4, None]]}),
    Ok("getitem", {"x": "[B, 5, 8]"}, "x[:, -1, ::3]", "f32[B, 3]"),
    Ok("getitem", {"x": "[B, T, 8]"}, "x[:, ::2]", "f32[B, (T + 1)//2, 8]"),
    Ok("param", {"t": "i64[B, T]"}, "(t |> wte) @ transpose(wte.weight, 0, 1)",
       "f32[B, T, 100]", pre="wte = Embedding(100, 16)"),
    # ---- LANGUAGE.md section 10: activations ---------------------------------------------
    Ok("ReLU6", X4, "x |> ReLU6", "f32[B, 4]", {}),
    Ok("relu6", {"x": "f16[B, 4]"}, "relu6(x)", "f16[B, 4]"),
    Ok("Hardswish", IMG, "x |> Hardswish", "f32[B, 3, 8, 8]", {}),
    Ok("hardswish", X4, "hardswish(x)", "f32[B, 4]"),
    Ok("Hardsigmoid", X4, "x |> Hardsigmoid", "f32[B, 4]", {}),
    Ok("hardsigmoid", X4, "hardsigmoid(x)", "f32[B, 4]"),
    Ok("Mish", X4, "x |> Mish", "f32[B, 4]", {}),
    Ok("mish", {"x": "bf16[B, 4]"}, "mish(x)", "bf16[B, 4]"),
    Ok("ELU", X4, "x |> ELU(alpha=0.5)", "f32[B, 4]", {}, args={"alpha": 0.5}),
    Ok("elu", X4, "elu(x)", "f32[B, 4]", args={"alpha": 1.0}),
    Ok("Softplus", X4, "x |> Softplus(beta=2, threshold=10)", "f32[B, 4]", {},
       args={"beta": 2.0, "threshold": 10.0}),
    Ok("softplus", X4, "softplus(x)", "f32[B, 4]", args={"beta": 1.0, "threshold": 20.0}),
    Ok("PReLU", X4, "x |> PReLU", "f32[B, 4]", {"weight": (1,)},
       args={"num_parameters": 1, "init": 0.25}),
    Ok("PReLU", IMG, "x |> PReLU(num_parameters=3, init=0.1)", "f32[B, 3, 8, 8]",
       {"weight": (3,)}),
    Ok("LogSoftmax", SEQ, "x |> LogSoftmax(dim=1)", "f32[B, T, 16]", {}, args={"dim": 1}),
    Ok("log_softmax", SEQ, "log_softmax(x)", "f32[B, T, 16]", args={"dim": 2}),
    # ---- section 10: dropout -------------------------------------------------------------
    Ok("Dropout1d", {"x": "[B, 4, T]"}, "x |> Dropout1d(0.2)", "f32[B, 4, T]", {},
       args={"p": 0.2}),
    Ok("Dropout2d", IMG, "x |> Dropout2d", "f32[B, 3, 8, 8]", {}, args={"p": 0.5}),
    Ok("DropPath", SEQ, "x |> DropPath(0.1)", "f32[B, T, 16]", {}, args={"p": 0.1}),
    Ok("DropPath", X4, "x |> DropPath", "f32[B, 4]", args={"p": 0.0}),
    # ---- section 10: convolution and pooling ---------------------------------------------
    # D (5 + 2 - 3)//1 + 1 = 5, H (6 + 2 - 3)//2 + 1 = 3, W (7 + 2 - 3)//2 + 1 = 4
    Ok("Conv3d", {"x": "[B, 2, 5, 6, 7]"}, "x |> Conv3d(4, 3, stride=(1, 2, 2), padding=1)",
       "f32[B, 4, 5, 3, 4]", {"weight": (4, 2, 3, 3, 3), "bias": (4,)}),
    Ok("Conv2d", {"x": "[B, 3, H, W]"}, 'x |> Conv2d(4, 3, padding=1, padding_mode="reflect")',
       "f32[B, 4, H, W]", {"weight": (4, 3, 3, 3), "bias": (4,)},
       args={"padding_mode": "reflect"}),
    Ok("Conv1d", {"x": "[B, 2, 5]"}, 'x |> Conv1d(2, 3, padding=1, padding_mode="circular")',
       "f32[B, 2, 5]", args={"padding_mode": "circular"}),
    # (6 - 1)*2 - 2*1 + 4 = 12; weight [in, out/groups, k]
    Ok("ConvTranspose1d", {"x": "[B, 4, 6]"}, "x |> ConvTranspose1d(2, 4, stride=2, padding=1)",
       "f32[B, 2, 12]", {"weight": (4, 2, 4), "bias": (2,)}),
    Ok("ConvTranspose1d", {"x": "[B, 4, L]"}, "x |> ConvTranspose1d(2, 3, stride=2)",
       "f32[B, 2, 2*L + 1]"),
    Ok("MaxPool3d", {"x": "[B, 2, 4, 5, 6]"}, "x |> MaxPool3d(2)", "f32[B, 2, 2, 2, 3]", {}),
    Ok("AvgPool3d", {"x": "[B, 2, 4, 4, 4]"},
       "x |> AvgPool3d(3, stride=1, padding=1, count_include_pad=false)", "f32[B, 2, 4, 4, 4]",
       args={"count_include_pad": False}),
    # ceil((7 - 2)/2) + 1 = 4; the last window starts at 6 < 7, so it stays
    Ok("MaxPool2d", {"x": "[B, 3, 7, 7]"}, "x |> MaxPool2d(2, ceil_mode=true)",
       "f32[B, 3, 4, 4]", args={"ceil_mode": True}),
    # ceil((4 - 1)/2) + 1 = 3, but the third window would start at 4, past the input: 2
    Ok("MaxPool1d", {"x": "[B, 2, 4]"}, "x |> MaxPool1d(1, stride=2, ceil_mode=true)",
       "f32[B, 2, 2]"),
    # stride 2 <= kernel 3 - padding 0: no window can start past the input, so
    # (H - 3 + 1)//2 + 1 = H//2 for every H
    Ok("AvgPool2d", {"x": "[B, 3, H, W]"}, "x |> AvgPool2d(3, stride=2, ceil_mode=true)",
       "f32[B, 3, H//2, W//2]"),
    Ok("AdaptiveAvgPool1d", {"x": "[B, 4, 10]"}, "x |> AdaptiveAvgPool1d(3)", "f32[B, 4, 3]", {},
       args={"size": [3]}),
    Ok("AdaptiveMaxPool2d", {"x": "[B, 4, 7, 9]"}, "x |> AdaptiveMaxPool2d((2, 3))",
       "f32[B, 4, 2, 3]", {}),
    Ok("GlobalMaxPool", {"x": "[B, 8, 5, 5]"}, "x |> GlobalMaxPool", "f32[B, 8]", {}),
    Ok("GlobalMaxPool", {"x": "[B, 8, T]"}, "x |> GlobalMaxPool", "f32[B, 8]"),
    # ---- section 10: normalisation -------------------------------------------------------
    Ok("BatchNorm3d", {"x": "[B, 4, 2, 3, 3]"}, "x |> BatchNorm3d", "f32[B, 4, 2, 3, 3]",
       {"weight": (4,), "bias": (4,)},
       {"running_mean": (4,), "running_var": (4,), "num_batches_tracked": ()}),
    Ok("GroupNorm", {"x": "[B, 8, H, W]"}, "x |> GroupNorm(4)", "f32[B, 8, H, W]",
       {"weight": (8,), "bias": (8,)}, {}, args={"num_channels": 8, "eps": 1e-5}),
    Ok("GroupNorm", {"x": "[B, 6, T]"}, "x |> GroupNorm(3, affine=false)", "f32[B, 6, T]", {}),
    Ok("InstanceNorm1d", {"x": "[B, 4, T]"}, "x |> InstanceNorm1d", "f32[B, 4, T]", {}, {},
       args={"affine": False, "track_running_stats": False, "num_features": 4}),
    Ok("InstanceNorm2d", IMG, "x |> InstanceNorm2d(affine=true, track_running_stats=true)",
       "f32[B, 3, 8, 8]", {"weight": (3,), "bias": (3,)},
       {"running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}),
    Ok("LayerNorm", SEQ, "x |> LayerNorm(bias=false)", "f32[B, T, 16]", {"weight": (16,)}),
    Ok("LayerNorm", SEQ, "x |> LayerNorm(elementwise_affine=false)", "f32[B, T, 16]", {}),
    Ok("RMSNorm", SEQ, "x |> RMSNorm", "f32[B, T, 16]", {"weight": (16,)},
       args={"eps": 1e-6, "dim": 16}),
    Ok("RMSNorm", X4, "x |> RMSNorm(eps=1e-5, elementwise_affine=false)", "f32[B, 4]", {}),
    # ---- section 10: padding and resampling ----------------------------------------------
    # F.pad's order: (left 1, right 2) on W = 8, (top 3, bottom 4) on H = 8
    Ok("Pad", IMG, "x |> Pad((1, 2, 3, 4))", "f32[B, 3, 15, 11]", {},
       args={"padding": [1, 2, 3, 4], "mode": "constant", "value": 0.0}),
    Ok("Pad", {"x": "[B, 3, H, W]"}, 'x |> Pad((2, 2, 2, 2), mode="reflect")',
       "f32[B, 3, H + 4, W + 4]", args={"mode": "reflect"}),
    Ok("pad", X4, "pad(x, (0, 3), value=-1.0)", "f32[B, 7]", args={"value": -1.0}),
    Ok("pad", {"x": "i64[B, 4]"}, "pad(x, (1, 1, 2, 0))", "i64[B + 2, 6]"),
    Ok("Upsample", IMG, "x |> Upsample(scale=2)", "f32[B, 3, 16, 16]", {},
       args={"scale": [2.0, 2.0], "size": None, "align_corners": None}),
    Ok("Upsample", {"x": "[B, 3, H, W]"},
       'x |> Upsample(scale=2, mode="bilinear", align_corners=true)', "f32[B, 3, 2*H, 2*W]",
       args={"align_corners": True, "mode": "bilinear"}),
    Ok("Upsample", {"x": "[B, 2, 7]"}, 'x |> Upsample(scale=1.5, mode="linear")',
       "f32[B, 2, 10]", args={"align_corners": False}),  # floor(7 * 1.5)
    Ok("Upsample", {"x": "[B, 2, L]"}, "x |> Upsample(scale=1.5)", "f32[B, 2, L + L//2]"),
    # PyTorch computes floor(3.0 * 0.333...) in double precision: 1, not 0
    Ok("Upsample", {"x": "[B, 2, 3]"}, "x |> Upsample(scale=1 / 3)", "f32[B, 2, 1]"),
    Ok("Upsample", IMG, 'x |> Upsample(size=(5, 12), mode="bicubic")', "f32[B, 3, 5, 12]",
       args={"size": [5, 12], "scale": None}),
    Ok("interpolate", {"x": "[B, 3, H, W]", "s": "[B, 3, S, R]"},
       "interpolate(x, size=(S, R)) + s", "f32[B, 3, S, R]"),
    Ok("interpolate", {"x": "[B, 3, 4, 4, 4]"}, "interpolate(x, scale=(1, 2, 0.5))",
       "f32[B, 3, 4, 8, 2]"),
    Ok("PixelShuffle", {"x": "[B, 12, H, W]"}, "x |> PixelShuffle(2)", "f32[B, 3, 2*H, 2*W]", {}),
    Ok("PixelUnshuffle", {"x": "[B, 3, 8, 6]"}, "x |> PixelUnshuffle(2)", "f32[B, 12, 4, 3]", {}),
    # ---- section 10: recurrent cells and states -------------------------------------------
    Ok("RNNCell", X4, "x |> RNNCell(6)", "f32[B, 6]",
       {"weight_ih": (6, 4), "weight_hh": (6, 6), "bias_ih": (6,), "bias_hh": (6,)},
       args={"input_size": 4}),
    Ok("GRUCell", {"x": "[B, 4]", "h": "[B, 6]"}, "GRUCell(6, bias=false)(x, h)", "f32[B, 6]",
       {"weight_ih": (18, 4), "weight_hh": (18, 6)}),
    Ok("LSTMCell", {"x": "[B, 4]", "h": "[B, 5]", "c": "[B, 5]"}, "h2 * c2", "f32[B, 5]",
       {"weight_ih": (20, 4), "weight_hh": (20, 5), "bias_ih": (20,), "bias_hh": (20,)},
       pre="h2, c2 = LSTMCell(5)(x, h, c)"),
    Ok("LSTMCell", X4, "c2", "f32[B, 5]", pre="h2, c2 = x |> LSTMCell(5)"),
    Ok("LSTM", {"x": "[B, T, 4]", "h": "[2, B, 8]", "c": "[2, B, 8]"}, "cn", "f32[2, B, 8]",
       pre="o, hn, cn = LSTM(8, bidirectional=true, return_state=true)(x, h, c)",
       args={"return_state": True}),
    Ok("GRU", {"x": "[B, T, 4]", "h": "[3, B, 5]"},
       "GRU(5, layers=3, return_sequences=false)(x, h)", "f32[B, 5]"),
    Ok("RNN", {"x": "[B, T, 4]"}, "o + hn[0]", "f32[B, 6]",
       pre="o, hn = x |> RNN(6, return_sequences=false, return_state=true)"),
    # ---- section 10: attention -------------------------------------------------------------
    Ok("MultiHeadAttention", {"x": "[B, T, 16]", "m": "bool[B, T]"},
       "MultiHeadAttention(4)(x, key_padding_mask=m)", "f32[B, T, 16]",
       {"in_proj_weight": (48, 16), "in_proj_bias": (48,), "out_proj.weight": (16, 16),
        "out_proj.bias": (16,)}, args={"self_attention": True}),
    Ok("Attention", {"x": "[B, T, 32]"}, "x |> Attention(8, kv_heads=2, rotary=true, causal=true)",
       "f32[B, T, 32]",
       {"q_proj.weight": (32, 32), "k_proj.weight": (8, 32), "v_proj.weight": (8, 32),
        "o_proj.weight": (32, 32)}, args={"kv_heads": 2, "head_dim": 4, "rope_base": 10000.0}),
    Ok("Attention", {"q": "[B, T, 8]", "kv": "[B, S, 8]", "m": "bool[B, S]"},
       "Attention(2, bias=true)(q, kv, kv, key_padding_mask=m)", "f32[B, T, 8]",
       {"q_proj.weight": (8, 8), "q_proj.bias": (8,), "k_proj.weight": (8, 8),
        "k_proj.bias": (8,), "v_proj.weight": (8, 8), "v_proj.bias": (8,),
        "o_proj.weight": (8, 8), "o_proj.bias": (8,)},
       args={"kv_heads": 2, "self_attention": False}),
    # ---- section 10: tables and parameters -----------------------------------------------
    Ok("Embedding", {"x": "i64[B, T]"}, "x |> Embedding(10, 4, padding_idx=-1)", "f32[B, T, 4]",
       {"weight": (10, 4)}, args={"padding_idx": 9}),
    Ok("Parameter", X4, 'x * Parameter([4], init="constant", value=1e-6)', "f32[B, 4]",
       {"": (4,)}, args={"init": "constant", "value": 1e-6}),
    Ok("Parameter", X4, 'x @ Parameter([4, 3], init="kaiming_uniform")', "f32[B, 3]",
       {"": (4, 3)}),
    # ---- section 10: elementwise functions -------------------------------------------------
    Ok("exp", X4, "exp(x)", "f32[B, 4]"),
    Ok("log", {"x": "f64[B, 4]"}, "log(x)", "f64[B, 4]"),
    Ok("sqrt", X4, "sqrt(x)", "f32[B, 4]"),
    Ok("rsqrt", X4, "rsqrt(x)", "f32[B, 4]"),
    Ok("abs", {"x": "f16[B, 4]"}, "abs(x)", "f16[B, 4]"),
    Ok("clamp", X4, "clamp(x, min=0.0, max=6.0)", "f32[B, 4]", args={"min": 0.0, "max": 6.0}),
    Ok("clamp", IDS, "clamp(x, min=0)", "i64[B, 4]"),  # torch.clamp keeps integers
    Ok("clamp", IDS, "clamp(x, max=0.5)", "f32[B, 4]"),  # and promotes with a float bound
    Ok("maximum", {"x": "[B, 1, 8]", "y": "[5, 1]"}, "maximum(x, y)", "f32[B, 5, 8]"),
    Ok("minimum", {"x": "i32[B, 4]", "y": "[4]"}, "minimum(x, y)", "f32[B, 4]"),
    Ok("where", {"c": "bool[B, 1]", "x": "[B, 4]"}, "where(c, x, 0.0)", "f32[B, 4]",
       args={"a": None, "b": 0.0}),
    Ok("where", {"c": "bool[B, 4]"}, "where(c, 1, 0)", "f32[B, 4]"),  # f32 for two numbers
    Ok("where", {"c": "bool[B, 4]", "n": "i32[4]"}, "where(c, n, 2)", "i32[B, 4]"),
    Ok("where", {"c": "bool[B, 4]", "n": "i64[B, 4]"}, "where(c, 2.5, n)", "f32[B, 4]"),
    Ok("where", {"c": "bool[B, 4]", "n": "i64[B, 4]", "x": "f16[4]"}, "where(c, n, x)",
       "f16[B, 4]"),
    Ok("masked_fill", {"x": "[B, H, T, T]", "m": "bool[B, 1, 1, T]"}, "masked_fill(x, m, -1e9)",
       "f32[B, H, T, T]", args={"value": -1e9}),
    Ok("zeros_like", IDS, "zeros_like(x)", "i64[B, 4]"),
    Ok("ones_like", {"x": "f16[B, 4]"}, "ones_like(x)", "f16[B, 4]"),
    Ok("randn_like", SEQ, "randn_like(x)", "f32[B, T, 16]"),
    # ---- section 10: reductions and moving elements ----------------------------------------
    Ok("amax", SEQ, "amax(x, 1)", "f32[B, 16]"),
    Ok("amin", IDS, "amin(x, [0, 1], keepdim=true)", "i64[1, 1]"),
    Ok("var", SEQ, "var(x, -1, keepdim=true)", "f32[B, T, 1]",
       args={"unbiased": False, "dim": [2]}),
    Ok("stack", {"x": "[B, 4]", "y": "[B, 4]"}, "stack([x, y], dim=1)", "f32[B, 2, 4]"),
    Ok("stack", {"x": "[B, 4]", "y": "[B, 4]"}, "stack([x, y, x], dim=-1)", "f32[B, 4, 3]",
       args={"dim": 2}),
    Ok("split", {"x": "[B, 10]"}, "c", "f32[B, 2]", pre="a, b, c = split(x, 4, dim=1)",
       args={"size": [4, 4, 2], "dim": 1}),
    Ok("split", {"x": "[B, T, 10]"}, "k", "f32[B, T, 4]", pre="q, k = split(x, [6, 4], dim=-1)"),
    # torch.chunk(6 into 4): parts of ceil(6/4) = 2, so three parts, not four
    Ok("chunk", {"x": "[B, 6]"}, "c", "f32[B, 2]", pre="a, b, c = chunk(x, 4, dim=1)"),
    Ok("unsqueeze", SEQ, "unsqueeze(x, -1)", "f32[B, T, 16, 1]", args={"dim": 3}),
    Ok("squeeze", {"x": "[B, 1, 8]"}, "squeeze(x, 1)", "f32[B, 8]"),
    Ok("flatten", {"x": "[B, 3, 4, 5]"}, "flatten(x)", "f32[B, 60]", args={"start": 1, "end": 3}),
    Ok("flatten", {"x": "[B, 3, 4, 5]"}, "flatten(x, 0, 1)", "f32[3*B, 4, 5]"),
    # ---- section 10: operators ------------------------------------------------------------
    Ok("eq", {"x": "[B, 4]", "y": "[4]"}, "x == y", "bool[B, 4]"),
    Ok("ne", IDS, "x != 0", "bool[B, 4]", args={"scalar": 0}),
    Ok("lt", X4, "x < 0.5", "bool[B, 4]"),
    Ok("le", X4, "0 <= x", "bool[B, 4]", args={"scalar_first": True}),
    Ok("gt", {"x": "[B, 1, 4]", "y": "[3, 1]"}, "x > y", "bool[B, 3, 4]"),
    Ok("ge", {"x": "bool[B, 4]"}, "x >= x", "bool[B, 4]"),
    Ok("pow", X4, "x ** 2", "f32[B, 4]", args={"exponent": 2}),
    Ok("pow", IDS, "x ** 0.5", "f32[B, 4]"),
    Ok("pow", {"x": "bool[B, 4]"}, "x ** 2", "i64[B, 4]"),  # torch.pow promotes bool by an int
    Ok("part", X4, "b", "f32[B, 2]", pre="a, b = split(x, 2, dim=1)", args={"index": 1}),
    Ok("add", {"x": "bool[B, 4]"}, "x + 1", "i64[B, 4]"),
    Ok("add", {"x": "bool[B, 4]"}, "x + x", "bool[B, 4]"),
    Ok("add", {"x": "f16[B, 4]", "y": "bf16[4]"}, "x + y", "f32[B, 4]"),
    Ok("mul", {"x": "bool[B, 4]", "y": "i32[4]"}, "x * y", "i32[B, 4]"),
    Ok("div", {"x": "bool[B, 4]"}, "x / x", "f32[B, 4]"),
]

FAILING = [
    Bad("Linear", IDS, "x |> Linear(2)", "E0308", ("i64[B, 4]",)),
    Bad("Linear", {"x": "[B, F]"}, "x |> Linear(2)", "E0310", ("`F`",)),
    Bad("Linear", {"x": "f64[B, 4]"}, "x |> Linear(2)", "E0308", ("f64", "f32")),
    Bad("BatchNorm1d", {"x": "f16[B, 4]"}, "x |> BatchNorm1d(affine=false)", "E0308",
        ("f16", "f32")),
    Bad("Embedding", X4, "x |> Embedding(10, 3)", "E0308", ("f32[B, 4]", "i64[B, T]")),
    Bad("PositionalEncoding", {"x": "[B, 8]"}, "x |> PositionalEncoding", "E0303",
        ("[B, 8]", "[B, T, D]")),
    Bad("PositionalEmbedding", {"x": "[B, 12, 8]"}, "x |> PositionalEmbedding(10)", "E0303",
        ("T = 12", "max_len = 10")),
    Bad("Parameter", X4, "x + Parameter([0, 4])", "E0403", ("0",)),
    Bad("Conv2d", {"x": "[B, 3, 8]"}, "x |> Conv2d(4, 3)", "E0303", ("[B, 3, 8]",
                                                                      "[B, C, H, W]")),
    Bad("Conv2d", {"x": "[B, 3, 8, 8]"}, "x |> Conv2d(4, 3, groups=2)", "E0403",
        ("in 3", "out 4", "groups 2")),
    Bad("Conv2d", {"x": "[B, 3, H, W]"}, 'x |> Conv2d(4, 3, stride=2, padding="same")', "E0405",
        ("`H`",)),
    Bad("Conv2d", IMG, 'x |> Conv2d(4, 3, padding="full")', "E0403", ('"full"',)),
    Bad("Conv1d", {"x": "[B, 3, 2]"}, "x |> Conv1d(4, 3)", "E0309", ("[B, 3, 2]", "size 0")),
    Bad("ConvTranspose2d", {"x": "[B, 8, 7]"}, "x |> ConvTranspose2d(4, 3)", "E0303",
        ("[B, 8, 7]", "[B, C, H, W]")),
    Bad("ConvTranspose2d", IMG, "x |> ConvTranspose2d(4, 3, stride=2, output_padding=2)",
        "E0403", ("output_padding 2", "stride 2")),
    Bad("MaxPool2d", {"x": "[B, 3, 1, 1]"}, "x |> MaxPool2d(2)", "E0309", ("[B, 3, 1, 1]",)),
    Bad("MaxPool1d", {"x": "[B, 3, 8, 8]"}, "x |> MaxPool1d(2)", "E0303",
        ("[B, 3, 8, 8]", "[B, C, L]")),
    Bad("AvgPool1d", {"x": "[B, 3, 8]"}, "x |> AvgPool1d(2, padding=2)", "E0403",
        ("padding 2", "kernel 2")),
    Bad("AvgPool2d", {"x": "[B, 3, 8]"}, "x |> AvgPool2d(2)", "E0303",
        ("[B, 3, 8]", "[B, C, H, W]")),
    Bad("AdaptiveAvgPool2d", {"x": "[B, 8]"}, "x |> AdaptiveAvgPool2d(1)", "E0303",
        ("[B, 8]", "[B, C, H, W]")),
    Bad("GlobalAvgPool", {"x": "[B, 8]"}, "x |> GlobalAvgPool", "E0303", ("[B, 8]",
                                                                           "[B, C, ...]")),
    Bad("BatchNorm1d", {"x": "[B, 3, 8, 8]"}, "x |> BatchNorm1d", "E0303",
        ("[B, 3, 8, 8]", "[B, C, L]")),
    Bad("BatchNorm2d", {"x": "[B, 3, 8]"}, "x |> BatchNorm2d", "E0303",
        ("[B, 3, 8]", "[B, C, H, W]")),
    Bad("LayerNorm", IDS, "x |> LayerNorm", "E0308", ("i64[B, 4]",)),
    Bad("RNN", {"x": "[B, T, 4, 4]"}, "x |> RNN(8)", "E0303", ("[B, T, 4, 4]", "[B, T, F]")),
    Bad("LSTM", {"x": "[B, 16]"}, "x |> LSTM(8)", "E0303", ("[B, 16]", "[B, T, F]")),
    Bad("GRU", {"x": "[B, T, 4]"}, "x |> GRU(8, dropout=1.0)", "E0403", ("1.0",)),
    Bad("MultiHeadAttention", {"x": "[B, T, 16]", "k": "[B, S, 8]", "v": "[B, U, 8]"},
        "MultiHeadAttention(2)(x, k, v)", "E0303", ("[B, S, 8]", "[B, U, 8]")),
    Bad("MultiHeadAttention", {"x": "[B, T, 16]", "k": "[C, S, 16]"},
        "MultiHeadAttention(2)(x, k, k)", "E0303", ("[B, T, 16]", "[C, S, 16]")),
    Bad("MultiHeadAttention", {"x": "[B, 16]"}, "x |> MultiHeadAttention(2)", "E0303",
        ("[B, 16]", "[B, T, D]")),
    Bad("MultiHeadAttention", {"x": "[B, T, 16]", "m": "[B, S, 16]"},
        "MultiHeadAttention(2)(x, m)", "E0401", ("two",)),
    Bad("AdditiveAttention", {"q": "[B, 4]", "v": "[C, T, 6]"}, "AdditiveAttention(8)(q, v)",
        "E0303", ("[B, 4]", "[C, T, 6]")),
    Bad("AdditiveAttention", {"q": "[B, T, 4]", "v": "[B, T, 6]"}, "AdditiveAttention(8)(q, v)",
        "E0303", ("[B, T, 4]", "[B, D]")),
    Bad("ReLU", IDS, "x |> ReLU", "E0308", ("i64[B, 4]",)),
    Bad("relu", IDS, "relu(x)", "E0308", ("i64[B, 4]",)),
    Bad("LeakyReLU", {"x": "bool[B, 4]"}, "x |> LeakyReLU", "E0308", ("bool[B, 4]",)),
    Bad("GELU", X4, 'x |> GELU(approximate="fast")', "E0403", ('"fast"',)),
    Bad("gelu", IDS, "gelu(x)", "E0308", ("i64[B, 4]",)),
    Bad("Tanh", IDS, "x |> Tanh", "E0308", ("i64[B, 4]",)),
    Bad("tanh", IDS, "tanh(x)", "E0308", ("i64[B, 4]",)),
    Bad("Sigmoid", IDS, "x |> Sigmoid", "E0308", ("i64[B, 4]",)),
    Bad("sigmoid", IDS, "sigmoid(x)", "E0308", ("i64[B, 4]",)),
    Bad("SiLU", IDS, "x |> SiLU", "E0308", ("i64[B, 4]",)),
    Bad("silu", IDS, "silu(x)", "E0308", ("i64[B, 4]",)),
    Bad("Identity", X4, "x |> Identity(1)", "E0401", ("Identity",)),
    Bad("Softmax", IDS, "x |> Softmax", "E0308", ("i64[B, 4]",)),
    Bad("softmax", SEQ, "softmax(x, dim=3)", "E0307", ("[B, T, 16]",)),
    Bad("Dropout", X4, "x |> Dropout(1.5)", "E0403", ("1.5", "[0, 1)")),
    Bad("Flatten", {"x": "[B]"}, "x |> Flatten", "E0303", ("[B]",)),
    Bad("Reshape", {"x": "[B, 12]"}, "x |> Reshape(5, 2)", "E0304", ("[B, 12]", "[5, 2]")),
    Bad("Reshape", {"x": "[B, 12]"}, "x |> Reshape(5, -1)", "E0304", ("[B, 12]", "[5, -1]")),
    Bad("Reshape", {"x": "[B, 12]"}, "x |> Reshape(-1, -1)", "E0304", ("[-1, -1]",)),
    Bad("reshape", {"x": "[B, 12]"}, "reshape(x, [B, 5])", "E0304", ("[B, 12]", "[B, 5]")),
    Bad("reshape", {"x": "[B, T, 12]"}, "reshape(x, [B, 5, -1])", "E0304",
        ("[B, T, 12]", "[B, 5, -1]")),
    Bad("transpose", SEQ, "transpose(x, 1, 3)", "E0307", ("[B, T, 16]",)),
    Bad("permute", SEQ, "permute(x, [0, 1])", "E0307", ("[B, T, 16]", "[0, 1]")),
    Bad("expand", {"x": "[B, 3]"}, "expand(x, [B, 5])", "E0302", ("[B, 3]", "[B, 5]")),
    Bad("expand", {"x": "[B, 3]"}, "expand(x, [3])", "E0303", ("[B, 3]", "[3]")),
    Bad("concat", {"x": "[B, 3, 8]", "y": "[B, 4, 9]"}, "concat([x, y], dim=1)", "E0306",
        ("[B, 3, 8]", "[B, 4, 9]")),
    Bad("concat", {"x": "[B, 3]", "y": "[B, 3, 1]"}, "concat([x, y], dim=1)", "E0306",
        ("[B, 3]", "[B, 3, 1]")),
    Bad("concat", {"x": "[B, 3]", "y": "i64[B, 3]"}, "concat([x, y], dim=1)", "E0308",
        ("f32", "i64")),
    Bad("mean", SEQ, "mean(x, 3)", "E0307", ("[B, T, 16]",)),
    Bad("mean", IDS, "mean(x, 1)", "E0308", ("i64[B, 4]", "x * 1.0")),  # as torch.mean
    Bad("sum", SEQ, "sum(x, [1, -2])", "E0307", ("[B, T, 16]",)),
    Bad("add", {"x": "[B, 3]", "y": "[B, 4]"}, "x + y", "E0302", ("[B, 3]", "[B, 4]")),
    Bad("sub", {"x": "[B, T, 8]", "y": "[B, S, 8]"}, "x - y", "E0302",
        ("[B, T, 8]", "[B, S, 8]")),
    Bad("mul", {"x": "[2, 3]", "y": "[3, 2]"}, "x * y", "E0302", ("[2, 3]", "[3, 2]")),
    Bad("div", {"x": "[B, 3]", "y": "[4]"}, "x / y", "E0302", ("[B, 3]", "[4]")),
    Bad("neg", X4, '-"x"', "E0402", ("str",)),
    Bad("matmul", {"x": "[B, 3, 4]", "w": "[5, 6]"}, "x @ w", "E0305", ("[B, 3, 4]", "[5, 6]")),
    Bad("matmul", {"x": "[2, 3, 4]", "y": "[5, 4, 6]"}, "x @ y", "E0302",
        ("[2]", "[5]")),
    Bad("matmul", X4, "x @ 2", "E0402", ("int",)),
    Bad("getitem", {"x": "[B, 5]"}, "x[:, 5]", "E0307", ("5",)),
    Bad("getitem", {"x": "[B, 5]"}, "x[:, :, 0]", "E0307", ("[B, 5]",)),
    Bad("getitem", {"x": "[B, 5]"}, "x[:, 3:3]", "E0309", ("[B, 0]",)),
    Bad("getitem", {"x": "[B, 5]"}, "x[:, ::-1]", "E0403", ("-1",)),
    Bad("param", {"t": "i64[B, T]"}, "(t |> wte) @ transpose(wte.weights, 0, 1)", "E0201",
        ("weights", "weight"), pre="wte = Embedding(100, 16)"),
    Bad("param", {"t": "i64[B, T]"}, "t |> Embedding(10, 4) |> Linear(w.weight)", "E0204",
        ("weight",), pre="w = Linear(4)"),
    # ---- LANGUAGE.md section 10 ---------------------------------------------------------
    Bad("ReLU6", IDS, "x |> ReLU6", "E0308", ("i64[B, 4]",)),
    Bad("relu6", IDS, "relu6(x)", "E0308", ("i64[B, 4]",)),
    Bad("Hardswish", IDS, "x |> Hardswish", "E0308", ("i64[B, 4]",)),
    Bad("hardswish", IDS, "hardswish(x)", "E0308", ("i64[B, 4]",)),
    Bad("Hardsigmoid", {"x": "bool[B, 4]"}, "x |> Hardsigmoid", "E0308", ("bool[B, 4]",)),
    Bad("hardsigmoid", IDS, "hardsigmoid(x)", "E0308", ("i64[B, 4]",)),
    Bad("Mish", IDS, "x |> Mish", "E0308", ("i64[B, 4]",)),
    Bad("mish", IDS, "mish(x)", "E0308", ("i64[B, 4]",)),
    Bad("ELU", X4, 'x |> ELU(alpha="a")', "E0402", ("alpha", '"a"')),
    Bad("elu", IDS, "elu(x)", "E0308", ("i64[B, 4]",)),
    Bad("Softplus", X4, "x |> Softplus(beta=0)", "E0403", ("beta", "positive", "0")),
    Bad("softplus", IDS, "softplus(x)", "E0308", ("i64[B, 4]",)),
    Bad("PReLU", IMG, "x |> PReLU(num_parameters=4)", "E0403", ("got 4", "3 channels")),
    Bad("LogSoftmax", IDS, "x |> LogSoftmax", "E0308", ("i64[B, 4]",)),
    Bad("log_softmax", SEQ, "log_softmax(x, dim=3)", "E0307", ("[B, T, 16]",)),
    Bad("Dropout1d", IMG, "x |> Dropout1d", "E0303", ("[B, 3, 8, 8]", "[B, C, L]")),
    Bad("Dropout2d", SEQ, "x |> Dropout2d(0.1)", "E0303", ("[B, T, 16]", "[B, C, H, W]")),
    Bad("DropPath", X4, "x |> DropPath(1.0)", "E0403", ("1.0", "[0, 1)")),
    Bad("Conv3d", IMG, "x |> Conv3d(4, 3)", "E0303", ("[B, 3, 8, 8]", "[B, C, D, H, W]")),
    Bad("Conv2d", IMG, 'x |> Conv2d(4, 3, padding=1, padding_mode="mirror")', "E0403",
        ('"mirror"', '"reflect"')),
    Bad("Conv2d", {"x": "[B, 3, 2, 2]"}, 'x |> Conv2d(4, 3, padding=2, padding_mode="reflect")',
        "E0403", ("padding 2", "size 2")),
    Bad("ConvTranspose1d", IMG, "x |> ConvTranspose1d(4, 3)", "E0303",
        ("[B, 3, 8, 8]", "[B, C, L]")),
    Bad("MaxPool3d", SEQ, "x |> MaxPool3d(2)", "E0303", ("[B, T, 16]", "[B, C, D, H, W]")),
    Bad("AvgPool3d", IMG, "x |> AvgPool3d(2, ceil_mode=1)", "E0402", ("ceil_mode", "1")),
    Bad("MaxPool2d", {"x": "[B, 3, H, W]"}, "x |> MaxPool2d(1, stride=2, ceil_mode=true)",
        "E0405", ("`H`", "kernel 1", "stride 2")),
    Bad("AdaptiveAvgPool1d", IMG, "x |> AdaptiveAvgPool1d(2)", "E0303",
        ("[B, 3, 8, 8]", "[B, C, L]")),
    Bad("AdaptiveMaxPool2d", IMG, "x |> AdaptiveMaxPool2d((2, 2, 2))", "E0403",
        ("size", "2 values", "3")),
    Bad("GlobalMaxPool", {"x": "[B, 8]"}, "x |> GlobalMaxPool", "E0303", ("[B, 8]", "[B, C, ...]")),
    Bad("BatchNorm3d", IMG, "x |> BatchNorm3d", "E0303", ("[B, 3, 8, 8]", "[B, C, D, H, W]")),
    Bad("GroupNorm", {"x": "[B, 6, T]"}, "x |> GroupNorm(4)", "E0403",
        ("6 channels", "4 groups", "[B, 6, T]")),
    Bad("InstanceNorm1d", IMG, "x |> InstanceNorm1d", "E0303", ("[B, 3, 8, 8]", "[B, C, L]")),
    Bad("InstanceNorm2d", SEQ, "x |> InstanceNorm2d", "E0303", ("[B, T, 16]", "[B, C, H, W]")),
    Bad("LayerNorm", SEQ, "x |> LayerNorm(bias=1)", "E0402", ("bias", "1")),
    Bad("RMSNorm", IDS, "x |> RMSNorm", "E0308", ("i64[B, 4]",)),
    Bad("Pad", X4, "x |> Pad((1, 2, 3))", "E0403", ("even", "(1, 2, 3)")),
    Bad("Pad", {"x": "[B, 3, 8]"}, 'x |> Pad((1, 1, 1, 1), mode="reflect")', "E0403",
        ("at most 1", "[B, 3, 8]", "never the batch or the channels")),
    Bad("pad", {"x": "[B, 3, 4]"}, 'pad(x, (4, 0), mode="reflect")', "E0403",
        ("padding 4", "size 4")),
    Bad("pad", {"x": "[B, 3, 4]"}, 'pad(x, (5, 0), mode="circular")', "E0403",
        ("padding 5", "size 4")),
    Bad("pad", X4, "pad(x, 2)", "E0402", ("tuple", "2")),
    Bad("pad", {"x": "[B, 3, 4]"}, 'pad(x, (1, 1), mode="replicate", value=1.0)', "E0403",
        ("value", "replicate")),
    Bad("Upsample", IMG, "x |> Upsample(size=4, scale=2)", "E0401", ("size", "scale", "both")),
    Bad("Upsample", IMG, "x |> Upsample(scale=2, align_corners=true)", "E0403",
        ("align_corners", "nearest")),
    Bad("Upsample", {"x": "[B, 3, 8]"}, 'x |> Upsample(scale=2, mode="bilinear")', "E0303",
        ("[B, 3, 8]", "[B, C, H, W]")),
    Bad("Upsample", {"x": "[B, 3, H, W]"}, "x |> Upsample(scale=0.1)", "E0405", ("`H`", "0.1")),
    Bad("Upsample", IMG, "x |> Upsample(scale=0)", "E0403", ("scale", "positive")),
    Bad("interpolate", IMG, "interpolate(x)", "E0401", ("size", "scale", "neither")),
    Bad("interpolate", {"x": "i64[B, 3, 8]"}, "interpolate(x, scale=2)", "E0308", ("i64",)),
    Bad("PixelShuffle", IMG, "x |> PixelShuffle(2)", "E0303", ("[B, 3, 8, 8]", "r² = 4")),
    Bad("PixelUnshuffle", {"x": "[B, 3, 7, 8]"}, "x |> PixelUnshuffle(2)", "E0303",
        ("7", "multiples of 2")),
    Bad("PixelUnshuffle", {"x": "[B, 3, H, 8]"}, "x |> PixelUnshuffle(2)", "E0405", ("H",)),
    Bad("RNNCell", SEQ, "x |> RNNCell(4)", "E0303", ("[B, T, 16]", "[B, F]")),
    Bad("GRUCell", {"x": "[B, 4]", "h": "[B, 5]"}, "GRUCell(6)(x, h)", "E0303",
        ("[B, 5]", "[B, 6]")),
    Bad("LSTMCell", {"x": "[B, 4]", "h": "[B, 6]"}, "LSTMCell(6)(x, h)", "E0401",
        ("without `c`",)),
    Bad("LSTM", {"x": "[B, T, 4]", "h": "[B, 8]", "c": "[B, 8]"}, "LSTM(8)(x, h, c)", "E0303",
        ("[B, 8]", "[1, B, 8]")),
    Bad("RNN", {"x": "[B, T, 4]"}, "x |> RNN(8, return_state=1)", "E0402", ("return_state",)),
    Bad("MultiHeadAttention", {"x": "[B, T, 16]", "m": "[B, T]"},
        "MultiHeadAttention(4)(x, key_padding_mask=m)", "E0308", ("f32[B, T]", "bool[B, T]")),
    Bad("MultiHeadAttention", {"x": "[B, T, 16]", "m": "bool[B, T]"},
        "MultiHeadAttention(4)(x, x, x, m)", "E0401", ("key_padding_mask=",)),
    Bad("Attention", SEQ, "x |> Attention(4, kv_heads=3)", "E0403",
        ("kv_heads", "4 is not divisible by 3")),
    Bad("Attention", {"x": "[B, T, 12]"}, "x |> Attention(4, rotary=true)", "E0403",
        ("rotary", "12 / 4 heads = 3")),
    Bad("Attention", {"q": "[B, T, 8]", "k": "[B, S, 4]"}, "Attention(2)(q, k, k)", "E0303",
        ("[B, T, 8]", "[B, S, 4]")),
    Bad("Embedding", {"x": "i64[B, T]"}, "x |> Embedding(10, 4, padding_idx=10)", "E0403",
        ("[-10, 10)", "got 10")),
    Bad("Parameter", X4, 'x + Parameter([4], init="kaiming_normal")', "E0403",
        ("rank 2", "[4]")),
    Bad("Parameter", X4, 'x + Parameter([4], init="constant")', "E0401", ("value",)),
    Bad("Parameter", X4, "x + Parameter([4], value=2.0)", "E0401", ("value", '"normal"')),
    Bad("exp", IDS, "exp(x)", "E0308", ("i64[B, 4]",)),
    Bad("log", IDS, "log(x)", "E0308", ("i64[B, 4]",)),
    Bad("sqrt", IDS, "sqrt(x)", "E0308", ("i64[B, 4]",)),
    Bad("rsqrt", {"x": "bool[B, 4]"}, "rsqrt(x)", "E0308", ("bool[B, 4]",)),
    Bad("abs", IDS, "abs(x)", "E0308", ("i64[B, 4]",)),
    Bad("clamp", X4, "clamp(x)", "E0401", ("at least one",)),
    Bad("clamp", X4, "clamp(x, min=6, max=0)", "E0403", ("min 6", "max 0")),
    Bad("clamp", X4, 'clamp(x, min="0")', "E0402", ("min", '"0"')),
    Bad("maximum", {"x": "[B, 3]", "y": "[B, 4]"}, "maximum(x, y)", "E0302", ("[B, 3]", "[B, 4]")),
    Bad("minimum", X4, "minimum(x, 0.5)", "E0402", ("float",)),
    Bad("where", X4, "where(x, x, 0.0)", "E0308", ("f32[B, 4]", "bool")),
    Bad("where", {"c": "bool[B, 3]", "x": "[B, 4]"}, "where(c, x, 0.0)", "E0302",
        ("[B, 3]", "[B, 4]")),
    Bad("where", {"c": "bool[B, 4]"}, 'where(c, 1.0, "a")', "E0402", ("str",)),
    Bad("masked_fill", {"x": "[B, 4]", "m": "bool[B, 4, 1]"}, "masked_fill(x, m, 0.0)", "E0302",
        ("[B, 4]", "[B, 4, 1]")),
    Bad("masked_fill", {"x": "[B, 4]", "m": "bool[B, 4]"}, "masked_fill(x, m, x)", "E0402",
        ("value", "tensor")),
    Bad("zeros_like", X4, "zeros_like(x, 1)", "E0401", ("zeros_like",)),
    Bad("ones_like", X4, "ones_like(3)", "E0402", ("int",)),
    Bad("randn_like", IDS, "randn_like(x)", "E0308", ("i64[B, 4]",)),
    Bad("amax", SEQ, "amax(x, 3)", "E0307", ("[B, T, 16]",)),
    Bad("amin", SEQ, "amin(x, [1, -2])", "E0307", ("repeated",)),
    Bad("var", IDS, "var(x, 1)", "E0308", ("i64[B, 4]",)),
    Bad("stack", {"x": "[B, 4]", "y": "[B, 5]"}, "stack([x, y])", "E0306", ("[B, 4]", "[B, 5]")),
    Bad("split", {"x": "[B, 10]"}, "split(x, [6, 5], dim=1)[0]", "E0403",
        ("[6, 5]", "11", "10")),
    Bad("split", {"x": "[B, T]"}, "split(x, 2, dim=1)[0]", "E0405", ("`T`",)),
    Bad("chunk", {"x": "[B, T]"}, "chunk(x, 2, dim=1)[0]", "E0405", ("`T`",)),
    Bad("chunk", X4, "chunk(x, 0, dim=1)[0]", "E0403", ("at least 1", "0")),
    Bad("unsqueeze", SEQ, "unsqueeze(x, 4)", "E0307", ("[B, T, 16]", "[-4, 3]")),
    Bad("squeeze", {"x": "[B, 2, 8]"}, "squeeze(x, 1)", "E0303", ("[B, 2, 8]", "2")),
    Bad("squeeze", {"x": "[B, T, 8]"}, "squeeze(x, 1)", "E0303", ("never proven",)),
    Bad("flatten", {"x": "[B, 3, 4]"}, "flatten(x, 2, 1)", "E0307", ("start", "end")),
    Bad("eq", {"x": "[B, 3]", "y": "[B, 4]"}, "x == y", "E0302", ("[B, 3]", "[B, 4]")),
    Bad("ne", X4, 'x != "a"', "E0402", ("str",)),
    Bad("lt", {"x": "[B, 3]", "y": "[2, 4]"}, "x < y", "E0302", ("[B, 3]", "[2, 4]")),
    Bad("le", {"x": "[B, 3]"}, "x <= B", "E0405", ("`B`",)),
    Bad("gt", {"x": "[B, 3]", "y": "[B, 4]"}, "x > y", "E0302", ("[B, 3]", "[B, 4]")),
    Bad("ge", X4, "x >= true", "E0402", ("bool",)),
    Bad("pow", X4, "x ** x", "E0402", ("exponent",)),
    Bad("pow", IDS, "x ** -1", "E0308", ("i64[B, 4]", "-1")),
    Bad("part", {"x": "[B, 5]"}, "split(x, 2, dim=1)[3]", "E0307", ("3", "3 items")),
    Bad("neg", {"x": "bool[B, 4]"}, "-x", "E0308", ("bool[B, 4]",)),
    Bad("sub", {"x": "bool[B, 4]"}, "1 - x", "E0308", ("bool[B, 4]",)),
]


def _spec(inputs: dict[str, str], expr: str, pre: str = "") -> str:
    lines = ["model Net {"]
    lines += [f"    input {name}: {t}" for name, t in inputs.items()]
    if pre:
        lines.append(f"    {pre}")
    lines.append(f"    output y = {expr}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _graph(text: str) -> Graph:
    g = archdsl.load(text).graph()
    assert isinstance(g, Graph)
    return g


def _type(g: Graph, node: int) -> str:
    t = g.nodes[node].type
    return f"{t.dtype}{t}"


@pytest.mark.parametrize("case", PASSING, ids=lambda c: c.id)
def test_shape_rule_passes(case: Ok) -> None:
    g = _graph(_spec(case.inputs, case.expr, case.pre))
    assert _type(g, g.outputs[0]) == case.out
    nodes = [n for n in g.nodes if n.op == case.op]
    assert nodes, f"no `{case.op}` node"
    node = nodes[-1]
    if REGISTRY[case.op].kind == "layer":
        layer = g.layers[node.layer]
        args = layer.args
        if case.params is not None:
            assert {p.name: p.shape for p in layer.params if p.kind == "param"} == case.params
        if case.buffers is not None:
            assert {p.name: p.shape for p in layer.params if p.kind == "buffer"} == case.buffers
    else:
        args = node.args
        assert case.params in (None, {})
    assert {k: args.get(k) for k in case.args} == case.args


@pytest.mark.parametrize("case", FAILING, ids=lambda c: c.id)
def test_shape_rule_fails(case: Bad) -> None:
    with pytest.raises(archdsl.SpecError) as info:
        _graph(_spec(case.inputs, case.expr, case.pre))
    diags = [d for d in info.value.diagnostics if d.code == case.code]
    assert diags, f"expected {case.code}, got {info.value.codes}:\n{info.value}"
    text = f"{diags[0].message}\n{diags[0].label}\n{diags[0].hint}"
    missing = [s for s in case.shows if s not in text]
    assert not missing, f"the diagnostic does not name {missing}:\n{info.value}"
    assert diags[0].loc is not None and diags[0].loc.line == len(case.inputs) + 2 + bool(case.pre)


# ---- symbolic dimensions -------------------------------------------------------------------
SYMBOLIC = [
    ({"x": "[B, 3, H, W]"},
     "x |> Conv2d(4, 3, stride=2, padding=1) |> Conv2d(4, 3, stride=2, padding=1)",
     "f32[B, 4, ((H + 1)//2 + 1)//2, ((W + 1)//2 + 1)//2]"),
    ({"x": "[B, 3, H, W]"}, "x |> MaxPool2d(2) |> Conv2d(4, 3, padding=1) |> Flatten",
     "f32[B, 4*(H//2)*(W//2)]"),
    ({"x": "[B, T, 8]", "m": "[B, S, 8]"}, "reshape(concat([x, m, x], dim=1), [B, -1])",
     "f32[B, 8*S + 16*T]"),
    ({"x": "[B, T, 8]"}, "x[:, 1:] |> Linear(4)", "f32[B, T - 1, 4]"),
    ({"x": "[B, T, 8]"}, "reshape(x, [B, T, 2, 4]) |> Linear(3)", "f32[B, T, 2, 3]"),
]


@pytest.mark.parametrize(("inputs", "expr", "out"), SYMBOLIC, ids=[e for _, e, _ in SYMBOLIC])
def test_symbolic_dimensions_flow_through(inputs: dict[str, str], expr: str, out: str) -> None:
    g = _graph(_spec(inputs, expr))
    assert _type(g, g.outputs[0]) == out


def test_symbols_are_bound_to_their_inputs() -> None:
    g = _graph(_spec({"x": "[B, T, 8]", "m": "[B, S, 8]"}, "concat([x, m], dim=1)"))
    assert {k: (v.input, v.axis) for k, v in g.symbols.items()} == {
        "B": (0, 0), "T": (0, 1), "S": (1, 1)}


def _symbols_used(v: Any) -> set[str]:
    if isinstance(v, Sym):
        return v.symbols()
    items = v.values() if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else ()
    return set().union(*(_symbols_used(x) for x in items))


@pytest.mark.parametrize("path", [*SPECS, ROOT / "tests" / "torch" / "specs" / "calls.arch"],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_symbols_hold_every_symbol_of_the_graph(path: Path) -> None:
    """A symbol's value is read from a model input, so every one in the graph must be listed:
    in shapes, in arguments, and in block arguments (`calls.arch` passes `T` to a block)."""
    for g in _all_graphs(path):
        for m in [g.generator, g.discriminator] if isinstance(g, GanGraph) else [g]:
            used = _symbols_used([[n.type.shape, n.args] for n in m.nodes] +
                                 [s.args for s in m.scopes])
            assert used <= set(m.symbols), (m.name, used - set(m.symbols))


# ---- JSON round trip -----------------------------------------------------------------------
def _all_graphs(path: Path) -> list[Graph | GanGraph]:
    program = archdsl.load(path)
    return [program.graph(name) for name in program.check()]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_graph_json_round_trip(path: Path) -> None:
    graphs = _all_graphs(path)
    assert graphs
    for g in graphs:
        again = type(g).model_validate_json(g.model_dump_json())
        assert again == g
        assert again.model_dump_json() == g.model_dump_json()


def test_json_round_trip_of_dim_arguments() -> None:
    """softmax's normalized arguments are `{"dim": 1}`: an int, not a symbolic dimension."""
    g = _graph(_spec(SEQ, "softmax(x, dim=1) |> Softmax"))
    assert Graph.model_validate_json(g.model_dump_json()) == g


def test_json_round_trip_of_train_settings() -> None:
    g = _graph("model Net {\n    input x: [B, 4]\n    output y = x |> Linear(2)\n"
               "    train {\n        optimizer = Adam(lr=1e-3, betas=(0.5, 0.9))\n    }\n}\n")
    again = Graph.model_validate_json(g.model_dump_json())
    assert again.train == g.train


def test_symbolic_graph_json_round_trip() -> None:
    g = _graph(_spec({"x": "[B, 3, H, W]"},
                     'x |> Conv2d(4, 3, stride=2, padding=1) |> Conv2d(2, 3, padding="same") '
                     "|> Flatten"))
    again = Graph.model_validate_json(g.model_dump_json())
    assert again == g
    assert _type(again, again.outputs[0]) == "f32[B, 2*((H + 1)//2)*((W + 1)//2)]"


# ---- shared layers, repeats and loops ------------------------------------------------------
SHARING = [
    # (statements, expected parameter keys, nodes per layer path)
    ("l = Linear(8)\n    output y = x |> l |> l",
     ["l.weight", "l.bias"], {"l": 2}),
    ("l = Linear(8)\n    a = x |> l\n    output y = l(a) + (x |> l)",
     ["l.weight", "l.bias"], {"l": 3}),
    ("l = Linear(8)\n    h = x\n    for i in range(3) {\n        h = h |> l\n    }\n"
     "    output y = h", ["l.weight", "l.bias"], {"l": 3}),
    ("enc = Enc(8)\n    output y = x |> enc |> enc",
     ["enc.fc.weight", "enc.fc.bias"], {"enc.fc": 2}),
    ("output y = x |> Linear(8) |> Linear(8)",
     ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
     {"fc1": 1, "fc2": 1}),
    ("gain = Gain()\n    output y = x |> gain |> gain", ["gain.g"], {"gain.g": 2}),
]
ENC = ("block Enc(d: int) {\n    input x: [B, d]\n    output y = tanh(x |> Linear(d))\n}\n\n"
       "block Gain() {\n    input x: [B, D]\n    g = Parameter([D])\n    output y = x * g\n}\n\n"
       "block Pass() {\n    input x: [B, D]\n    output y = x |> Identity\n}\n\n")


@pytest.mark.parametrize(("body", "keys", "uses"), SHARING, ids=[b for b, _, _ in SHARING])
def test_a_bound_layer_applied_twice_has_one_parameter_set(
        body: str, keys: list[str], uses: dict[str, int]) -> None:
    g = _graph(ENC + f"model Net {{\n    input x: [B, 8]\n    {body}\n}}\n")
    assert list(g.parameters()) == keys
    counted: dict[str, int] = {}
    for n in g.nodes:
        if n.layer is not None:
            counted[n.layer] = counted.get(n.layer, 0) + 1
    assert counted == uses


def test_a_shared_layer_must_fit_every_input() -> None:
    with pytest.raises(archdsl.SpecError) as info:
        _graph("model Net {\n    input x: [B, 8]\n    l = Linear(4)\n"
               "    output y = x |> l |> l\n}\n")
    assert info.value.codes == ["E0303"]
    assert "[B, 4]" in info.value.diagnostics[0].label


PATHS = [  # archdsl/sites.py: names from where layers are written (docs/codegen.md)
    ("x |> Linear(8) * 3", ["fc.0", "fc.1", "fc.2"]),
    ("x |> 2 * Enc(8)", ["enc.0.fc", "enc.1.fc"]),
    ("x |> blocks", ["blocks.0.fc", "blocks.1.fc"], "blocks = Enc(8) * 2"),
    ("h", ["l.0", "fc.0", "l.1", "fc.1"],
     "h = x\n    for i in range(2) {\n        l = Linear(8)\n"
     "        h = h |> l |> Linear(8)\n    }"),
    ("h", ["enc.0.fc", "enc.1.fc", "enc.2.fc"],
     "h = x\n    for i in range(3) {\n        h = h |> Enc(8)\n    }"),
    ("x |> Enc(8) |> Enc(8) |> Linear(8)", ["enc1.fc", "enc2.fc", "fc"]),
    ("y", ["shortcut.0", "shortcut.1", "fc"],
     "shortcut = if true then x |> Linear(8) |> LayerNorm else x\n"
     "    y = shortcut |> Linear(8)"),
    ("x |> Pass()", ["pass_.identity"]),  # `pass` is Python's: the name gets a `_`
]


@pytest.mark.parametrize("case", PATHS, ids=[c[0] + " " + (c[2] if len(c) > 2 else "")
                                             for c in PATHS])
def test_layer_paths(case: tuple) -> None:
    expr, paths, *pre = case
    g = _graph(ENC + _spec({"x": "[B, 8]"}, expr, pre[0] if pre else ""))
    assert list(g.layers) == paths


# ---- gan pairing -------------------------------------------------------------------------
def _gan(gen_out: str, disc_in: str, disc_out: str = "x |> Flatten |> Linear(1)") -> str:
    return (f"model G {{\n    input z: [B, 4]\n    output x = {gen_out}\n}}\n\n"
            f"model D {{\n    input x: {disc_in}\n    output s = {disc_out}\n}}\n\n"
            "gan Pair {\n    generator = G\n    discriminator = D\n}\n")


GANS_OK = [
    ("z |> Linear(6) |> Reshape(2, 3)", "[B, 2, 3]", "x |> Flatten |> Linear(1)"),
    ("z |> Linear(6)", "[N, 6]", "x |> Linear(1)"),
    ("z |> Linear(8) |> Reshape(2, 2, 2)", "[N, C, C, C]", "mean(x, [1, 2, 3])"),
    ("z |> Linear(6)", "[B, 6]", "mean(x, 1)"),
]
GANS_BAD = [
    # the generator's output against the discriminator's input, both ways round
    ("z |> Linear(6) |> Reshape(2, 3)", "[B, 3, 2]", "x |> Flatten |> Linear(1)",
     ("[B, 2, 3]", "[B, 3, 2]")),
    ("z |> Linear(6)", "[B, 2, 3]", "x |> Flatten |> Linear(1)", ("[B, 6]", "[B, 2, 3]")),
    ("z |> Linear(6) |> Reshape(2, 3)", "[B, 6]", "x |> Linear(1)", ("[B, 2, 3]", "[B, 6]")),
    ("z |> Linear(9) |> Reshape(3, 3)", "[B, C, C, C]", "mean(x, [1, 2, 3])",
     ("[B, 3, 3]", "[B, C, C, C]")),
    ("z |> Linear(6) |> Reshape(2, 3)", "[B, C, C]", "mean(x, [1, 2])",
     ("[B, 2, 3]", "[B, C, C]")),
    ("z |> Linear(6)", "f64[B, 6]", "mean(x, 1)", ("f32[B, 6]", "f64[B, 6]")),
    # the discriminator's score
    ("z |> Linear(6)", "[B, 6]", "x |> Linear(2)", ("[B, 2]",)),
    ("z |> Linear(6)", "[B, 6]", "sum(x)", ("[]",)),
    ("z |> Linear(6)", "[B, 6]", "reshape(x, [B, 1, 6]) |> Linear(1)", ("[B, 1, 1]",)),
]


@pytest.mark.parametrize("case", GANS_OK, ids=[c[1] + " " + c[2] for c in GANS_OK])
def test_gan_pairing_holds(case: tuple[str, str, str]) -> None:
    g = archdsl.load(_gan(*case)).graph("Pair")
    assert isinstance(g, GanGraph)


@pytest.mark.parametrize("case", GANS_BAD, ids=[c[0] + " -> " + c[1] + " -> " + c[2]
                                                for c in GANS_BAD])
def test_gan_pairing_fails(case: tuple) -> None:
    *spec, shows = case
    with pytest.raises(archdsl.SpecError) as info:
        archdsl.load(_gan(*spec))
    assert info.value.codes == ["E0603"]
    d = info.value.diagnostics[0]
    text = "\n".join([d.message, d.label, *(n.message for n in d.notes)])
    assert all(s in text for s in shows), text
    assert d.loc is not None and d.loc.line in (12, 13)


# ---- `if` decided at compile time ------------------------------------------------------------
IFS = [
    # (model parameter default, expression, output type): the untaken branch is never checked
    ("deep: bool = false", "if deep then x |> Conv2d(3, 3) else (x |> Linear(2))", "f32[B, 2]"),
    ("deep: bool = true", "if deep then x |> Linear(3) else (x |> Conv2d(3, 3))", "f32[B, 3]"),
    ("deep: bool = true", "if deep then x |> Linear(3) |> Linear(5) else (x |> Conv2d(3, 3))",
     "f32[B, 5]"),
    ("n: int = 0", "if n > 0 then x |> Linear(10 // n) else x", "f32[B, 4]"),
    ("n: int = 0", "x |> Linear(if n == 0 then 1 else 4 // n)", "f32[B, 1]"),
    ("k: str = \"id\"", 'if k == "id" then x else undefined_name', "f32[B, 4]"),
    ("n: int = 1", "if n == 1 or 1 // 0 == 0 then x else x", "f32[B, 4]"),
    ("n: int = 1", "if n == 2 and 1 // 0 == 0 then x else x |> ReLU", "f32[B, 4]"),
]


@pytest.mark.parametrize(("param", "expr", "out"), IFS, ids=[e for _, e, _ in IFS])
def test_if_takes_one_branch(param: str, expr: str, out: str) -> None:
    g = _graph(f"model Net({param}) {{\n    input x: [B, 4]\n    output y = {expr}\n}}\n")
    assert _type(g, g.outputs[0]) == out


IFS_BAD = [
    ("if B == 1 then x else x |> ReLU", "E0405"),
    ("if 1 then x else x", "E0402"),
    ("if x then x else x", "E0402"),
    ("if true then x |> Conv2d(3, 3) else x", "E0303"),
]


@pytest.mark.parametrize(("expr", "code"), IFS_BAD, ids=[e for e, _ in IFS_BAD])
def test_if_conditions_must_be_decidable(expr: str, code: str) -> None:
    with pytest.raises(archdsl.SpecError) as info:
        _graph(_spec(X4, expr))
    assert info.value.codes == [code]


def test_parameter_count_of_a_classic() -> None:
    """LeNet-5 of LANGUAGE.md section 1: 61,706 parameters, as PyTorch counts them."""
    g = _graph("""model LeNet5(classes: int = 10) {
    input image: f32[B, 1, 28, 28]
    x = image |> Conv2d(6, kernel=5, padding=2) |> Tanh |> AvgPool2d(2)
    x = x |> Conv2d(16, kernel=5) |> Tanh |> AvgPool2d(2)
    assert x: [B, 16, 5, 5]
    x = x |> Flatten |> Linear(120) |> Tanh |> Linear(84) |> Tanh
    output logits: [B, classes] = x |> Linear(classes)
}
""")
    total = sum(math.prod(p.shape) for p in g.parameters().values())
    assert total == (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (
        84 * 10 + 10) == 61_706


# ---- conditional gans (LANGUAGE.md 10.4) -------------------------------------------------------
def _cgan(g_inputs: str, d_inputs: str, setting: str = "") -> str:
    """G and D each concatenate a projection of every input they declare."""
    def model(name: str, inputs: str, out: str) -> str:
        decls = [i.strip() for i in inputs.split(";")]
        names = [d.split(":")[0] for d in decls]
        uses = [f"({n} |> Embedding(10, 4))" if "i64" in d or "i32" in d else
                f"({n} |> Flatten |> Linear(4))" for n, d in zip(names, decls, strict=True)]
        body = "".join(f"    input {d}\n" for d in decls)
        return (f"model {name} {{\n{body}    output {out} = concat([{', '.join(uses)}], dim=1)"
                f" |> Linear({6 if name == 'G' else 1})\n}}\n\n")
    return (model("G", g_inputs, "x") + model("D", d_inputs, "s")
            + f"gan Pair {{\n    generator = G\n    discriminator = D\n{setting}}}\n")


CGANS_OK = [
    # (generator inputs, discriminator inputs, gan setting, latent, conditions)
    ("z: [B, 8]; label: i64[B]", "x: [N, 6]; label: i64[N]", "", True, ["label"]),
    ("z: [B, 8]; a: i64[B]; b: [B, 3]", "x: [B, 6]; b: [B, 3]; a: i64[B]", "", True, ["a", "b"]),
    ("src: [B, 3, 2, 2]", "x: [B, 6]; src: [B, 3, 2, 2]", "    latent = false\n", False,
     ["src"]),
    ("z: [B, 8]", "x: [B, 6]", "    latent = true\n", True, []),
]
CGANS_BAD = [
    # (generator inputs, discriminator inputs, gan setting, code, text the diagnostic shows)
    ("z: [B, 8]; label: i64[B]", "x: [B, 6]", "", "E0603",
     ("generator's condition `label`", "label: i64[B]", "none")),
    ("z: [B, 8]", "x: [B, 6]; label: i64[B]", "", "E0603",
     ("discriminator's condition `label`", "label: i64[B]")),
    ("z: [B, 8]; label: i64[B]", "x: [B, 6]; label: i32[B]", "", "E0603",
     ("`label`", "i64[B]", "i32[B]")),
    ("label: i64[B]; z: [B, 8]", "x: [B, 6]; z: [B, 8]", "", "E0603",
     ("latent", "i64[B]", "latent = false")),
    ("z: [B, 8]", "x: [B, 6]", "    latent = 1\n", "E0402", ("latent", "int")),
]


@pytest.mark.parametrize("case", CGANS_OK, ids=[c[0] + " | " + c[1] for c in CGANS_OK])
def test_conditional_gan(case: tuple) -> None:
    g_inputs, d_inputs, setting, latent, conditions = case
    g = archdsl.load(_cgan(g_inputs, d_inputs, setting)).graph("Pair")
    assert isinstance(g, GanGraph)
    assert (g.latent, g.conditions) == (latent, conditions)
    again = GanGraph.model_validate_json(g.model_dump_json())
    assert (again.latent, again.conditions) == (latent, conditions)


@pytest.mark.parametrize("case", CGANS_BAD, ids=[c[0] + " | " + c[1] for c in CGANS_BAD])
def test_conditional_gan_mismatch_points_at_both_models(case: tuple) -> None:
    g_inputs, d_inputs, setting, code, shows = case
    with pytest.raises(archdsl.SpecError) as info:
        archdsl.load(_cgan(g_inputs, d_inputs, setting))
    assert info.value.codes == [code]
    d = info.value.diagnostics[0]
    text = "\n".join([d.message, d.label, d.hint or "", *(n.message for n in d.notes)])
    assert all(s in text for s in shows), text
    assert d.loc is not None
    if code == "E0603":  # the generator, with a note at the discriminator
        lines = _cgan(g_inputs, d_inputs, setting).splitlines()
        assert lines[d.loc.line - 1].strip() == "generator = G"
        assert [lines[n.loc.line - 1].strip() for n in d.notes] == ["discriminator = D"]
