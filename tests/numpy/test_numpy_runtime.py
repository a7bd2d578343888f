"""The runtime's contract beyond the numbers: initialisation like PyTorch's, seeds, input
checks, one backward per call, gradients only where a backward pass reaches (as PyTorch), and
clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy_cases import GRAPHS, ROOT

import archdsl
from archdsl.api import backend
from archdsl.backends import numpy as nb
from archdsl.graph import Graph


@pytest.mark.parametrize("g", [g for g in GRAPHS if not g.marks])
def test_initial_values_are_distributed_as_in_the_torch_build(g: Graph) -> None:
    """Same spread per tensor as PyTorch's module defaults; constant tensors are equal."""
    torch.manual_seed(0)
    theirs = archdsl.state_dict(backend("torch").build(g))
    ours = nb.state_dict(nb.build(g, np.float64))
    assert list(ours) == list(theirs)
    for k, a in ours.items():
        b = theirs[k].astype(np.float64)
        if b.size > 1 and (b == b.flat[0]).all():  # ones, zeros, BatchNorm's counter
            np.testing.assert_array_equal(a, b, err_msg=k)
        elif b.size >= 64:  # random: the spread within a few sampling errors
            assert abs(a.std() / b.std() - 1) < 0.25, k
            assert abs(a.mean() - b.mean()) < 5 * b.std() / np.sqrt(b.size), k


@pytest.mark.parametrize("g", [g for g in GRAPHS if not g.marks])
def test_a_seed_gives_the_same_weights_in_every_dtype(g: Graph) -> None:
    wide = nb.state_dict(nb.build(g, np.float64, seed=4))
    again = nb.state_dict(nb.build(g, np.float64, seed=4))
    narrow = nb.state_dict(nb.build(g, np.float32, seed=4))
    other = nb.state_dict(nb.build(g, np.float64, seed=5))
    for k, v in wide.items():
        np.testing.assert_array_equal(again[k], v, err_msg=k)
        np.testing.assert_array_equal(narrow[k], v.astype(narrow[k].dtype), err_msg=k)
    assert any(not np.array_equal(other[k], v) for k, v in wide.items() if v.size > 1)


@pytest.fixture
def digits() -> nb.Module:
    return nb.build(archdsl.load(ROOT / "specs" / "cnn_digits.arch").graph())


def test_inputs_are_checked(digits: nb.Module) -> None:
    with pytest.raises(TypeError, match=r"DigitsCNN takes 1 inputs \(image\), got 2"):
        digits(np.zeros((2, 1, 28, 28)), np.zeros(1))
    with pytest.raises(ValueError, match=r"input `image` must have shape \[B, 1, 28, 28\], "
                                         r"got \[2, 1, 28, 27\]"):
        digits(np.zeros((2, 1, 28, 27)))


def test_one_backward_per_call(digits: nb.Module) -> None:
    with pytest.raises(RuntimeError, match="call the model before backward"):
        digits.backward(np.ones((2, 10)))
    y = digits(np.zeros((2, 1, 28, 28)))
    assert y.dtype == np.float32 and y.shape == (2, 10)
    (dx,) = digits.backward(np.ones_like(y))
    assert dx.shape == (2, 1, 28, 28)
    with pytest.raises(RuntimeError):
        digits.backward(np.ones_like(y))


def test_gradients_accumulate_until_zeroed(digits: nb.Module) -> None:
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28))
    for _ in range(2):
        digits.backward(np.ones_like(digits(x)))
    key = list(digits.parameters())[-1]  # the last layer's bias
    twice = digits.grads()[key].copy()
    digits.zero_grad()
    assert digits.grads() == {}
    digits.backward(np.ones_like(digits(x)))
    np.testing.assert_allclose(twice, 2 * digits.grads()[key], rtol=1e-6)


def test_token_ids_out_of_range_are_refused() -> None:
    model = nb.build(archdsl.load(ROOT / "specs" / "char_lstm.arch").graph())
    with pytest.raises(IndexError, match=r"Embedding ids must lie in \[0, 96\)"):
        model(np.array([[1, -1]]))


TWO_HEADS = """
model TwoHeads {
    input x: [B, 4]
    trunk = Linear(4)
    h = x |> trunk |> Tanh
    h = h |> trunk
    output a = h |> Linear(2)
    output b = h |> Linear(3)
}
"""


def test_gradients_go_only_where_the_backward_pass_reaches() -> None:
    """A loss on one output gives no gradient to the other head (PyTorch's `.grad` stays
    None); a layer applied twice collects both uses."""
    g = archdsl.load(TWO_HEADS).graph()
    ours = nb.build(g, np.float64)
    theirs = backend("torch").build(g).double()
    archdsl.load_state_dict(theirs, nb.state_dict(ours))
    x = np.random.default_rng(0).standard_normal((5, 4))
    a, b = ours(x)
    dy = np.random.default_rng(1).standard_normal(a.shape)
    (dx,) = ours.backward(dy, None)
    ta, tb = theirs(torch.tensor(x))
    ta.backward(torch.tensor(dy))
    reached = {k: p.grad.numpy() for k, p in theirs.named_parameters() if p.grad is not None}
    assert set(ours.grads()) == set(reached) != set(ours.parameters())
    for k, v in reached.items():
        np.testing.assert_allclose(ours.grads()[k], v, rtol=1e-10, err_msg=k)
    assert dx.shape == x.shape


def test_a_learned_tensor_read_twice_gets_both_gradients() -> None:
    """Tied weights: the embedding's table read again as a tensor sums both gradients."""
    text = """
model Tied {
    input ids: i64[B, T]
    wte = Embedding(7, 5)
    h = ids |> wte
    output logits = h @ transpose(wte.weight, 0, 1)
}
"""
    g = archdsl.load(text).graph()
    ours = nb.build(g, np.float64)
    theirs = backend("torch").build(g).double()
    archdsl.load_state_dict(theirs, nb.state_dict(ours))
    ids = np.random.default_rng(0).integers(0, 7, (2, 3))
    y = ours(ids)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    assert ours.backward(dy) == (None,)  # integer ids have no gradient
    theirs(torch.tensor(ids)).backward(torch.tensor(dy))
    (key,) = ours.grads()
    np.testing.assert_allclose(ours.grads()[key], dict(theirs.named_parameters())[key].grad,
                               rtol=1e-10)
