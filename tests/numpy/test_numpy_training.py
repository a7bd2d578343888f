"""`archdsl train --backend numpy`: the trainers take the very steps the PyTorch trainers
take from the same weights, and a checkpoint resumes bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy_cases import ROOT, inputs

import archdsl
from archdsl import gan as gan_loop
from archdsl import train as train_loop
from archdsl.backends import numpy as nb
from archdsl.backends.numpy.gan import GanTrainer
from archdsl.backends.numpy.training import Trainer
from archdsl.backends.torch import gan as torch_gan
from archdsl.backends.torch import training as torch_training
from archdsl.graph import GanGraph, Graph, Optimizer

# Adam's eps is raised as `archdsl verify` does (docs/verify.md): with 1e-8 a first step is
# lr * sign(g), and float32 cannot reproduce the sign of gradients at its rounding noise.
ADAM = Optimizer(name="Adam", args={"lr": 1e-3, "eps": 1e-4, "weight_decay": 1e-3})
SGD = Optimizer(name="SGD", args={"lr": 0.05, "momentum": 0.9})


def _batch(g: Graph, rng: np.random.Generator, label: str) -> dict[str, np.ndarray]:
    """Random inputs and class targets for a classifier (the first output's last dim)."""
    xs = [x.astype(np.float32) if x.dtype == np.float64 else x for x in inputs(g, rng)]
    out = nb.build(g)(*xs)
    out = out[0] if isinstance(out, tuple) else out
    return {**dict(zip(g.input_names, xs, strict=True)),
            label: rng.integers(0, out.shape[-1], out.shape[:-1])}


def _close(a: np.ndarray, b: np.ndarray, tol: float = 1e-4) -> bool:
    return bool(np.linalg.norm(a - b) <= tol * np.linalg.norm(b))


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-5 * max(1.0, abs(b))


@pytest.mark.parametrize("spec", ["cnn_digits", "char_lstm"])
def test_a_step_equals_the_torch_trainers(spec: str) -> None:
    g = archdsl.load(ROOT / "specs" / f"{spec}.arch").graph()
    settings = train_loop.resolve(g, seed=0)
    settings.optimizer = ADAM
    ours, theirs = Trainer(g, settings), torch_training.Trainer(g, settings)
    archdsl.load_state_dict(theirs.model, nb.state_dict(ours.model))
    rng = np.random.default_rng(0)
    for _ in range(2):
        batch = _batch(g, rng, settings.label)
        assert _same(ours.step(batch), theirs.step(batch))
    theirs_state = archdsl.state_dict(theirs.model)
    for k, v in nb.state_dict(ours.model).items():
        assert _close(v, theirs_state[k]), k
    np.testing.assert_allclose(ours.predict(batch), theirs.predict(batch), rtol=1e-4, atol=1e-5)


def test_a_checkpoint_resumes_bit_for_bit() -> None:
    """Weights, Adam's moments and the dropout generator all come back."""
    g = archdsl.load(ROOT / "specs" / "text_transformer.arch").graph(
        params={"vocab": 30, "d_model": 16, "heads": 2, "layers": 1})
    settings = train_loop.resolve(g, seed=0)
    rng = np.random.default_rng(0)
    batch = {"tokens": rng.integers(0, 30, (4, 7)), settings.label: rng.integers(0, 2, 4)}
    first = Trainer(g, settings)
    first.step(batch)
    saved = first.state()
    settings.seed = 1  # different initial weights, all to be replaced
    second = Trainer(g, settings)
    second.load_state(saved)
    assert first.step(batch) == second.step(batch)
    for k, v in first.state().items():
        np.testing.assert_array_equal(second.state()[k], v, err_msg=k)


def _gan_batch(g: GanGraph, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` images in [-1, 1] of the discriminator's input shape and `n` generator codes."""
    image = g.discriminator.node(g.discriminator.inputs[0]).type.shape[1:]
    nz = g.generator.node(g.generator.inputs[0]).type.shape[1]
    return (rng.uniform(-1, 1, (n, *image)).astype(np.float32),
            rng.standard_normal((n, nz)).astype(np.float32))


def test_gan_steps_equal_the_torch_trainers() -> None:
    g = archdsl.load(ROOT / "specs" / "digits_gan.arch").graph()
    for loss in ("nonsaturating", "hinge", "wasserstein", "lsgan", "minimax"):
        game = g.model_copy(update={"loss": loss})
        settings = gan_loop.resolve(game)
        settings.g_optimizer = settings.d_optimizer = SGD
        ours, theirs = GanTrainer(game, settings), torch_gan.GanTrainer(game, settings)
        archdsl.load_state_dict(theirs.g, nb.state_dict(ours.g))
        archdsl.load_state_dict(theirs.d, nb.state_dict(ours.d))
        rng = np.random.default_rng(0)
        real, z = _gan_batch(g, rng, 8)
        assert _same(ours.d_step(real, z), theirs.d_step(real, z)), loss
        assert _same(ours.g_step(z), theirs.g_step(z)), loss
        for side in ("g", "d"):
            mine = nb.state_dict(getattr(ours, side))
            for k, v in archdsl.state_dict(getattr(theirs, side)).items():
                assert _close(mine[k], v), (loss, side, k)
        assert _close(ours.sample(z), theirs.sample(z)), loss


def test_gan_checkpoint_round_trip() -> None:
    g = archdsl.load(ROOT / "specs" / "digits_gan.arch").graph()
    settings = gan_loop.resolve(g)
    first = GanTrainer(g, settings)
    rng = np.random.default_rng(0)
    real, z = _gan_batch(g, rng, 4)
    first.d_step(real, z)
    second = GanTrainer(g, gan_loop.resolve(g, seed=3))
    second.load_state(first.state())
    assert first.d_step(real, z) == second.d_step(real, z)
    assert first.g_step(z) == second.g_step(z)
    torch.testing.assert_close(torch.tensor(first.sample(z)), torch.tensor(second.sample(z)))
