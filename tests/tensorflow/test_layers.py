"""Each layer as the Keras target writes it, against PyTorch's: same weights, same numbers,
same gradients, same buffers after a training step, in float64 to 1e-9.

A case is data: the input types and the expression a one-layer model computes, whether it
runs in training mode, and its dtype: float64, or float32 (to 1e-5) for kernels TensorFlow
has only in float32 (fused batch norm). Both models come from the spec through their
backends, so the case checks the lowering, the layout pass and the weight conversion at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import archdsl
from archdsl.backends import tensorflow as backend
from archdsl.backends import torch as torch_backend


@dataclass
class Case:
    id: str
    inputs: str  # `name: type`, separated by `;`; the batch is 2
    body: str
    training: bool = False
    dtype: str = "float64"  # float32 reaches kernels TF has only for it (fused BatchNorm)
    rtol: float | None = None  # where one side rounds a constant to float32 (the reason given)


def _rnn(kind: str, layers: int, bidirectional: bool, sequences: bool) -> Case:
    args = f"4, layers={layers}, bidirectional={str(bidirectional).lower()}, " \
           f"return_sequences={str(sequences).lower()}"
    tag = f"{kind}-l{layers}{'-bi' if bidirectional else ''}{'-seq' if sequences else '-last'}"
    return Case(tag, "x: [B, 6, 5]", f"x |> {kind}({args})")


CASES = [
    Case("Linear", "x: [B, 4, 5]", "x |> Linear(3)"),
    Case("Linear-nobias", "x: [B, 5]", "x |> Linear(3, bias=false)"),
    Case("Conv2d", "x: [B, 3, 7, 8]", "x |> Conv2d(4, 3)"),
    Case("Conv2d-stride-pad-dilation", "x: [B, 4, 9, 8]",
         "x |> Conv2d(6, (3, 2), stride=2, padding=(1, 2), dilation=(2, 1))"),
    Case("Conv2d-same-stride-groups", "x: [B, 4, 8, 8]",
         "x |> Conv2d(6, 3, stride=2, padding=\"same\", groups=2, bias=false)"),
    Case("Conv2d-depthwise-dilated", "x: [B, 3, 9, 9]",
         "x |> Conv2d(6, 3, stride=2, padding=2, dilation=2, groups=3)"),
    Case("Conv2d-groups-dilated", "x: [B, 4, 7, 9]",
         "x |> Conv2d(6, 2, stride=(2, 1), dilation=(1, 3), groups=2)"),
    Case("Conv2d-depthwise-same", "x: [B, 4, 6, 6]", "x |> Conv2d(8, 3, padding=1, groups=4)"),
    Case("Conv1d", "x: [B, 3, 11]", "x |> Conv1d(5, 3, stride=2, padding=\"same\", dilation=2)"),
    Case("Conv1d-groups", "x: [B, 4, 7]", "x |> Conv1d(6, 2, groups=2, padding=1)"),
    Case("ConvTranspose2d", "x: [B, 4, 5, 6]", "x |> ConvTranspose2d(3, 4, stride=2, padding=1)"),
    Case("ConvTranspose2d-outpad-groups", "x: [B, 4, 5, 4]",
         "x |> ConvTranspose2d(6, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2),"
         " groups=2)"),
    Case("ConvTranspose2d-small-kernel", "x: [B, 3, 4, 4]",
         "x |> ConvTranspose2d(2, 1, stride=2, bias=false)"),
    Case("MaxPool2d", "x: [B, 3, 9, 8]", "x |> MaxPool2d(3, stride=2, padding=1)"),
    Case("MaxPool2d-stride-over-kernel", "x: [B, 3, 9, 9]", "x |> MaxPool2d(2, stride=3)"),
    Case("MaxPool1d", "x: [B, 3, 9]", "x |> MaxPool1d(2)"),
    Case("AvgPool2d", "x: [B, 3, 9, 8]", "x |> AvgPool2d(3, stride=2, padding=1)"),
    Case("AvgPool1d", "x: [B, 3, 6]", "x |> AvgPool1d(3, stride=1, padding=1)"),
    Case("AdaptiveAvgPool2d", "x: [B, 3, 7, 5]", "x |> AdaptiveAvgPool2d((3, 2))"),
    Case("GlobalAvgPool", "x: [B, 3, 7, 5]", "x |> GlobalAvgPool"),
    Case("BatchNorm2d-eval", "x: [B, 3, 5, 5]", "x |> BatchNorm2d(eps=1e-3)"),
    Case("BatchNorm2d-train", "x: [B, 3, 5, 5]", "x |> BatchNorm2d(momentum=0.3)",
         training=True),
    Case("BatchNorm2d-train-fused", "x: [B, 3, 5, 5]", "x |> BatchNorm2d(momentum=0.3)",
         training=True, dtype="float32"),
    Case("BatchNorm2d-train-fused-noaffine", "x: [B, 3, 5, 5]",
         "x |> BatchNorm2d(affine=false)", training=True, dtype="float32"),
    Case("BatchNorm1d-train-noaffine", "x: [B, 3]", "x |> BatchNorm1d(affine=false)",
         training=True),
    Case("BatchNorm1d-seq-train", "x: [B, 3, 4]", "x |> BatchNorm1d", training=True),
    Case("LayerNorm", "x: [B, 4, 6]", "x |> LayerNorm(eps=1e-3)"),
    Case("Embedding", "t: i64[B, 5]", "t |> Embedding(11, 4)"),
    *(_rnn(kind, layers, bi, seq) for kind in ("RNN", "LSTM", "GRU")
      for layers, bi, seq in ((1, False, True), (2, True, True), (2, True, False),
                              (1, False, False))),
    Case("MultiHeadAttention-self", "x: [B, 5, 8]", "x |> MultiHeadAttention(2)"),
    # Keras scales the scores by 1/sqrt(head width) computed in float32: 2e-8 off for 2
    Case("MultiHeadAttention-causal-cross", "q: [B, 4, 8]; k: [B, 6, 8]; v: [B, 6, 8]",
         "MultiHeadAttention(4, causal=true)(q, k, v)", rtol=1e-7),
    Case("MultiHeadAttention-kdim-vdim-nobias", "q: [B, 4, 8]; k: [B, 6, 5]; v: [B, 6, 3]",
         "MultiHeadAttention(2, bias=false)(q, k, v)"),
    Case("MultiHeadAttention-kdim-bias", "q: [B, 3, 6]; k: [B, 5, 4]",
         "MultiHeadAttention(3)(q, k, k)", rtol=1e-7),
    Case("AdditiveAttention", "q: [B, 4]; v: [B, 7, 6]", "AdditiveAttention(5)(q, v)"),
    # the PyTorch target keeps its table in float32 (backends/torch/layers.py), ours in float64
    Case("PositionalEncoding", "x: [B, 30, 7]", "x |> PositionalEncoding(max_len=50)",
         rtol=1e-7),
    Case("PositionalEmbedding", "x: [B, 5, 6]", "x |> PositionalEmbedding(9)"),
    Case("Parameter", "x: [B, 3, 4]", "x * Parameter([3, 4])"),
    Case("tied-weights", "t: i64[B, 4]",
         "e = Embedding(6, 5)\noutput y = (t |> e) @ transpose(e.weight, 0, 1)"),
    # ---- LANGUAGE.md section 10: layers_elementwise.py and the stock layers standing in
    Case("PReLU", "x: [B, 5]", "x |> PReLU(init=0.1)"),
    Case("PReLU-per-channel-after-conv", "x: [B, 2, 5, 4]",
         "x |> Conv2d(3, 1) |> PReLU(num_parameters=3)"),
    Case("Softplus-beta-threshold", "x: [B, 3, 6]", "x * 3.0 |> Softplus(beta=0.5, threshold=1)"),
    Case("BatchNorm3d-train", "x: [B, 3, 2, 3, 4]", "x |> BatchNorm3d(momentum=0.2)",
         training=True),
    Case("GroupNorm", "x: [B, 6, 4, 3]", "x |> GroupNorm(2, eps=1e-3)"),
    Case("GroupNorm-rank-2-noaffine", "x: [B, 6]", "x |> GroupNorm(3, affine=false)"),
    Case("InstanceNorm2d-train-tracking", "x: [B, 3, 4, 5]",
         "x |> InstanceNorm2d(affine=true, track_running_stats=true, momentum=0.3)",
         training=True),
    Case("InstanceNorm1d-eval-tracking", "x: [B, 3, 6]",
         "x |> InstanceNorm1d(track_running_stats=true)"),
    Case("InstanceNorm1d", "x: [B, 3, 6]", "x |> InstanceNorm1d(eps=0.1)"),
    Case("RMSNorm", "x: [B, 4, 6]", "x |> RMSNorm(eps=1e-3)"),
    Case("RMSNorm-noaffine", "x: [B, 6]", "x |> RMSNorm(elementwise_affine=false)"),
    Case("Pad-reflect-after-conv", "x: [B, 2, 4, 5]",
         "x |> Conv2d(3, 1) |> Pad((3, 1, 2, 0), mode=\"reflect\")"),
    Case("Pad-replicate-circular", "x: [B, 2, 4, 5]",
         "pad(x |> Pad((2, 0, 1, 3), mode=\"replicate\"), (5, 1, 4, 2), mode=\"circular\")"),
    Case("Pad-length-known-when-run", "x: [B, 2, T]",
         "pad(pad(x, (3, 1), mode=\"replicate\"), (2, 1), mode=\"circular\")"),
    Case("DropPath-eval", "x: [B, 3, 4]", "x + (x |> Linear(4) |> DropPath(0.5))"),
    Case("Dropout2d-eval", "x: [B, 3, 4, 4]", "x |> Conv2d(3, 1) |> Dropout2d(0.5)"),
    Case("chunk-channels-after-conv", "x: [B, 2, 4, 4]",
         "a, b, c = chunk(x |> Conv2d(7, 1), 3, dim=1)\n"
         "    output y = concat([c, a * b], dim=1)"),
    # both operands 0 (zero parameters): PyTorch gives each half the gradient at a tie
    Case("maximum-minimum-tie", "x: [B, 3]",
         "p = x * Parameter([3], init=\"zeros\")\n    q = x * Parameter([3], init=\"zeros\")\n"
         "    output y = maximum(p, q) + minimum(p, q * 2.0) + x"),
    Case("var-unbiased", "x: [B, 3, 6]", "var(x, [0, 2], unbiased=true)"),
]


def _spec(case: Case) -> str:
    inputs = "\n".join(f"    input {i.strip()}" for i in case.inputs.split(";"))
    body = case.body if "\n" in case.body else f"output y = {case.body}"
    return f"model M {{\n{inputs}\n    {body}\n}}\n"


def _close(actual, expected, what: str, rtol: float) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol,
                               atol=rtol * max(1.0, float(np.abs(expected).max(initial=0))),
                               err_msg=what)


class _policy:
    """Keras layers and inputs built inside compute in this dtype."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> None:
        self.saved = keras.config.dtype_policy(), keras.config.floatx()
        keras.config.set_dtype_policy(self.name)
        keras.config.set_floatx(self.name)

    def __exit__(self, *exc: object) -> None:
        keras.config.set_dtype_policy(self.saved[0])
        keras.config.set_floatx(self.saved[1])


def _canonical_grads(model, grads: list) -> dict[str, np.ndarray]:
    """Gradients in PyTorch's layout: the weight conversion is linear, so it maps them too."""
    saved = [v.numpy() for v in model.trainable_variables]
    for v, g in zip(model.trainable_variables, grads, strict=True):
        v.assign(g)
    out = backend.state_dict(model)
    for v, s in zip(model.trainable_variables, saved, strict=True):
        v.assign(s)
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_layer_matches_torch(case: Case) -> None:
    g = archdsl.load(_spec(case)).graph()
    torch.manual_seed(0)
    ref = torch_backend.build(g).double()
    ref.train(case.training)
    with _policy(case.dtype):
        model = backend.build(g)
    rtol = case.rtol or (1e-9 if case.dtype == "float64" else 1e-5)
    state = torch_backend.state_dict(ref)
    assert {k: v.shape for k, v in backend.state_dict(model).items()} == \
        {k: v.shape for k, v in state.items()}
    backend.load_state_dict(model, state)
    for k, v in backend.state_dict(model).items():
        _close(v, state[k], f"round trip of {k}", rtol=0)

    rng = np.random.default_rng(0)
    xs = []
    for i in g.inputs:
        t = g.node(i).type
        shape = [2 if not isinstance(d, int) else d for d in t.shape]
        xs.append(rng.integers(0, 5, shape) if t.dtype.startswith("i") else
                  rng.standard_normal(shape))
    floats = [x.dtype.kind == "f" for x in xs]
    t_in = [torch.tensor(x, requires_grad=f) for x, f in zip(xs, floats, strict=True)]
    t_out = ref(*t_in)
    w = rng.standard_normal(tuple(t_out.shape))
    (t_out * torch.tensor(w)).sum().backward()

    k_in = [tf.constant(x.astype(case.dtype) if f else x)
            for x, f in zip(xs, floats, strict=True)]
    with tf.GradientTape() as tape:
        tape.watch([x for x, f in zip(k_in, floats, strict=True) if f])
        k_out = model(*k_in, training=case.training)
        loss = tf.reduce_sum(k_out * tf.constant(w, k_out.dtype))
    _close(k_out.numpy(), t_out.detach().numpy(), "forward", rtol)
    grads = tape.gradient(loss, [*k_in, *model.trainable_variables])
    for i, (g_in, t, f) in enumerate(zip(grads, t_in, floats, strict=False)):
        if f:
            _close(g_in.numpy(), t.grad.numpy(), f"gradient of input {i}", rtol)
    t_grads = {k: p.grad.numpy() for k, p in ref.named_parameters() if p.grad is not None}
    k_grads = _canonical_grads(model, grads[len(k_in):])
    for k, grad in t_grads.items():
        _close(k_grads[k], grad, f"gradient of {k}", rtol)
    buffers = {k: v.numpy() for k, v in ref.state_dict().items() if k not in t_grads}
    for k, v in backend.state_dict(model).items():
        if k in buffers:
            _close(v, buffers[k], f"buffer {k} after the step", rtol)


INITS = [  # (layer, its input, state key, PyTorch's bound of its uniform init)
    ("Linear(20)", "[B, 50]", "fc.weight", 1 / math.sqrt(50)),
    ("Linear(20)", "[B, 50]", "fc.bias", 1 / math.sqrt(50)),
    ("Conv2d(4, 3, groups=2)", "[B, 6, 5, 5]", "conv.weight", 1 / math.sqrt(3 * 9)),
    ("ConvTranspose2d(4, 3, groups=2)", "[B, 6, 5, 5]", "convt.weight", 1 / math.sqrt(2 * 9)),
    ("LSTM(16)", "[B, 3, 10]", "lstm.weight_hh_l0", 1 / math.sqrt(16)),
    ("MultiHeadAttention(2)", "[B, 3, 16]", "attn.in_proj_weight", math.sqrt(6 / (16 + 48))),
]


@pytest.mark.parametrize(("layer", "shape", "key", "bound"), INITS)
def test_build_draws_pytorchs_initial_values(layer: str, shape: str, key: str,
                                             bound: float) -> None:
    g = archdsl.load(f"model M {{\n input x: {shape}\n output y = x |> {layer}\n}}").graph()
    w = backend.state_dict(backend.build(g))[key]
    assert bound * 0.8 < np.abs(w).max() <= bound


@pytest.mark.parametrize(("init", "check"), [
    ("zeros", lambda w: (w == 0).all()), ("ones", lambda w: (w == 1).all()),
    ("uniform", lambda w: 0 <= w.min() and w.max() < 1),
    ("normal", lambda w: abs(w.std() - 1) < 0.1),
    # N(0, 0.02) cut at two standard deviations: spread 0.88 * 0.02
    ("trunc_normal", lambda w: np.abs(w).max() <= 0.04 and abs(w.std() - 0.0176) < 0.002),
])
def test_parameter_init(init: str, check) -> None:
    g = archdsl.load(f"model M {{\n input x: [B, 40, 50]\n"
                     f" output y = x * Parameter([40, 50], init=\"{init}\")\n}}").graph()
    (w,) = backend.state_dict(backend.build(g)).values()
    assert check(w)


def test_build_is_seeded_by_keras() -> None:
    """`keras.utils.set_random_seed` makes builds repeat, as `archdsl train --seed` needs."""
    g = archdsl.load("model M {\n input x: [B, 5]\n output y = x |> Linear(3)\n}").graph()
    draws = []
    for _ in range(2):
        keras.utils.set_random_seed(7)
        draws.append(backend.state_dict(backend.build(g))["fc.weight"])
    np.testing.assert_array_equal(*draws)


def test_gradients_at_the_kinks_are_pytorchs() -> None:
    """Where an activation or a bound has a corner, Keras's subgradient is PyTorch's."""
    g = archdsl.load(
        "model M {\n    input x: [B, 6]\n"
        "    output y = relu6(x) + hardswish(x) * 2.0 + hardsigmoid(x) * 3.0 + elu(x) * 4.0"
        " + clamp(x, min=0.0, max=6.0) * 5.0 + clamp(x, min=-3.0) * 6.0\n}\n").graph()
    points = np.array([[-3.0, 0.0, 3.0, 6.0, -1.0, 1.0]])
    t_in = torch.tensor(points, requires_grad=True)
    torch_backend.build(g).double()(t_in).sum().backward()
    with _policy("float64"):
        model = backend.build(g)
    k_in = tf.constant(points)
    with tf.GradientTape() as tape:
        tape.watch(k_in)
        y = tf.reduce_sum(model(k_in))
    _close(tape.gradient(y, k_in).numpy(), t_in.grad.numpy(), "gradient at the kinks", 1e-9)
