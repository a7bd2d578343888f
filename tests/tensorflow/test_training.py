"""`train` sections mean what PyTorch means: optimizer steps and losses against torch's own."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import archdsl
from archdsl.backends import tensorflow as tf_backend
from archdsl.backends.tensorflow.training import (
    LOSSES,
    compile_for_fit,
    compile_for_training,
    optimizer,
)
from archdsl.data import load_dataset
from archdsl.graph import Optimizer, TrainConfig

ROOT = Path(__file__).resolve().parents[2]

OPTIMIZERS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 1e-2}),
    ("Adam", {"lr": 1e-2, "betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.1}),
    ("AdamW", {"lr": 1e-2}),
    ("AdamW", {"lr": 1e-2, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.3}),
]


@pytest.mark.parametrize(("name", "args"), OPTIMIZERS, ids=[f"{n}-{a}" for n, a in OPTIMIZERS])
def test_optimizer_steps_match_torch(name: str, args: dict) -> None:
    """Five steps on a quadratic with tiny gradients (where Adam's epsilon placement shows)."""
    rng = np.random.default_rng(0)
    start, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)) * 1e-3
    p = torch.tensor(start, requires_grad=True)
    opt = getattr(torch.optim, name)([p], **args)
    v = keras.Variable(start, dtype="float64")
    mine = optimizer(Optimizer(name=name, args=args))
    for _ in range(5):
        opt.zero_grad()
        ((p - torch.tensor(target)) ** 2 * 1e-4).sum().backward()
        opt.step()
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum((tf.convert_to_tensor(v) - target) ** 2 * 1e-4)
        mine.apply_gradients([(tape.gradient(loss, v), v)])
    # Keras keeps the learning rate in float32: agreement to its precision, not float64's
    np.testing.assert_allclose(np.asarray(v), p.detach().numpy(), rtol=1e-6, atol=1e-9)


TORCH_LOSSES = {
    "cross_entropy": lambda out, y: torch.nn.functional.cross_entropy(out.movedim(-1, 1), y),
    "bce_with_logits": torch.nn.functional.binary_cross_entropy_with_logits,
    "mse": torch.nn.functional.mse_loss,
    "l1": torch.nn.functional.l1_loss,
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_match_torch(name: str) -> None:
    rng = np.random.default_rng(1)
    out = rng.standard_normal((4, 3, 5))
    y = rng.integers(0, 5, (4, 3)) if name == "cross_entropy" else (
        rng.integers(0, 2, out.shape).astype("float64") if name == "bce_with_logits"
        else rng.standard_normal(out.shape))
    expected = TORCH_LOSSES[name](torch.tensor(out), torch.tensor(y)).item()
    got = float(LOSSES[name]()(tf.constant(y), tf.constant(out)))
    assert got == pytest.approx(expected, rel=1e-6)


def test_compile_uses_the_train_section() -> None:
    model = keras.Sequential([keras.layers.Dense(2)])
    train = TrainConfig(loss="mse", optimizer=Optimizer(name="AdamW", args={"lr": 3e-4}),
                        batch=16, epochs=3, clip=1.0)
    assert compile_for_training(model, train) == {"batch_size": 16, "epochs": 3}
    assert isinstance(model.loss, keras.losses.MeanSquaredError)
    assert model.optimizer.weight_decay == pytest.approx(0.01)  # torch.optim.AdamW's default
    assert model.optimizer.global_clipnorm == 1.0
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-4)


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="dampening"):
        optimizer(Optimizer(name="SGD", args={"lr": 0.1, "dampening": 0.5}))
    with pytest.raises(ValueError, match="amsgrad"):
        optimizer(Optimizer(name="Adam", args={"amsgrad": True}))


TWO_HEADS = """
model TwoHeads(vocab: int = 11) {
    input tokens: i64[B, T]
    input features: [B, T, 4]
    h = concat([tokens |> Embedding(vocab, 16), features |> Linear(16)], dim=2) |> LSTM(16)
    output logits: [B, T, vocab] = h |> Linear(vocab)
    output summary: [B, 16] = mean(h, dim=1)
    train {
        optimizer = Adam(lr=1e-2)
        batch = 8
        epochs = 50
    }
}
"""


def test_fit_memorises_one_batch_with_two_inputs_and_two_outputs() -> None:
    """`fit` as the spec says (50 epochs of one batch of 8, Adam(lr=1e-2), the default cross
    entropy on the first output) cuts the loss by 90% or more."""
    graph = archdsl.load(TWO_HEADS).graph()
    keras.utils.set_random_seed(0)
    model = tf_backend.build(graph)
    fit_args = compile_for_fit(model, graph)
    assert fit_args == {"batch_size": 8, "epochs": 50}
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 11, (8, 6)), rng.standard_normal((8, 6, 4)).astype("float32"))
    losses = model.fit(x, rng.integers(0, 11, (8, 6)), shuffle=False, verbose=0,
                       **fit_args).history["loss"]
    assert len(losses) == 50 and losses[-1] <= 0.1 * losses[0], losses[::10]


def test_fit_on_the_bundled_digits_with_the_spec_defaults() -> None:
    """The docs' recipe: the spec's loss and optimizer, the embedded digits, held-out data."""
    graph = archdsl.load(ROOT / "specs" / "cnn_digits.arch").graph()
    keras.utils.set_random_seed(0)
    model = tf_backend.build(graph)
    fit_args = compile_for_fit(model, graph, metrics=["accuracy"])
    assert fit_args == {"batch_size": 32, "epochs": 10}
    data = load_dataset("digits", graph)
    history = model.fit(*data.xy("train"), validation_data=data.xy("test"),
                        **{**fit_args, "epochs": 2}, verbose=0).history
    assert history["val_accuracy"][-1] >= 0.8, history
