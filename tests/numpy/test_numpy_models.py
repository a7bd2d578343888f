"""Whole specs on the NumPy backend: outputs, every parameter gradient and buffer against the
same graph run op by op in PyTorch (float64 and float32), optimiser steps against
torch.optim, state dicts, and 50 Adam steps on one fixed batch cutting the loss by 90%."""

from __future__ import annotations

import numpy as np
import numpy_oracle
import pytest
import torch
from numpy_cases import GRAPHS, ROOT, inputs
from test_learns import RECIPES

import archdsl
from archdsl.api import backend
from archdsl.backends import numpy as nb
from archdsl.backends.numpy.kernels.base import BLOCK
from archdsl.graph import Graph
from archdsl.verify import dropout_off


@pytest.fixture(autouse=True)
def same_noise():
    """Every `randn_like` (the VAE's) draws the same numbers in the NumPy model and its PyTorch
    references."""
    with archdsl.noise(lambda k, shape: np.random.default_rng(k).standard_normal(shape)):
        yield


def _loss_and_target(g: Graph, y: np.ndarray, rng: np.random.Generator):
    """The spec's loss, or the natural one for the output: classes, a score, or values."""
    name = g.train.loss if g.train and g.train.loss else (
        "bce_with_logits" if y.shape[-1] == 1 else
        "cross_entropy" if y.ndim in (2, 3) else "mse")
    if name == "cross_entropy":
        return name, rng.integers(0, y.shape[-1], y.shape[:-1])
    if name == "bce_with_logits":
        return name, rng.integers(0, 2, y.shape).astype(y.dtype)
    return name, rng.uniform(-0.9, 0.9, y.shape).astype(y.dtype)


def _close(a: np.ndarray, b: np.ndarray, tol: float, scale: float = 0.0) -> bool:
    """Norm-wise relative error below `tol`; a tensor that is zero up to rounding (the bias
    before a BatchNorm) is compared with the typical size `scale` of its neighbours instead."""
    return bool(np.linalg.norm(a - b) <= tol * max(np.linalg.norm(b), scale * np.sqrt(b.size)))


def _compare_with_torch(g: Graph, dtype, training: bool, tol: float) -> None:
    rng = np.random.default_rng(0)
    model = nb.build(g, dtype=dtype).train(training)
    state = nb.state_dict(model)
    xs = inputs(g, rng)
    ys = model(*xs)
    ys = ys if isinstance(ys, tuple) else (ys,)
    dys = [rng.standard_normal(y.shape).astype(dtype) for y in ys]
    model.backward(*dys)

    params = model.parameters()
    ts = {k: torch.tensor(v, requires_grad=k in params) for k, v in state.items()}
    with torch.no_grad():  # same rounding of the inputs as the NumPy side
        txs = [x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x for x in xs]
    outs = numpy_oracle.run_graph(g, ts, txs, training)
    torch.autograd.backward(outs, [torch.tensor(d) for d in dys])
    for y, t in zip(ys, outs, strict=True):
        assert y.dtype == dtype
        assert _close(y, t.detach().numpy(), tol)
    grads = model.grads()
    ref = {k: t.grad.numpy() for k, t in ts.items() if k in params}
    scale = np.sqrt(sum((g * g).sum() for g in ref.values()) / sum(g.size for g in ref.values()))
    # a running mean that is zero up to rounding (MobileNet's BatchNorm after a projection of a
    # BatchNorm's output) is compared with the typical running mean
    means = [t.detach().numpy() for k, t in ts.items() if k.endswith("running_mean")]
    mean_scale = np.sqrt(sum((m * m).sum() for m in means) / max(1, sum(m.size for m in means)))
    for k, t in ts.items():
        if k in params:
            assert _close(grads[k], ref[k], tol, scale), k
        else:
            assert _close(model.buffers()[k], t.detach().numpy(), tol, mean_scale), k


# MobileNetV3's 52 train-mode BatchNorms over a batch of 3 (its last stages 2x2) amplify
# float64 rounding in the first layers' gradients to between 1e-8 and 1e-7.
F64_TOL = {"mobilenet_v3_small": 1e-7}


@pytest.mark.parametrize("g", GRAPHS)
def test_train_mode_matches_torch_float64(g: Graph, request: pytest.FixtureRequest) -> None:
    with dropout_off(g) as off:
        _compare_with_torch(off, np.float64, True, F64_TOL.get(request.node.callspec.id, 1e-9))


# float32 tolerances (train, eval) where 1e-4 is out of reach for any float32 implementation:
# ResNet-50's 53 BatchNorms over a batch of 3 amplify rounding (PyTorch's own float32 gradients
# are 2% from its float64 ones), and one ReLU input of 1e-9 changing sign in float32 moves the
# first layer's gradient by 1e-3. In ResNet-20 (resnet_block) two ReLU inputs lie within 1.1e-6
# of zero in float64 (the next is 3e-4 away): float32 rounding of the convolutions before them,
# which depends on the order of their sums, decides their side, and a flipped one moves the
# BatchNorm gradients upstream by 1e-2.
F32_TOL = {"resnet50": (1e-1, 1e-2), "resnet_block": (3e-2, 1e-4)}


@pytest.mark.parametrize("g", GRAPHS)
def test_train_mode_matches_torch_float32(g: Graph, request: pytest.FixtureRequest) -> None:
    tol = F32_TOL.get(request.node.callspec.id, (1e-4, 1e-4))[0]
    with dropout_off(g) as off:
        _compare_with_torch(off, np.float32, True, tol)


@pytest.mark.parametrize("g", GRAPHS)
def test_eval_mode_matches_torch_float32(g: Graph, request: pytest.FixtureRequest) -> None:
    tol = F32_TOL.get(request.node.callspec.id, (1e-4, 1e-4))[1]
    _compare_with_torch(g, np.float32, False, tol)


OPTIMIZERS = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-2}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5, "nesterov": False}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 1e-2, "weight_decay": 1e-2}),
    ("AdamW", {"lr": 1e-2, "betas": (0.8, 0.9), "eps": 1e-6}),
]


@pytest.mark.parametrize("name,args", OPTIMIZERS, ids=lambda v: str(v))
def test_optimizer_steps_match_torch(name: str, args: dict) -> None:
    """Three steps; `big` spans several of the fused update's blocks (`kernels.base.BLOCK`)."""
    rng = np.random.default_rng(1)
    params = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(3),
              "big": rng.standard_normal((3, BLOCK + 7))}
    ref = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    ours = nb.OPTIMIZERS[name]({k: v.copy() for k, v in params.items()}, **args)
    theirs = getattr(torch.optim, name)(list(ref.values()), **args)
    for _ in range(3):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        ours.step(grads)
        for k, t in ref.items():
            t.grad = torch.tensor(grads[k])
        theirs.step()
    for k, t in ref.items():
        np.testing.assert_allclose(ours.params[k], t.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", nb.OPTIMIZERS)
def test_optimizers_refuse_a_parameter_they_cannot_update_in_place(name: str) -> None:
    with pytest.raises(ValueError, match="parameter `w` is not C-contiguous"):
        nb.OPTIMIZERS[name]({"w": np.zeros((4, 3)).T})


# Specs with a batch of their own kind in tests/test_learns.py learn there, not on random targets.
@pytest.mark.parametrize("g", [g for g in GRAPHS if not g.marks and g.id.split("-")[0]
                               not in {r.spec for r in RECIPES}])
def test_fifty_adam_steps_cut_the_loss(g: Graph) -> None:
    rng = np.random.default_rng(0)
    model = nb.build(g, seed=1)
    xs = inputs(g, rng)
    name, target = _loss_and_target(g, model(*xs), rng)
    opt = nb.Adam(model.parameters(), lr=1e-2)  # 2e-2 overshoots DigitsCNN's ten classes
    losses = []
    for _ in range(50):
        loss, dy = nb.LOSSES[name](model(*xs), target)
        model.zero_grad()
        model.backward(dy)
        opt.step(model.grads())
        losses.append(loss)
    assert losses[-1] <= 0.1 * losses[0], losses


def test_state_dict_round_trip_and_errors() -> None:
    g = archdsl.load(ROOT / "specs" / "cnn_digits.arch").graph()
    a, b = nb.build(g, seed=0), nb.build(g, seed=1)
    state = nb.state_dict(a)
    assert list(state) == list(archdsl.state_dict(backend("torch").build(g)))
    assert list(state) == list(g.parameters()) and len(state) == 10
    nb.load_state_dict(b, {k: torch.tensor(v) for k, v in state.items()})
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28))
    np.testing.assert_array_equal(a(x), b(x))
    first, last = list(state)[0], list(state)[-1]
    bad = {**state, "extra.weight": np.zeros(1), last: np.zeros(3)}
    del bad[first]
    with pytest.raises(ValueError, match=rf"missing keys: {first}; unexpected keys: "
                                         rf"extra.weight; shape mismatches: {last}: "
                                         rf"expected \[10\], got \[3\]"):
        nb.load_state_dict(b, bad)


def _has_dropout(g: Graph) -> bool:
    return any(n.args.get(k) for n in g.nodes for k in ("p", "dropout")
               if n.op in ("Dropout", "MultiHeadAttention", "RNN", "LSTM", "GRU"))


@pytest.mark.parametrize("step", ["SGD", "Adam"])
@pytest.mark.parametrize("g", GRAPHS)
def test_matches_the_torch_build(g: Graph, step: str, request: pytest.FixtureRequest) -> None:
    """The float32 NumPy model with the PyTorch build's weights against that build run in
    float64 (so that PyTorch's own float32 rounding is not counted): outputs, every gradient,
    then one optimiser step. Training mode (BatchNorm's batch statistics) unless the spec has
    dropout, which the two sides cannot draw alike."""
    training = not _has_dropout(g)
    tol = F32_TOL.get(request.node.callspec.id.rsplit("-", 1)[0], (1e-4, 1e-4))[not training]
    torch.manual_seed(0)
    reference = backend("torch").build(g).train(training)
    model = nb.build(g).train(training)
    nb.load_state_dict(model, archdsl.state_dict(reference))
    reference.double()
    rng = np.random.default_rng(0)
    xs = [x.astype(np.float32) if x.dtype == np.float64 else x for x in inputs(g, rng)]
    ys = model(*xs)
    ys = ys if isinstance(ys, tuple) else (ys,)
    outs = reference(*[torch.tensor(x.astype(np.float64) if x.dtype == np.float32 else x)
                       for x in xs])
    outs = outs if isinstance(outs, tuple) else (outs,)
    dys = [rng.standard_normal(y.shape).astype(np.float32) for y in ys]
    model.backward(*dys)
    torch.autograd.backward(outs, [torch.tensor(d, dtype=torch.float64) for d in dys])
    for y, t in zip(ys, outs, strict=True):
        assert _close(y, t.detach().numpy(), tol)
    ref = {k: p.grad.numpy() for k, p in reference.named_parameters()}
    assert set(ref) == set(model.grads())
    scale = np.sqrt(sum((g * g).sum() for g in ref.values()) / sum(g.size for g in ref.values()))
    for k, grad in model.grads().items():
        assert _close(grad, ref[k], tol, scale), k

    # The step itself, from the same gradients: Adam's first step is lr * sign(gradient), so
    # an entry whose gradient is within rounding of zero (a max-pool tie, the bias before a
    # BatchNorm) would move by +-lr on rounding noise alone.
    args = {"lr": 1e-2, "weight_decay": 1e-3}
    ours = nb.OPTIMIZERS[step](model.parameters(), **args)
    theirs = getattr(torch.optim, step)(reference.parameters(), **args)
    for k, p in reference.named_parameters():
        p.grad = torch.tensor(model.grads()[k], dtype=torch.float64)
    ours.step(model.grads())
    theirs.step()
    for k, p in reference.named_parameters():
        np.testing.assert_allclose(model.parameters()[k], p.detach().numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=k)
