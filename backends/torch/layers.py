"""Layers of the language that torch.nn lacks or defines differently.

Each class and function uses only `math`, `torch`, `nn`, `F` and the others here,
and is formatted for 88 columns, because the generator copies the source of those
a model needs into the module it writes, which imports nothing but torch and the
standard library.
Every other layer lowers to torch.nn.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadAttention(nn.Module):
    """nn.MultiheadAttention's parameters (batch first), computed with SDPA.

    Called with one tensor it is self-attention, with (query, key, value) cross-
    attention. `causal` masks key j > query i (top-left aligned); `key_padding_mask`
    (B, Tk) hides the keys where it is true. Dropout acts on the attention weights, in
    training only.
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
        key_padding_mask: torch.Tensor | None = None,
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
        out = attend(q, k, v, self.causal, key_padding_mask, dropout)
        return self.out_proj(out.transpose(1, 2).flatten(2))


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    key_padding_mask: torch.Tensor | None,
    dropout: float,
) -> torch.Tensor:
    """Attention of (B, heads, T, head_dim) tensors with PyTorch's masks: `causal` lets
    query i see keys j <= i (top-left), `key_padding_mask` (B, Tk) hides the keys where
    it is true. A query that sees no key is NaN, as in nn.MultiheadAttention (SDPA alone
    gives 0 there)."""
    if key_padding_mask is None:
        return F.scaled_dot_product_attention(
            q, k, v, dropout_p=dropout, is_causal=causal
        )
    keep = ~key_padding_mask[:, None, :]  # (B, 1, Tk)
    if causal:
        tq, tk = q.shape[-2], k.shape[-2]
        keep = keep & torch.ones(tq, tk, dtype=torch.bool, device=q.device).tril()
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=keep[:, None], dropout_p=dropout
    )
    blind = ~keep.any(-1)  # (B, Tq) or (B, 1): queries that see no key
    return out.masked_fill(blind[:, None, :, None], math.nan)


def rotary(x: torch.Tensor, base: float) -> torch.Tensor:
    """Rotary position embeddings of (B, heads, T, head_dim) at positions 0..T-1, the
    rotate-half convention (Hugging Face's Llama): inv_freq = base^(-2i / head_dim), the
    first and second halves of each head paired. Angles are computed in float64."""
    t, head_dim = x.shape[-2], x.shape[-1]
    f64 = torch.float64
    two_i = torch.arange(0, head_dim, 2, dtype=f64, device=x.device)
    inv_freq = base ** (-two_i / head_dim)
    angles = torch.outer(torch.arange(t, dtype=f64, device=x.device), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)  # (T, head_dim)
    first, second = x.chunk(2, dim=-1)
    rotated = torch.cat([-second, first], dim=-1)
    return x * angles.cos().to(x.dtype) + rotated * angles.sin().to(x.dtype)


class Attention(nn.Module):
    """The decoder attention of Llama-style models, in Hugging Face's parameter names.

    Query head i reads key/value head i // (heads / kv_heads) (grouped-query attention);
    `rotary` rotates queries and keys by their positions; scores are scaled by
    1/sqrt(head_dim). Called with one tensor it is self-attention, with (query, key,
    value) cross-attention; masks as `attend`; dropout on the weights in training only.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        kv_heads: int | None = None,
        bias: bool = False,
        causal: bool = False,
        rotary: bool = False,
        rope_base: float = 10000.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        kv_heads = heads if kv_heads is None else kv_heads
        self.heads, self.kv_heads = heads, kv_heads
        self.causal, self.rotary, self.rope_base = causal, rotary, rope_base
        self.dropout = dropout
        head_dim = dim // heads
        self.q_proj = nn.Linear(dim, heads * head_dim, bias=bias)
        self.k_proj = nn.Linear(dim, kv_heads * head_dim, bias=bias)
        self.v_proj = nn.Linear(dim, kv_heads * head_dim, bias=bias)
        self.o_proj = nn.Linear(heads * head_dim, dim, bias=bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        key = query if key is None else key
        value = query if value is None else value
        # (B, T, heads * head_dim) -> (B, heads, T, head_dim)
        q = self.q_proj(query).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        k = self.k_proj(key).unflatten(-1, (self.kv_heads, -1)).transpose(1, 2)
        v = self.v_proj(value).unflatten(-1, (self.kv_heads, -1)).transpose(1, 2)
        if self.rotary:
            q, k = rotary(q, self.rope_base), rotary(k, self.rope_base)
        group = self.heads // self.kv_heads  # query heads per key/value head
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        dropout = self.dropout if self.training else 0.0
        out = attend(q, k, v, self.causal, key_padding_mask, dropout)
        return self.o_proj(out.transpose(1, 2).flatten(2))


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


class DropPath(nn.Module):
    """Stochastic depth (timm's DropPath): in training, each example's whole input is
    zeroed with probability p and the survivors are scaled by 1/(1-p)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"

