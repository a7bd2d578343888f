"""The NumPy backend draws every initialisation recipe section 10's ops declare, as PyTorch's
modules and `torch.nn.init` do (archdsl/ops/init.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archdsl.backends.numpy.init import draw
from archdsl.ops.init import STANDARD_NORMAL, constant, resolve, zero_row

SHAPE = (400, 300)  # fan_in 300: large enough for the spread to show the distribution


@pytest.mark.parametrize("recipe", [zero_row(STANDARD_NORMAL, 3), zero_row(STANDARD_NORMAL, -1)])
def test_embedding_padding_row_starts_at_zero(recipe: tuple) -> None:
    x = draw(resolve(recipe, SHAPE, {}), SHAPE, np.random.default_rng(0))
    assert not x[recipe[1]].any()
    rest = np.delete(x, recipe[1] % SHAPE[0], axis=0)
    assert abs(rest.std() - 1.0) < 0.01


def test_constant() -> None:
    assert (draw(resolve(constant(0.25), SHAPE, {}), SHAPE, np.random.default_rng(0))
            == 0.25).all()


def test_kaiming_uniform_and_normal_use_fan_in() -> None:
    rng = np.random.default_rng(0)
    u = draw(resolve(("kaiming_uniform",), SHAPE, {}), SHAPE, rng)
    bound = math.sqrt(6 / 300)
    assert np.abs(u).max() <= bound and np.abs(u).max() > 0.99 * bound
    n = draw(resolve(("kaiming_normal",), SHAPE, {}), SHAPE, rng)
    assert abs(n.std() / math.sqrt(2 / 300) - 1) < 0.01
