"""Layers of the language that torch.nn lacks or defines differently.

Each class is self-contained (it uses only `math`, `torch`, `nn` and `F`) and formatted
for 88 columns, because the generator copies the source of the classes a model needs
into the module it writes, which imports nothing but torch and the standard library.
Every other layer lowers to torch.nn.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadAttention(nn.Module):
    """nn.MultiheadAttention's parameters (batch first), computed with SDPA.

    Called with one tensor it is self-attention, with (query, key, value) cross-
    attention. `causal` masks key j > query i (top-left aligned). Dropout acts on the
    attention weights, in training only.
    """

    def __init__(
        self,
        embed_dim: int,
        heads: int,
        kdim: int | None = None,
        vdim: int | None = None,
        bias: bool = True,
        causal: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        kdim = embed_dim if kdim is None else kdim
        vdim = embed_dim if vdim is None else vdim
        self.heads = heads
        self.causal = causal
        self.dropout = dropout
        if kdim == embed_dim and vdim == embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, kdim))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, vdim))
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                nn.init.xavier_uniform_(w)
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if key is None or value is None:  # self-attention: one fused projection
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
            q, k, v = qkv.chunk(3, dim=-1)
        else:
            if hasattr(self, "in_proj_weight"):
                weights = self.in_proj_weight.chunk(3)
            else:
                weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
            bias = self.in_proj_bias
            biases = (None, None, None) if bias is None else bias.chunk(3)
            q, k, v = (
                F.linear(x, w, b)
                for x, w, b in zip((query, key, value), weights, biases, strict=True)
            )
        # (B, T, E) -> (B, heads, T, E / heads)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=dropout, is_causal=self.causal
        )
        return self.out_proj(out.transpose(1, 2).flatten(2))


class AdditiveAttention(nn.Module):
    """Bahdanau attention: score_t = w . tanh(Wq q + Wk v_t + b), softmax over t."""

    def __init__(self, query_dim: int, value_dim: int, units: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, units, bias=False)
        self.key_proj = nn.Linear(value_dim, units)
        self.score = nn.Linear(units, 1, bias=False)

    def forward(self, query: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        # (B, T, U): the query's projection broadcast over the T values
        hidden = torch.tanh(self.query_proj(query)[:, None] + self.key_proj(values))
        weights = torch.softmax(self.score(hidden), dim=1)  # (B, T, 1)
        return torch.bmm(weights.transpose(1, 2), values).squeeze(1)  # (B, E)


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal table pe[t, 2i] = sin(t * w_i), pe[t, 2i + 1] = cos(t * w_i),
    w_i = 10000^(-2i / D).

    The table is computed in float64, kept as a float32 buffer and not saved in the
    state dict: it depends on the shape alone. `reset_buffers` recomputes it, for a
    model built on the meta device once its weights are loaded.
    """

    def __init__(self, dim: int, max_len: int = 5000) -> None:
        super().__init__()
        self.dim = dim
        self.max_len = max_len
        self.register_buffer("pe", self._table(), persistent=False)

    def _table(self, device: torch.device | None = None) -> torch.Tensor:
        f64 = torch.float64
        position = torch.arange(self.max_len, dtype=f64, device=device)[:, None]
        two_i = torch.arange(0, self.dim, 2, dtype=f64, device=device)
        rate = torch.exp(two_i * (-math.log(10000.0) / self.dim))
        pe = torch.zeros(self.max_len, self.dim, dtype=f64, device=device)
        pe[:, 0::2] = torch.sin(position * rate)
        pe[:, 1::2] = torch.cos(position * rate[: self.dim // 2])
        return pe.float()

    def reset_buffers(self, device: torch.device | None = None) -> None:
        self.pe = self._table(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[: x.size(1)]


def same_padding(
    size: tuple, kernel: int | tuple, stride: int | tuple, dilation: int | tuple
) -> list[int]:
    """F.pad's list for `padding="same"` with a stride: the output is
    ceil(size / stride) and an odd cell of padding goes after, as in TensorFlow."""
    n = len(size)
    k, s, d = (
        v if isinstance(v, tuple) else (v,) * n for v in (kernel, stride, dilation)
    )
    pads = []
    for length, k_, s_, d_ in zip(size, k, s, d, strict=True):
        total = max((-(-length // s_) - 1) * s_ + d_ * (k_ - 1) + 1 - length, 0)
        pads.append((total // 2, total - total // 2))
    return [p for pair in reversed(pads) for p in pair]
