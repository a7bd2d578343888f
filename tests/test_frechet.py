"""The Fréchet distance of the GAN judge (archdsl/frechet.py) against its closed form in one
dimension and scipy's matrix square root in several, and the features it reads: the input of
the classifier's last layer, from the same forward pass as the logits."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import archdsl
from archdsl import train as train_mod
from archdsl.frechet import frechet_distance, logits_and_features


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * root))


def test_one_dimension_is_the_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 2.0, size=(500, 1)), rng.normal(-0.5, 0.5, size=(300, 1))
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("dims", [2, 8, 64])
def test_several_dimensions_match_scipy(dims):
    rng = np.random.default_rng(dims)
    mix = rng.normal(size=(dims, dims))
    a = rng.normal(size=(1000, dims)) @ mix
    b = rng.normal(size=(400, dims)) @ (mix + 0.3 * rng.normal(size=(dims, dims))) + 0.2
    assert frechet_distance(a, b) == pytest.approx(scipy_frechet(a, b), rel=1e-6)


def test_a_set_against_itself_is_zero_and_a_shift_adds_its_square():
    a = np.random.default_rng(1).normal(size=(200, 5))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-9)
    shift = np.array([1.0, -2.0, 0.0, 0.5, 0.0])
    assert frechet_distance(a, a + shift) == pytest.approx((shift ** 2).sum(), rel=1e-9)


def test_features_are_what_the_last_layer_reads():
    spec = """model Net { input x: [B, 6]
        output y: [B, 3] = x |> Linear(8) |> Tanh |> Linear(5) |> ReLU |> Linear(3) }"""
    graph = archdsl.load(spec).graph()
    trainer = train_mod.make_trainer("torch", graph, train_mod.resolve(graph))
    x = np.random.default_rng(0).normal(size=(7, 6)).astype(np.float32)
    logits, features = logits_and_features(trainer, graph, x, batch=3)
    assert features.shape == (7, 5) and (features >= 0).all()  # after the ReLU
    last = graph.layers[graph.nodes[graph.outputs[0]].layer]
    weights = archdsl.state_dict(trainer.model)
    w, b = (weights[last.key(p)] for p in last.params)
    np.testing.assert_allclose(logits, features @ w.T + b, rtol=1e-5, atol=1e-6)
