"""Generated NumPy modules: clean Python that builds the very model the interpreter builds,
bit for bit, forwards and backwards (dropout included: same seeds, same draws)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy_cases import GRAPHS, ROOT, inputs

import archdsl
from archdsl.backends import numpy as nb
from archdsl.graph import Graph


def _load(source: str):
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    return namespace["build"]


@pytest.mark.parametrize("g", [g for g in GRAPHS if not g.marks])
def test_generated_module_equals_the_interpreter(g: Graph) -> None:
    generated = _load(nb.generate(g))(np.float64, seed=3)
    interpreted = nb.build(g, np.float64, seed=3)
    rng = np.random.default_rng(0)
    xs = inputs(g, rng)
    a, b = generated(*xs), interpreted(*xs)
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    dys = [rng.standard_normal(y.shape) for y in a]
    for x, y in zip(generated.backward(*dys), interpreted.backward(*dys), strict=True):
        assert (x is None and y is None) or np.array_equal(x, y)
    for k, v in interpreted.grads().items():
        np.testing.assert_array_equal(generated.grads()[k], v, err_msg=k)
    for k, v in nb.state_dict(interpreted).items():
        np.testing.assert_array_equal(nb.state_dict(generated)[k], v, err_msg=k)


@pytest.mark.parametrize("g", GRAPHS)
def test_generated_module_is_clean_python(g: Graph, ruff, tmp_path: Path) -> None:
    path = tmp_path / "generated.py"
    path.write_text(nb.generate(g), encoding="utf-8")
    result = ruff("check", [path], "--line-length", "100", select="E,F,W,B,UP")
    assert result.returncode == 0, result.stdout


def test_a_gan_generates_both_models() -> None:
    g = archdsl.load(ROOT / "specs" / "digits_gan.arch").graph()
    generator, discriminator = _load(nb.generate(g))(np.float64, seed=5)
    reference = nb.build(g, np.float64, seed=5)
    z = np.random.default_rng(0).standard_normal((2, 64))
    np.testing.assert_array_equal(generator(z), reference.generator(z))
    image = generator(z)
    np.testing.assert_array_equal(discriminator(image), reference.discriminator(image))
