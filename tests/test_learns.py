"""Issue 15's specs learn: at the sizes of tests/spec_sizes.py, 50 steps of `archdsl train`'s
own trainer, with the spec's `train` settings, on one fixed batch of the kind a user would give
that model, cut its loss by at least 90%."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from spec_sizes import small

import archdsl
from archdsl.data import digits_images
from archdsl.graph import GanGraph, Graph
from archdsl.train import make_trainer, resolve

ROOT = Path(__file__).resolve().parents[1]
BATCH = 4
STEPS = 50

Batch = dict[str, np.ndarray]


def digits(size: int, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The first BATCH embedded digits, [BATCH, channels, size, size] in [0, 1], and labels."""
    images, labels = digits_images(size, size)
    x = np.repeat(images[:BATCH, None], channels, axis=1)
    return np.ascontiguousarray(x, np.float32), labels[:BATCH].copy()


def classify_digits(g: Graph) -> Batch:
    """Colour digits at the model's size, against their classes."""
    x, y = digits(g.node(g.inputs[0]).type.shape[-1], channels=3)
    return {"image": x, "target": y}


def next_tokens(g: Graph) -> Batch:
    """A language model's usual batch: token sequences against themselves shifted by one."""
    vocab = g.params["vocab"]
    tokens = np.random.default_rng(0).integers(0, vocab, (BATCH, 17))
    return {"tokens": tokens[:, :-1], "target": tokens[:, 1:]}


def denoise_digits(g: Graph) -> Batch:
    """Ho et al.'s training batch: digits in [-1, 1] noised to random steps of the linear
    schedule (betas 1e-4 to 0.02), against the noise that was added."""
    x0 = digits(16)[0] * 2 - 1
    rng = np.random.default_rng(0)
    steps = g.params["steps"]
    kept = np.cumprod(1 - np.linspace(1e-4, 0.02, steps))
    t = rng.integers(0, steps, BATCH)
    noise = rng.standard_normal(x0.shape).astype(np.float32)
    a = kept[t][:, None, None, None]
    noisy = np.sqrt(a) * x0 + np.sqrt(1 - a) * noise
    return {"noisy": noisy.astype(np.float32), "step": t, "target": noise}


def reproduce_digits(g: Graph) -> Batch:
    """An image-to-image net or an autoencoder given digits at its size (in its output's
    range) to give back: CycleGAN's identity mapping, a VAE's reconstruction."""
    shape = g.node(g.inputs[0]).type.shape
    x = digits(shape[-1], channels=shape[1])[0]
    if g.node(g.outputs[0]).op == "Tanh":
        x = x * 2 - 1
    return {"image": x, "target": x}


def draw_digits(g: Graph) -> Batch:
    """A conditional generator's latents and labels, against the digits of those labels."""
    x, y = digits(16)
    z = np.random.default_rng(0).standard_normal((BATCH, g.params["nz"])).astype(np.float32)
    return {"z": z, "label": y, "target": x * 2 - 1}


def judge_digits(g: Graph) -> Batch:
    """A conditional discriminator's batch: digits with their own label (real, 1) or another
    one (0)."""
    x, y = digits(16)
    wrong = np.arange(BATCH) % 2 == 1
    label = np.where(wrong, (y + 1 + np.arange(BATCH) % 9) % 10, y)
    return {"image": x * 2 - 1, "label": label,
            "target": (~wrong).astype(np.float32)[:, None]}


@dataclass(frozen=True)
class Recipe:
    spec: str
    batch: Callable[[Graph], Batch]
    # One model of a gan, trained alone: it has no train block, so archdsl's defaults (Adam at
    # 1e-3) and the loss named here.
    model: str | None = None
    loss: str | None = None


RECIPES = [
    Recipe("mobilenet_v3_small", classify_digits),
    Recipe("llama_decoder", next_tokens),
    Recipe("ddpm_unet", denoise_digits),
    Recipe("cyclegan_generator", reproduce_digits),
    Recipe("vae", reproduce_digits),
    Recipe("cdcgan_digits", draw_digits, model="generator", loss="mse"),
    Recipe("cdcgan_digits", judge_digits, model="discriminator", loss="bce_with_logits"),
]


def trained_losses(recipe: Recipe, backend: str) -> list[float]:
    g = archdsl.load(ROOT / "specs" / f"{recipe.spec}.arch").graph(params=small(recipe.spec))
    model = getattr(g, recipe.model) if isinstance(g, GanGraph) else g
    settings = resolve(model)
    settings.loss = recipe.loss or settings.loss
    trainer = make_trainer(backend, model, settings)
    batch = recipe.batch(model)
    return [trainer.step(batch) for _ in range(STEPS)]


@pytest.mark.parametrize("recipe", RECIPES,
                         ids=lambda r: f"{r.spec}:{r.model}" if r.model else r.spec)
def test_fifty_steps_on_one_batch_cut_the_loss_by_90_percent(recipe: Recipe) -> None:
    losses = trained_losses(recipe, "torch")
    assert losses[-1] <= 0.1 * losses[0], losses[::10]
