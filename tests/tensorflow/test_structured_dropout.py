"""Section 10's structured dropout in the Keras target, in training: what it drops is whole
(a channel of an example, or an example's whole branch) and the rest is scaled by
1 / (1 - p), as PyTorch's Dropout1d/Dropout2d and timm's DropPath; evaluation is the
identity."""

from __future__ import annotations

import numpy as np
import pytest

import archdsl
from archdsl.backends import tensorflow as backend

CASES = [  # (layer, input shape, the axes one keep-or-drop decision covers)
    ("Dropout1d(0.5)", (64, 6, 5), (2,)),
    ("Dropout2d(0.5)", (64, 6, 3, 4), (2, 3)),
    ("DropPath(0.5)", (64, 6, 3), (1, 2)),
]


@pytest.mark.parametrize(("layer", "shape", "whole"), CASES, ids=[c[0] for c in CASES])
def test_drops_whole_units_and_scales_the_rest(layer: str, shape: tuple[int, ...],
                                               whole: tuple[int, ...]) -> None:
    dims = ", ".join(map(str, shape))
    g = archdsl.load(f"model M {{\n    input x: [{dims}]\n    output y = x |> {layer}\n}}\n"
                     ).graph()
    model = backend.build(g)
    x = np.ones(shape, np.float32)
    y = np.asarray(model(x, training=True))
    assert set(np.unique(y)) == {0.0, 2.0}
    low, high = y.min(axis=whole), y.max(axis=whole)
    np.testing.assert_array_equal(low, high)  # one decision per unit
    assert 0.3 < (low == 0).mean() < 0.7
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), x)
