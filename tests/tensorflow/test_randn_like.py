"""`randn_like` in the Keras target and `archdsl.noise` (LANGUAGE.md 10.2): the k-th draw of
each forward pass in graph order, though Keras runs a functional model by depth, in the
spec's layout, though the tensor may travel channels-last."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import archdsl
from archdsl.backends import tensorflow as backend
from archdsl.backends import torch as torch_backend

# Keras reaches `b` (next to the input) before `a` (after two layers); the graph order is a,
# then b. The dead draw counts, as PyTorch evaluates it.
ORDER = """model M {
    input x: [B, 3]
    dead = randn_like(x)
    a = randn_like(x |> Linear(3) |> Linear(3))
    b = randn_like(x)
    output y = concat([a, b * 2.0], dim=1)
}
"""


def test_noise_gives_the_kth_draw_in_graph_order() -> None:
    model = backend.build(archdsl.load(ORDER).graph())
    seen: list[tuple[int, tuple[int, ...]]] = []

    def draws(k: int, shape: tuple[int, ...]) -> np.ndarray:
        seen.append((k, shape))
        return np.full(shape, float(k))

    x = np.zeros((2, 3), np.float32)
    want = np.array([[1.0] * 3 + [4.0] * 3] * 2, np.float32)
    with archdsl.noise(draws):
        for _ in range(2):  # the count restarts with every call
            y = np.asarray(model(x))
            assert y.dtype == np.float32
            np.testing.assert_array_equal(y, want)
    assert sorted(seen) == [(1, (2, 3)), (1, (2, 3)), (2, (2, 3)), (2, (2, 3))]
    fresh = np.asarray(model(x))  # outside the context: Keras's own normal draws
    assert not np.allclose(fresh, want) and not np.allclose(fresh, np.asarray(model(x)))


def test_draws_come_in_the_specs_layout_after_a_convolution() -> None:
    """The convolution leaves its result channels-last; the draws still arrive as
    (B, C, H, W) and land where PyTorch puts them."""
    g = archdsl.load("model M {\n    input x: [B, 2, 3, 4]\n    h = x |> Conv2d(3, 1)\n"
                     "    output y = h + randn_like(h)\n}\n").graph()
    model, ref = backend.build(g), torch_backend.build(g)
    backend.load_state_dict(model, torch_backend.state_dict(ref))
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 4)).astype(np.float32)
    with archdsl.noise(lambda k, shape: np.arange(np.prod(shape)).reshape(shape) / 10.0):
        got = np.asarray(model(x))
        want = ref(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_shared_block_refuses_noise_rather_than_repeat_a_draw() -> None:
    """One layer serves both calls of a bound block: it cannot be two graph draws."""
    g = archdsl.load("block Noisy {\n    input x: [B, 4]\n    output y = x + randn_like(x)\n}\n"
                     "model M {\n    input x: [B, 4]\n    n = Noisy()\n"
                     "    output y = x |> n |> n\n}\n").graph()
    model = backend.build(g)
    x = np.zeros((2, 4), np.float32)
    assert np.asarray(model(x)).std() > 0.5  # without the context it draws as usual
    with archdsl.noise(lambda k, shape: np.zeros(shape)), \
            pytest.raises(ValueError, match="shared block"):
        model(x)
