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
    # ---- LANGUAGE.md section 10: convolution ---------------------------------------------
    ("Conv3d", "x: [B, 2, 4, 5, 4]", "x |> Conv3d(3, 3, padding=1)"),
    ("Conv3d stride 2 same tuples", "x: [B, 2, 5, 4, 5]",
     "x |> Conv3d(3, (2, 3, 2), stride=2, padding=\"same\", bias=false)"),
    ("Conv2d reflect at the border", "x: [B, 2, 5, 5]",
     "x |> Conv2d(3, 3, padding=(4, 2), padding_mode=\"reflect\")"),
    ("Conv2d reflect same stride 2", "x: [B, 2, 7, 6]",
     "x |> Conv2d(3, 4, stride=2, padding=\"same\", padding_mode=\"reflect\")"),
    ("Conv1d replicate", "x: [B, 2, 6]",
     "x |> Conv1d(3, 3, padding=2, padding_mode=\"replicate\")"),
    ("Conv1d circular whole size groups", "x: [B, 4, 4]",
     "x |> Conv1d(6, 3, padding=4, groups=2, padding_mode=\"circular\")"),
    ("ConvTranspose1d", "x: [B, 3, 5]",
     "x |> ConvTranspose1d(2, 4, stride=2, padding=1, output_padding=1)"),
    ("ConvTranspose1d groups no bias", "x: [B, 4, 3]",
     "x |> ConvTranspose1d(6, 3, groups=2, bias=false)"),
    # ---- section 10: pooling ---------------------------------------------------------------
    ("MaxPool3d", "x: [B, 2, 4, 5, 6]", "x |> MaxPool3d(2)"),
    ("MaxPool2d ceil_mode", "x: [B, 2, 7, 8]", "x |> MaxPool2d(3, stride=2, ceil_mode=true)"),
    ("MaxPool1d ceil_mode drops a window", "x: [B, 2, 4]",
     "x |> MaxPool1d(1, stride=2, ceil_mode=true)"),
    ("MaxPool2d ceil_mode padding", "x: [B, 2, 6, 5]",
     "x |> MaxPool2d(3, stride=2, padding=1, ceil_mode=true)"),
    ("AvgPool1d ceil_mode overhang", "x: [B, 2, 9]",
     "x |> AvgPool1d(4, stride=3, padding=2, ceil_mode=true)"),
    ("AvgPool2d ceil_mode no pad count", "x: [B, 2, 6, 7]",
     "x |> AvgPool2d(3, stride=2, padding=1, ceil_mode=true, count_include_pad=false)"),
    ("AvgPool3d ceil_mode no pad count", "x: [B, 2, 5, 5, 5]",
     "x |> AvgPool3d(3, stride=2, padding=1, ceil_mode=true, count_include_pad=false)"),
    ("AvgPool3d", "x: [B, 2, 4, 4, 6]", "x |> AvgPool3d((2, 2, 3))"),
    ("AdaptiveAvgPool1d uneven bins", "x: [B, 3, 10]", "x |> AdaptiveAvgPool1d(3)"),
    ("AdaptiveMaxPool2d", "x: [B, 2, 7, 9]", "x |> AdaptiveMaxPool2d((2, 4))"),
    ("GlobalMaxPool", "x: [B, 3, 5, 4]", "x |> GlobalMaxPool"),
    # ---- section 10: normalisation ---------------------------------------------------------
    ("BatchNorm3d", "x: [B, 3, 2, 3, 4]", "x |> BatchNorm3d"),
    ("GroupNorm", "x: [B, 6, 4, 3]", "x |> GroupNorm(3)"),
    ("GroupNorm no affine rank 3 eps", "x: [B, 4, 5]", "x |> GroupNorm(2, eps=0.1, affine=false)"),
    ("InstanceNorm1d", "x: [B, 3, 6]", "x |> InstanceNorm1d"),
    ("InstanceNorm2d affine tracking", "x: [B, 3, 4, 4]",
     "x |> InstanceNorm2d(affine=true, track_running_stats=true, momentum=0.3)"),
    ("LayerNorm no bias", "x: [B, 3, 8]", "x |> LayerNorm(bias=false)"),
    ("LayerNorm no affine", "x: [B, 8]", "x |> LayerNorm(elementwise_affine=false)"),
    ("RMSNorm", "x: [B, 3, 8]", "x |> RMSNorm"),
    ("RMSNorm no affine eps", "x: [B, 6]", "x |> RMSNorm(eps=0.1, elementwise_affine=false)"),
    # ---- section 10: activations -----------------------------------------------------------
    ("ReLU6 both kinks", "x: [B, 8]", "x * 5.0 |> ReLU6"),
    ("relu6", "x: [B, 8]", "relu6(x * 5.0)"),
    ("Hardswish", "x: [B, 8]", "x * 4.0 |> Hardswish"),
    ("hardswish", "x: [B, 8]", "hardswish(x * 4.0)"),
    ("Hardsigmoid", "x: [B, 8]", "x * 4.0 |> Hardsigmoid"),
    ("hardsigmoid", "x: [B, 8]", "hardsigmoid(x * 4.0)"),
    ("Mish", "x: [B, 8]", "x |> Mish"),
    ("mish", "x: [B, 8]", "mish(x * 3.0)"),
    ("ELU alpha", "x: [B, 8]", "x |> ELU(alpha=0.5)"),
    ("elu", "x: [B, 8]", "elu(x)"),
    ("Softplus beta threshold", "x: [B, 8]", "x * 3.0 |> Softplus(beta=2, threshold=5)"),
    ("softplus", "x: [B, 8]", "softplus(x)"),
    ("PReLU", "x: [B, 6]", "x |> PReLU"),
    ("PReLU per channel", "x: [B, 3, 4]", "x |> PReLU(num_parameters=3, init=0.1)"),
    ("LogSoftmax dim 1", "x: [B, 3, 5]", "x |> LogSoftmax(dim=1)"),
    ("log_softmax", "x: [B, 5]", "log_softmax(x)"),
    # ---- section 10: dropout (off in the comparison: p = 0 in every backend) ---------------
    ("Dropout1d", "x: [B, 3, 5]", "x |> Dropout1d(0.3)"),
    ("Dropout2d", "x: [B, 3, 4, 4]", "x |> Dropout2d(0.3)"),
    ("DropPath residual", "x: [B, 3, 4]", "x + (x |> Linear(4) |> DropPath(0.2))"),
    # ---- section 10: padding and resampling ------------------------------------------------
    ("Pad constant value", "x: [B, 3, 4, 4]", "x |> Pad((1, 2, 0, 3), value=0.5)"),
    ("Pad constant batch and channels", "x: [B, 2, 3]", "x |> Pad((1, 0, 0, 2, 1, 1))"),
    ("Pad reflect at the border", "x: [B, 2, 4, 5]", "x |> Pad((4, 4, 3, 3), mode=\"reflect\")"),
    ("Pad reflect last dim of 4-d", "x: [B, 2, 3, 5]", "x |> Pad((2, 1), mode=\"reflect\")"),
    ("pad replicate", "x: [B, 2, 4]", "pad(x, (3, 1), mode=\"replicate\")"),
    ("pad circular whole size", "x: [B, 2, 3, 3]", "pad(x, (3, 1, 0, 2), mode=\"circular\")"),
    ("Upsample nearest scale", "x: [B, 2, 3, 4]", "x |> Upsample(scale=(2, 1.5))"),
    ("Upsample nearest size", "x: [B, 2, 3, 4]", "x |> Upsample(size=(5, 7))"),
    ("Upsample bilinear align_corners", "x: [B, 2, 3, 4]",
     "x |> Upsample(scale=2, mode=\"bilinear\", align_corners=true)"),
    ("Upsample bilinear", "x: [B, 2, 3, 4]", "x |> Upsample(size=(5, 3), mode=\"bilinear\")"),
    ("Upsample bicubic", "x: [B, 2, 4, 4]", "x |> Upsample(size=(7, 5), mode=\"bicubic\")"),
    ("Upsample bicubic align_corners", "x: [B, 2, 3, 4]",
     "x |> Upsample(scale=2, mode=\"bicubic\", align_corners=true)"),
    ("interpolate linear third", "x: [B, 2, 7]", "interpolate(x, scale=1 / 3, mode=\"linear\")"),
    ("interpolate linear align_corners", "x: [B, 2, 4]",
     "interpolate(x, size=9, mode=\"linear\", align_corners=true)"),
    ("interpolate nearest 3-d", "x: [B, 2, 2, 3, 2]", "interpolate(x, scale=2)"),
    ("PixelShuffle", "x: [B, 8, 3, 2]", "x |> PixelShuffle(2)"),
    ("PixelUnshuffle", "x: [B, 2, 4, 6]", "x |> PixelUnshuffle(2)"),
    # ---- section 10: recurrent -------------------------------------------------------------
    ("RNNCell with state", "x: [B, 5]; h: [B, 4]", "RNNCell(4)(x, h)"),
    ("GRUCell from zeros no bias", "x: [B, 5]", "x |> GRUCell(4, bias=false)"),
    ("GRUCell with state", "x: [B, 3]; h: [B, 4]", "GRUCell(4)(x, h)"),
    ("LSTMCell with states", "x: [B, 5]; h: [B, 4]; c: [B, 4]",
     "h2, c2 = LSTMCell(4)(x, h, c)\noutput y = concat([h2, c2], dim=1)"),
    ("LSTMCell unrolled", "x: [B, 3, 2]",
     "cell = LSTMCell(4)\nh, c = cell(x[:, 0])\nfor t in range(1, 3) {\n"
     "    h, c = cell(x[:, t], h, c)\n}\noutput y = h"),
    ("GRU bidirectional with state", "x: [B, 4, 3]; h: [2, B, 3]",
     "out, hn = GRU(3, bidirectional=true, return_state=true)(x, h)\n"
     "output y = concat([out[:, -1], hn[0], hn[1]], dim=1)"),
    ("LSTM states in and out", "x: [B, 4, 3]; h: [2, B, 5]; c: [2, B, 5]",
     "out, hn, cn = LSTM(5, layers=2, return_state=true)(x, h, c)\n"
     "output y = concat([out[:, 0], hn[1], cn[0]], dim=1)"),
    ("RNN last with state", "x: [B, 4, 3]; h: [2, B, 4]",
     "RNN(4, layers=2, return_sequences=false)(x, h)"),
    ("LSTM last states out", "x: [B, 4, 3]",
     "last, hn, cn = LSTM(3, bidirectional=true, return_sequences=false, return_state=true)(x)\n"
     "output y = concat([last, hn[1], cn[0]], dim=1)"),
    # ---- section 10: attention -------------------------------------------------------------
    ("MultiHeadAttention masks all keys but one", "x: [B, 4, 6]",
     "m = x[:, :, 0] > amin(x[:, :, 0], 1, keepdim=true)\n"
     "output y = MultiHeadAttention(2)(x, key_padding_mask=m)"),
    ("MultiHeadAttention cross mask causal", "q: [B, 3, 4]; kv: [B, 5, 4]",
     "m = kv[:, :, 0] > amin(kv[:, :, 0], 1, keepdim=true) + 0.5\n"
     "output y = MultiHeadAttention(2)(q, kv, kv, key_padding_mask=m)"),
    ("Attention grouped-query rotary causal", "x: [B, 5, 16]",
     "x |> Attention(4, kv_heads=2, rotary=true, causal=true)"),
    ("Attention rotary base one head", "x: [B, 4, 6]",
     "x |> Attention(1, rotary=true, rope_base=100.0)"),
    ("Attention cross bias mask", "q: [B, 3, 8]; kv: [B, 5, 8]",
     "m = kv[:, :, 0] > amin(kv[:, :, 0], 1, keepdim=true) + 0.5\n"
     "output y = Attention(2, bias=true)(q, kv, kv, key_padding_mask=m)"),
    # Causal, a query sees no key unless the one left is the first (NaN otherwise, as PyTorch).
    ("Attention masks all keys but the first causal", "x: [B, 4, 8]",
     "m = concat([x[:, 0:1, 0] != x[:, 0:1, 0], x[:, 1:, 0] == x[:, 1:, 0]], dim=1)\n"
     "output y = Attention(4, kv_heads=1, causal=true)(x, key_padding_mask=m)"),
    ("Attention dropout", "x: [B, 4, 4]", "x |> Attention(2, dropout=0.3)"),
    # ---- section 10: tables and parameters -------------------------------------------------
    ("Embedding padding_idx", "t: i64[B, 5]", "t |> Embedding(4, 3, padding_idx=0)"),
    ("Embedding padding_idx negative", "t: i64[B, 5]", "t |> Embedding(4, 3, padding_idx=-1)"),
    ("Parameter constant layer scale", "x: [B, 3, 6]",
     "x * Parameter([6], init=\"constant\", value=1e-6)"),
    ("Parameter kaiming_uniform", "x: [B, 6]", "x @ Parameter([6, 4], init=\"kaiming_uniform\")"),
    ("Parameter kaiming_normal", "x: [B, 6]", "x @ Parameter([6, 4], init=\"kaiming_normal\")"),
    # ---- section 10: functions -------------------------------------------------------------
    ("exp log sqrt rsqrt abs", "x: [B, 6]",
     "exp(x) + log(abs(x) + 0.5) + sqrt(abs(x) + 0.5) + rsqrt(abs(x) + 0.5)"),
    ("clamp both bounds", "x: [B, 6]", "clamp(x, min=-0.5, max=0.5)"),
    ("clamp min only", "x: [B, 6]", "clamp(x, min=0)"),
    ("maximum minimum broadcast", "a: [B, 6]; b: [6]", "maximum(a, b) - minimum(a, b * 0.5)"),
    ("where tensors and numbers", "x: [B, 6]; z: [6]",
     "where(x > 0, x, z) + where(x < z, 1.0, x) + where(x == x, 1, 0)"),
    ("masked_fill broadcast mask", "x: [B, 3, 6]; z: [6]", "masked_fill(x, z >= 0.2, -1e9) * 1e-9"),
    ("zeros_like ones_like", "x: [B, 6]", "x * zeros_like(x) + ones_like(x) * x"),
    ("randn_like", "x: [B, 6]", "x + randn_like(x)"),
    ("amax amin", "x: [B, 3, 6]", "amax(x, 1) + amin(x, [0, 1], keepdim=true)[0]"),
    ("amax all", "x: [B, 3]", "x * amax(x)"),
    ("var", "x: [B, 3, 6]", "var(x, 1) + var(x, [0, 1], keepdim=true, unbiased=true)[0]"),
    ("var all", "x: [B, 3]", "x * var(x)"),
    ("stack", "a: [B, 4]; b: [B, 4]", "stack([a, b * 2.0], dim=1)"),
    ("split list and chunk uneven", "x: [B, 7]",
     "a, b, c = split(x, [1, 2, 4], dim=1)\np, q, r = chunk(x, 3, dim=-1)\n"
     "output y = concat([c, a, b, r, q, p], dim=1)"),
    ("split int", "x: [B, 5, 2]", "p, q, r = split(x, 2, dim=1)\noutput y = concat([r, p], dim=1)"),
    ("unsqueeze squeeze flatten", "x: [B, 1, 3, 4]", "flatten(unsqueeze(squeeze(x, 1), 0), 0, 1)"),
    ("flatten middle", "x: [B, 2, 3, 4]", "flatten(x, 1, 2)"),
    ("comparisons", "a: [B, 4]; b: [4]",
     "where(a != b, a, 0.0) + where(a <= 0.1, b, a) + where(0.2 >= a, 1.0, 0.0)"),
    ("pow", "x: [B, 4]", "x ** 2 + abs(x) ** 0.5 - x ** 3"),
    ("bool arithmetic and true division", "x: [B, 4]; t: i64[B, 4]",
     "x * (x > 0) + t / (t + 1) + (x > 0) * 0.5"),
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
