"""The runtime's contract beyond the numbers: initialisation like PyTorch's, input checks,
one backward per call, and clear errors."""

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


@pytest.fixture
def digits() -> nb.Model:
    return nb.build(archdsl.load(ROOT / "specs" / "cnn_digits.arch").graph())


def test_inputs_are_checked(digits: nb.Model) -> None:
    with pytest.raises(TypeError, match=r"DigitsCNN takes 1 inputs \(image\), got 2"):
        digits(np.zeros((2, 1, 28, 28)), np.zeros(1))
    with pytest.raises(ValueError, match=r"input `image` must have shape \[B, 1, 28, 28\], "
                                         r"got \[2, 1, 28, 27\]"):
        digits(np.zeros((2, 1, 28, 27)))


def test_one_backward_per_call(digits: nb.Model) -> None:
    with pytest.raises(RuntimeError, match="call the model before backward"):
        digits.backward(np.ones((2, 10)))
    y = digits(np.zeros((2, 1, 28, 28)))
    assert y.dtype == np.float32 and y.shape == (2, 10)
    (dx,) = digits.backward(np.ones_like(y))
    assert dx.shape == (2, 1, 28, 28)
    with pytest.raises(RuntimeError):
        digits.backward(np.ones_like(y))


def test_gradients_accumulate_until_zeroed(digits: nb.Model) -> None:
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28))
    for _ in range(2):
        digits.backward(np.ones_like(digits(x)))
    twice = digits.grads()["fc2.bias"].copy()
    digits.zero_grad()
    digits.backward(np.ones_like(digits(x)))
    np.testing.assert_allclose(twice, 2 * digits.grads()["fc2.bias"], rtol=1e-6)


def test_token_ids_out_of_range_are_refused() -> None:
    model = nb.build(archdsl.load(ROOT / "specs" / "char_lstm.arch").graph())
    with pytest.raises(IndexError, match=r"Embedding ids must lie in \[0, 96\)"):
        model(np.array([[1, -1]]))
