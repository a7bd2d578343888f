"""The TensorFlow side of adversarial training (the losses are defined in archdsl/gan.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from archdsl.graph import GanGraph

from . import build
from .training import device_name, dtype_policy, scale_loss, scaled
from .training import optimizer as make_optimizer


def d_loss(loss: str, r: tf.Tensor, f: tf.Tensor) -> tf.Tensor:
    r, f = tf.reshape(r, [-1]), tf.reshape(f, [-1])
    if loss in ("minimax", "nonsaturating"):
        return tf.reduce_mean(tf.nn.softplus(-r)) + tf.reduce_mean(tf.nn.softplus(f))
    if loss == "hinge":
        return tf.reduce_mean(tf.nn.relu(1 - r)) + tf.reduce_mean(tf.nn.relu(1 + f))
    if loss == "wasserstein":
        return tf.reduce_mean(f) - tf.reduce_mean(r)
    return 0.5 * tf.reduce_mean(tf.square(r - 1)) + 0.5 * tf.reduce_mean(tf.square(f))


def g_loss(loss: str, f: tf.Tensor) -> tf.Tensor:
    f = tf.reshape(f, [-1])
    if loss == "minimax":
        return -tf.reduce_mean(tf.nn.softplus(f))
    if loss == "nonsaturating":
        return tf.reduce_mean(tf.nn.softplus(-f))
    if loss in ("hinge", "wasserstein"):
        return -tf.reduce_mean(f)
    return 0.5 * tf.reduce_mean(tf.square(f - 1))


def _float(x: tf.Tensor) -> tf.Tensor:
    """Scores and samples in float32 whatever the compute dtype (the losses are float32)."""
    return tf.cast(x, tf.float32)


def _constant(a: np.ndarray | None) -> tf.Tensor | None:
    return None if a is None else tf.constant(a)


def _constants(arrays: Sequence[np.ndarray]) -> tuple[tf.Tensor, ...]:
    return tuple(tf.constant(a) for a in arrays)


class GanTrainer:
    def __init__(self, gan: GanGraph, settings: Any):
        keras.utils.set_random_seed(settings.seed)
        # Grappler's remapper fails on the discriminator step, which applies the
        # discriminator twice under one tape ("remapper failed: ... fanout ... for missing
        # node", an error line on the terminal), and drops its rewrite of that function: off
        # for the process, as the seed above is
        tf.config.optimizer.set_experimental_options({"remapping": False})
        self.settings = settings
        self.device = device_name(settings.device)
        with tf.device(self.device), dtype_policy(settings.precision):
            pair = build(gan)
            self.g, self.d = pair.generator, pair.discriminator
            self.g_opt = scaled(make_optimizer(settings.g_optimizer), settings.precision)
            self.d_opt = scaled(make_optimizer(settings.d_optimizer), settings.precision)
            self.g_opt.build(self.g.trainable_variables)
            self.d_opt.build(self.d.trainable_variables)
        self._d_step = tf.function(self._d, reduce_retracing=True)
        self._g_step = tf.function(self._g, reduce_retracing=True)

    def _generate(self, z: tf.Tensor | None, cond: tuple[tf.Tensor, ...], training: bool
                  ) -> tf.Tensor:
        return self.g(*(() if z is None else (z,)), *cond, training=training)

    def _d(self, real: tf.Tensor, z: tf.Tensor | None, real_cond: tuple[tf.Tensor, ...],
           fake_cond: tuple[tf.Tensor, ...]) -> tf.Tensor:
        fake = self._generate(z, fake_cond, training=True)
        with tf.GradientTape() as tape:
            value = d_loss(self.settings.loss, _float(self.d(real, *real_cond, training=True)),
                           _float(self.d(tf.stop_gradient(fake), *fake_cond, training=True)))
            scaled_value = scale_loss(self.d_opt, value)
        variables = self.d.trainable_variables
        self.d_opt.apply_gradients(zip(tape.gradient(scaled_value, variables), variables,
                                       strict=True))
        if self.settings.loss == "wasserstein":
            for v in variables:
                v.assign(tf.clip_by_value(v, -self.settings.clip, self.settings.clip))
        return value

    def _g(self, z: tf.Tensor | None, cond: tuple[tf.Tensor, ...]) -> tf.Tensor:
        with tf.GradientTape() as tape:
            fake = self._generate(z, cond, training=True)
            value = g_loss(self.settings.loss, _float(self.d(fake, *cond, training=True)))
            scaled_value = scale_loss(self.g_opt, value)
        variables = self.g.trainable_variables
        self.g_opt.apply_gradients(zip(tape.gradient(scaled_value, variables), variables,
                                       strict=True))
        return value

    def d_step(self, real: np.ndarray, z: np.ndarray | None,
               real_cond: Sequence[np.ndarray] = (), fake_cond: Sequence[np.ndarray] = ()
               ) -> float:
        with tf.device(self.device):
            return float(self._d_step(tf.constant(real), _constant(z), _constants(real_cond),
                                      _constants(fake_cond)))

    def g_step(self, z: np.ndarray | None, cond: Sequence[np.ndarray] = ()) -> float:
        with tf.device(self.device):
            return float(self._g_step(_constant(z), _constants(cond)))

    def sample(self, z: np.ndarray | None, cond: Sequence[np.ndarray] = ()) -> np.ndarray:
        with tf.device(self.device):
            return _float(self._generate(_constant(z), _constants(cond), training=False)).numpy()

    def state(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for prefix, variables in (("g", self.g.variables), ("d", self.d.variables),
                                  ("g_opt", self.g_opt.variables),
                                  ("d_opt", self.d_opt.variables)):
            out.update({f"{prefix}/{i}": v.numpy() for i, v in enumerate(variables)})
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for prefix, variables in (("g", self.g.variables), ("d", self.d.variables),
                                  ("g_opt", self.g_opt.variables),
                                  ("d_opt", self.d_opt.variables)):
            for i, v in enumerate(variables):
                v.assign(state[f"{prefix}/{i}"])
