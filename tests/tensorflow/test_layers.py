"""Each Keras layer against its PyTorch oracle: same weights, same numbers, same gradients.

A case is data: the Keras layer, the torch module (whose state dict is the canonical weights),
the input shapes, whether it runs in training mode, and its dtype: float64 (to 1e-9), or
float32 (to 1e-5) for kernels TensorFlow has only in float32 (fused BatchNorm).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import tensorflow as tf
import torch
import torch.nn.functional as F
from torch import nn

from archdsl.backends.tensorflow import layers as L

torch.manual_seed(0)


class PaddedConv(nn.Module):
    """An nn.Conv1d/2d behind an explicit (possibly asymmetric) F.pad."""

    def __init__(self, conv: nn.Module, pads: tuple[int, ...]):
        super().__init__()
        self.pads = pads
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pads))

    def state_dict(self, *args, **kwargs):  # the conv's own keys, without the `conv.` prefix
        return self.conv.state_dict()


class Recurrent(nn.Module):
    """nn.RNN/LSTM/GRU returning the output sequence or the last layer's h_n of each direction."""

    def __init__(self, module: nn.Module, return_sequences: bool):
        super().__init__()
        self.rnn = module
        self.return_sequences = return_sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, h = self.rnn(x)
        if self.return_sequences:
            return out
        h = h[0] if isinstance(h, tuple) else h
        dirs = 2 if self.rnn.bidirectional else 1
        return torch.cat(list(h[-dirs:]), dim=-1)

    def state_dict(self, *args, **kwargs):
        return self.rnn.state_dict()


class Attention(nn.Module):
    """nn.MultiheadAttention (batch first) with an optional top-left causal mask."""

    def __init__(self, module: nn.MultiheadAttention, causal: bool):
        super().__init__()
        self.mha = module
        self.causal = causal

    def forward(self, q: torch.Tensor, k: torch.Tensor | None = None,
                v: torch.Tensor | None = None) -> torch.Tensor:
        k = q if k is None else k
        v = k if v is None else v
        mask = torch.ones(q.shape[1], k.shape[1]).triu(1).bool() if self.causal else None
        return self.mha(q, k, v, attn_mask=mask, need_weights=False)[0]

    def state_dict(self, *args, **kwargs):
        return self.mha.state_dict()


class Additive(nn.Module):
    def __init__(self, d: int, e: int, u: int):
        super().__init__()
        self.query_proj = nn.Linear(d, u, bias=False)
        self.key_proj = nn.Linear(e, u)
        self.score = nn.Linear(u, 1, bias=False)

    def forward(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        s = self.score(torch.tanh(self.query_proj(q)[:, None] + self.key_proj(v)))  # (B, T, 1)
        return (torch.softmax(s, dim=1) * v).sum(dim=1)


class Sinusoid(nn.Module):
    def __init__(self, d: int, max_len: int):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float64)[:, None]
        i = torch.arange(0, d, 2, dtype=torch.float64)
        angles = pos * torch.exp(-i * math.log(10000.0) / d)
        pe = torch.zeros(max_len, d, dtype=torch.float64)
        pe[:, 0::2] = torch.sin(angles)
        pe[:, 1::2] = torch.cos(angles)[:, : d // 2]
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[: x.shape[1]]


class LearnedPositions(nn.Module):
    def __init__(self, d: int, max_len: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(max_len, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight[: x.shape[1]]


class Adaptive(nn.Module):
    def __init__(self, size: tuple[int, int]):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, self.size)


@dataclass
class Case:
    id: str
    keras: Callable[[], L.keras.layers.Layer]
    torch: Callable[[], nn.Module]
    inputs: list[tuple[int, ...]]
    training: bool = False
    ints: int = 0  # token ids below this, instead of floats
    dtype: str = "float64"  # float32 reaches kernels TF has only for it (fused BatchNorm)


def _rnn(kind: str, layers: int, bidirectional: bool, seq: bool) -> Case:
    klass = getattr(L, kind)
    tag = f"{kind}-l{layers}{'-bi' if bidirectional else ''}{'-seq' if seq else '-last'}"
    return Case(
        tag, lambda: klass(5, 4, layers=layers, bidirectional=bidirectional, return_sequences=seq),
        lambda: Recurrent(getattr(nn, kind)(5, 4, num_layers=layers, batch_first=True,
                                            bidirectional=bidirectional), seq),
        [(3, 6, 5)])


CASES = [
    Case("Linear", lambda: L.Linear(5, 3), lambda: nn.Linear(5, 3), [(2, 4, 5)]),
    Case("Linear-nobias", lambda: L.Linear(5, 3, bias=False),
         lambda: nn.Linear(5, 3, bias=False), [(2, 5)]),
    Case("Conv2d", lambda: L.Conv2d(3, 4, 3), lambda: nn.Conv2d(3, 4, 3), [(2, 3, 7, 8)]),
    Case("Conv2d-stride-pad-dilation", lambda: L.Conv2d(4, 6, (3, 2), stride=2, padding=(1, 2),
                                                        dilation=(2, 1)),
         lambda: nn.Conv2d(4, 6, (3, 2), stride=2, padding=(1, 2), dilation=(2, 1)),
         [(2, 4, 9, 8)]),
    Case("Conv2d-groups-asymmetric", lambda: L.Conv2d(4, 6, 3, stride=2, padding=((0, 1), (1, 0)),
                                                      groups=2, bias=False),
         lambda: PaddedConv(nn.Conv2d(4, 6, 3, stride=2, groups=2, bias=False), (1, 0, 0, 1)),
         [(2, 4, 8, 8)]),
    Case("Conv2d-depthwise-dilated", lambda: L.Conv2d(3, 6, 3, stride=2, padding=2, dilation=2,
                                                      groups=3),
         lambda: nn.Conv2d(3, 6, 3, stride=2, padding=2, dilation=2, groups=3), [(2, 3, 9, 9)]),
    Case("Conv2d-groups-dilated", lambda: L.Conv2d(4, 6, 2, stride=(2, 1), dilation=(1, 3),
                                                   groups=2),
         lambda: nn.Conv2d(4, 6, 2, stride=(2, 1), dilation=(1, 3), groups=2), [(2, 4, 7, 9)]),
    Case("Conv2d-depthwise", lambda: L.Conv2d(4, 8, 3, padding=1, groups=4),
         lambda: nn.Conv2d(4, 8, 3, padding=1, groups=4), [(2, 4, 6, 6)]),
    Case("Conv1d", lambda: L.Conv1d(3, 5, 3, stride=2, padding=((1, 2),), dilation=2, groups=1),
         lambda: PaddedConv(nn.Conv1d(3, 5, 3, stride=2, dilation=2), (1, 2)), [(2, 3, 11)]),
    Case("Conv1d-groups", lambda: L.Conv1d(4, 6, 2, groups=2, padding=1),
         lambda: nn.Conv1d(4, 6, 2, groups=2, padding=1), [(2, 4, 7)]),
    Case("ConvTranspose2d", lambda: L.ConvTranspose2d(4, 3, 4, stride=2, padding=1),
         lambda: nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1), [(2, 4, 5, 6)]),
    Case("ConvTranspose2d-outpad-groups",
         lambda: L.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0),
                                   output_padding=(1, 2), groups=2),
         lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0),
                                    output_padding=(1, 2), groups=2), [(2, 4, 5, 4)]),
    Case("ConvTranspose2d-small-kernel", lambda: L.ConvTranspose2d(3, 2, 1, stride=2, bias=False),
         lambda: nn.ConvTranspose2d(3, 2, 1, stride=2, bias=False), [(1, 3, 4, 4)]),
    Case("MaxPool2d", lambda: L.MaxPool2d(3, stride=2, padding=1),
         lambda: nn.MaxPool2d(3, stride=2, padding=1), [(2, 3, 9, 8)]),
    Case("MaxPool1d", lambda: L.MaxPool1d(2), lambda: nn.MaxPool1d(2), [(2, 3, 9)]),
    Case("AvgPool2d", lambda: L.AvgPool2d(3, stride=2, padding=1),
         lambda: nn.AvgPool2d(3, stride=2, padding=1), [(2, 3, 9, 8)]),
    Case("AvgPool1d", lambda: L.AvgPool1d(3, stride=1, padding=1),
         lambda: nn.AvgPool1d(3, stride=1, padding=1), [(2, 3, 6)]),
    Case("AdaptiveAvgPool2d", lambda: L.AdaptiveAvgPool2d((3, 2)), lambda: Adaptive((3, 2)),
         [(2, 3, 7, 5)]),
    Case("BatchNorm2d-eval", lambda: L.BatchNorm2d(3, eps=1e-3),
         lambda: nn.BatchNorm2d(3, eps=1e-3), [(4, 3, 5, 5)]),
    Case("BatchNorm2d-train", lambda: L.BatchNorm2d(3, momentum=0.3),
         lambda: nn.BatchNorm2d(3, momentum=0.3), [(4, 3, 5, 5)], training=True),
    Case("BatchNorm2d-train-fused", lambda: L.BatchNorm2d(3, momentum=0.3),
         lambda: nn.BatchNorm2d(3, momentum=0.3), [(4, 3, 5, 5)], training=True,
         dtype="float32"),
    Case("BatchNorm2d-train-fused-noaffine", lambda: L.BatchNorm2d(3, affine=False),
         lambda: nn.BatchNorm2d(3, affine=False), [(4, 3, 5, 5)], training=True,
         dtype="float32"),
    Case("BatchNorm1d-train-noaffine", lambda: L.BatchNorm1d(3, affine=False),
         lambda: nn.BatchNorm1d(3, affine=False), [(6, 3)], training=True),
    Case("BatchNorm1d-seq-train", lambda: L.BatchNorm1d(3), lambda: nn.BatchNorm1d(3),
         [(2, 3, 4)], training=True),
    Case("LayerNorm", lambda: L.LayerNorm(6, eps=1e-3), lambda: nn.LayerNorm(6, eps=1e-3),
         [(2, 4, 6)]),
    Case("Embedding", lambda: L.Embedding(11, 4), lambda: nn.Embedding(11, 4), [(2, 5)],
         ints=11),
    *(_rnn(kind, layers, bi, seq) for kind in ("RNN", "LSTM", "GRU")
      for layers, bi, seq in ((1, False, True), (2, True, True), (2, True, False),
                              (1, False, False))),
    Case("MultiHeadAttention-self", lambda: L.MultiHeadAttention(8, 2),
         lambda: Attention(nn.MultiheadAttention(8, 2, batch_first=True), False), [(2, 5, 8)]),
    Case("MultiHeadAttention-causal-cross", lambda: L.MultiHeadAttention(8, 4, causal=True),
         lambda: Attention(nn.MultiheadAttention(8, 4, batch_first=True), True),
         [(2, 4, 8), (2, 6, 8), (2, 6, 8)]),
    Case("MultiHeadAttention-kdim-vdim-nobias",
         lambda: L.MultiHeadAttention(8, 2, kdim=5, vdim=3, bias=False),
         lambda: Attention(nn.MultiheadAttention(8, 2, kdim=5, vdim=3, bias=False,
                                                 batch_first=True), False),
         [(2, 4, 8), (2, 6, 5), (2, 6, 3)]),
    Case("MultiHeadAttention-kdim-bias", lambda: L.MultiHeadAttention(6, 3, kdim=4, vdim=4),
         lambda: Attention(nn.MultiheadAttention(6, 3, kdim=4, vdim=4, batch_first=True),
                           False), [(2, 3, 6), (2, 5, 4), (2, 5, 4)]),
    Case("AdditiveAttention", lambda: L.AdditiveAttention(4, 6, 5), lambda: Additive(4, 6, 5),
         [(3, 4), (3, 7, 6)]),
    Case("PositionalEncoding", lambda: L.PositionalEncoding(7, max_len=50),
         lambda: Sinusoid(7, 50), [(2, 30, 7)]),
    Case("PositionalEmbedding", lambda: L.PositionalEmbedding(6, max_len=9),
         lambda: LearnedPositions(6, 9), [(2, 5, 6)]),
]


def _canonical(layer: L.keras.layers.Layer) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in layer.canonical().items()} \
        if hasattr(layer, "canonical") else {}


def _canonical_grads(layer, grads: list[tf.Tensor]) -> dict[str, np.ndarray]:
    """Gradients in PyTorch's layout: the weight conversion is linear, so it maps them too."""
    saved = [v.numpy() for v in layer.trainable_variables]
    for v, g in zip(layer.trainable_variables, grads, strict=True):
        v.assign(g)
    out = _canonical(layer)
    for v, s in zip(layer.trainable_variables, saved, strict=True):
        v.assign(s)
    return out


def _close(actual, expected, what: str, rtol: float = 1e-9) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol,
                               atol=rtol * max(1.0, float(np.abs(expected).max(initial=0))),
                               err_msg=what)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_layer_matches_torch(case: Case) -> None:
    ref = case.torch().double()
    ref.train(case.training)
    with _policy(case.dtype):
        keras_layer = case.keras()
    rtol = 1e-9 if case.dtype == "float64" else 1e-5
    state = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    mine = _canonical(keras_layer)
    assert {k: v.shape for k, v in mine.items()} == {k: v.shape for k, v in state.items()}
    if state:
        keras_layer.load_canonical(state)
        for k, v in _canonical(keras_layer).items():
            _close(v, state[k], f"round trip of {k}", rtol=0)

    rng = np.random.default_rng(0)
    xs = [rng.integers(0, case.ints, s) if case.ints else rng.standard_normal(s)
          for s in case.inputs]
    t_in = [torch.tensor(x, requires_grad=not case.ints) for x in xs]
    t_out = ref(*t_in)
    w = rng.standard_normal(tuple(t_out.shape))
    (t_out * torch.tensor(w)).sum().backward()

    k_in = [tf.constant(x if case.ints else x.astype(case.dtype)) for x in xs]
    with tf.GradientTape() as tape:
        tape.watch(k_in)
        kwargs = {"training": True} if case.training else {}
        k_out = keras_layer(*k_in, **kwargs)
        loss = tf.reduce_sum(k_out * tf.constant(w, k_out.dtype))
    _close(k_out.numpy(), t_out.detach().numpy(), "forward", rtol)
    grads = tape.gradient(loss, [*k_in, *keras_layer.trainable_variables])
    if not case.ints:
        for i, (g, t) in enumerate(zip(grads, t_in, strict=False)):
            _close(g.numpy(), t.grad.numpy(), f"gradient of input {i}", rtol)
    t_grads = {k: p.grad.numpy() for k, p in _named_parameters(ref)}
    param_grads = _canonical_grads(keras_layer, grads[len(k_in):])
    assert set(t_grads) <= set(param_grads)
    for k, g in t_grads.items():
        _close(param_grads[k], g, f"gradient of {k}", rtol)
    buffers = {k: v.numpy() for k, v in ref.state_dict().items() if k not in t_grads}
    for k, v in _canonical(keras_layer).items():
        if k in buffers:
            _close(v, buffers[k], f"buffer {k} after the step", rtol)


def _named_parameters(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters under their state-dict keys (wrappers expose their inner module's keys)."""
    keys = set(module.state_dict())
    return [(k.split(".", 1)[1] if k not in keys else k, p)
            for k, p in module.named_parameters() if p.grad is not None]


class _policy:
    """Layers built inside run in this Keras dtype policy."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> None:
        self.saved = L.keras.config.dtype_policy()
        L.keras.config.set_dtype_policy(self.name)

    def __exit__(self, *exc: object) -> None:
        L.keras.config.set_dtype_policy(self.saved)


INITS = [  # (layer, variable, the bound of PyTorch's default uniform init, or None)
    (lambda: L.Linear(50, 20), "kernel", 1 / math.sqrt(50)),
    (lambda: L.Conv2d(6, 4, 3, groups=2), "kernel", 1 / math.sqrt(3 * 9)),
    (lambda: L.ConvTranspose2d(6, 4, 3, groups=2), "kernel", 1 / math.sqrt(2 * 9)),
    (lambda: L.LSTM(10, 16), "recurrent_kernel_l0", 1 / math.sqrt(16)),
    (lambda: L.MultiHeadAttention(16, 2), "query_kernel", math.sqrt(6 / (16 + 48))),
    (lambda: L.Parameter((30, 40), init="xavier_uniform"), "weight", math.sqrt(6 / 70)),
]


@pytest.mark.parametrize(("make", "name", "bound"), INITS)
def test_default_init_is_pytorchs(make, name: str, bound: float) -> None:
    layer = make()
    w = next(v for v in layer.weights if v.name == name).numpy()
    assert bound * 0.8 < np.abs(w).max() <= bound


@pytest.mark.parametrize(("init", "check"), [
    ("zeros", lambda w: (w == 0).all()), ("ones", lambda w: (w == 1).all()),
    ("uniform", lambda w: 0 <= w.min() and w.max() < 1),
    ("normal", lambda w: abs(w.std() - 1) < 0.1),
    # N(0, 0.02) cut at two standard deviations: spread 0.88 * 0.02
    ("trunc_normal", lambda w: np.abs(w).max() <= 0.04 and abs(w.std() - 0.0176) < 0.002),
])
def test_parameter_init(init: str, check) -> None:
    assert check(L.Parameter((40, 50), init=init).weight.numpy())
