"""The helper layers and the lowerings that differ from plain torch.nn, each against an
independent oracle: torch's own module, a NumPy formula or a loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import archdsl
from archdsl.backends.torch import build
from archdsl.backends.torch.layers import AdditiveAttention, MultiHeadAttention, PositionalEncoding

ATTENTION = [
    # (label, embed, heads, kdim, vdim, tq, tk, bias, causal)
    ("self", 8, 2, None, None, 5, 5, True, False),
    ("self causal", 8, 4, None, None, 6, 6, True, True),
    ("cross", 8, 2, None, None, 3, 7, True, False),
    ("cross causal top-left", 8, 2, None, None, 4, 6, True, True),
    ("cross other sizes", 8, 2, 5, 3, 4, 6, True, False),
    ("no bias", 6, 3, 4, 4, 2, 5, False, False),
]


@pytest.mark.parametrize(("label", "e", "heads", "kdim", "vdim", "tq", "tk", "bias", "causal"),
                         ATTENTION, ids=[a[0] for a in ATTENTION])
def test_multi_head_attention_is_nn_multihead_attention(
        label: str, e: int, heads: int, kdim: int | None, vdim: int | None, tq: int, tk: int,
        bias: bool, causal: bool) -> None:
    torch.manual_seed(0)
    ours = MultiHeadAttention(e, heads, kdim=kdim, vdim=vdim, bias=bias, causal=causal,
                              dropout=0.3).eval()
    theirs = nn.MultiheadAttention(e, heads, kdim=kdim, vdim=vdim, bias=bias, batch_first=True,
                                   dropout=0.3).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    q = torch.randn(2, tq, e, requires_grad=True)
    k, v = torch.randn(2, tk, kdim or e), torch.randn(2, tk, vdim or e)
    mask = torch.ones(tq, tk, dtype=torch.bool).triu(1) if causal else None
    self_attention = label.startswith("self")
    got = ours(q) if self_attention else ours(q, k, v)
    args = (q, q, q) if self_attention else (q, k, v)
    want, _ = theirs(*args, attn_mask=mask, need_weights=False)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    (g_ours,) = torch.autograd.grad(got.square().sum(), q)
    (g_theirs,) = torch.autograd.grad(want.square().sum(), q)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-5, atol=1e-6)


def test_multi_head_attention_initialises_like_pytorch() -> None:
    torch.manual_seed(0)
    m = MultiHeadAttention(64, 4)
    bound = math.sqrt(6 / (64 + 3 * 64))  # xavier_uniform of the [3E, E] in-projection
    assert m.in_proj_weight.abs().max() <= bound and m.in_proj_weight.abs().max() > 0.9 * bound
    assert not m.in_proj_bias.any() and not m.out_proj.bias.any()


def test_attention_dropout_acts_in_training_only() -> None:
    m = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(2, 6, 8)
    m.eval()
    torch.testing.assert_close(m(x), m(x))
    m.train()
    assert not torch.equal(m(x), m(x))


def test_positional_encoding_is_the_sinusoid_table() -> None:
    d, t = 7, 9  # an odd width: one more sine column than cosine columns
    x = torch.randn(2, t, d)
    pos = np.arange(t)[:, None]
    angle = pos * np.exp(-np.arange(0, d, 2) * math.log(10000.0) / d)
    table = np.zeros((t, d))
    table[:, 0::2] = np.sin(angle)
    table[:, 1::2] = np.cos(angle[:, : d // 2])
    pe = PositionalEncoding(d, max_len=20)
    torch.testing.assert_close(pe(x), x + torch.tensor(table, dtype=torch.float32))
    assert list(pe.state_dict()) == []


def test_additive_attention_is_bahdanau() -> None:
    torch.manual_seed(0)
    m = AdditiveAttention(4, 3, 5)
    q, v = torch.randn(2, 4), torch.randn(2, 6, 3)
    wq, wk, bk = m.query_proj.weight, m.key_proj.weight, m.key_proj.bias
    w = m.score.weight[0]
    want = []
    for b in range(2):
        scores = torch.stack([w @ torch.tanh(wq @ q[b] + wk @ v[b, t] + bk) for t in range(6)])
        weights = scores.softmax(0)
        want.append(sum(weights[t] * v[b, t] for t in range(6)))
    torch.testing.assert_close(m(q, v), torch.stack(want))
    assert list(m.state_dict()) == ["query_proj.weight", "key_proj.weight", "key_proj.bias",
                                    "score.weight"]


def _model(body: str, inputs: str = "input x: [B, T, 4]") -> nn.Module:
    torch.manual_seed(0)
    return build(archdsl.load(f"model M() {{\n    {inputs}\n    {body}\n}}\n").graph()).eval()


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_last_state_is_h_n_of_the_last_layer(op: str, bidirectional: bool) -> None:
    """Forward after step T and backward after step 1 (PyTorch's h_n), not output[:, -1]."""
    flag = "true" if bidirectional else "false"
    m = _model(f"output y = x |> {op}(3, layers=2, bidirectional={flag}, "
               "return_sequences=false)")
    rnn = getattr(m, op.lower())
    x = torch.randn(2, 5, 4)
    seq, _ = rnn(x)
    want = torch.cat([seq[:, -1, :3], seq[:, 0, 3:]], 1) if bidirectional else seq[:, -1]
    torch.testing.assert_close(m(x), want)


def test_same_padding_puts_the_odd_pixel_after() -> None:
    """"same" with an even kernel pads (before, after) = (1, 2), as TensorFlow does."""
    m = _model('output y = x |> Conv2d(2, kernel=4, stride=2, padding="same")',
               "input x: [B, 3, 7, 7]")
    x = torch.randn(1, 3, 7, 7)
    w, b = m.conv.weight.detach().numpy(), m.conv.bias.detach().numpy()
    padded = np.pad(x[0].numpy(), ((0, 0), (1, 2), (1, 2)))  # total 3 = 3 * 2 + 4 - 7
    want = np.zeros((2, 4, 4))
    for o in range(2):
        for i in range(4):
            for j in range(4):
                want[o, i, j] = (padded[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4] * w[o]).sum() + b[o]
    torch.testing.assert_close(m(x)[0], torch.tensor(want, dtype=torch.float32),
                               rtol=1e-5, atol=1e-5)


INITS = [
    # (init, check on a [200, 300] sample)
    ("zeros", lambda t: bool((t == 0).all())),
    ("ones", lambda t: bool((t == 1).all())),
    ("uniform", lambda t: 0 <= t.min() and t.max() < 1 and abs(t.mean() - 0.5) < 0.01),
    ("normal", lambda t: abs(t.mean()) < 0.01 and abs(t.std() - 1) < 0.01),
    ("xavier_uniform", lambda t: t.abs().max() <= math.sqrt(6 / 500)
     and abs(t.std() - math.sqrt(2 / 500)) < 0.002),
    # N(0, 0.02) cut at two standard deviations: spread 0.88 * 0.02
    ("trunc_normal", lambda t: abs(t.std() - 0.0176) < 0.001 and t.abs().max() <= 0.04),
]


@pytest.mark.parametrize(("init", "check"), INITS, ids=[i[0] for i in INITS])
def test_parameter_init(init: str, check: object) -> None:
    m = _model(f'output y = x @ Parameter([300, 200], init="{init}")', "input x: [B, 300]")
    assert check(m.param.detach())  # type: ignore[operator]
