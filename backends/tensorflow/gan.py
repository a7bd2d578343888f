"""The TensorFlow side of adversarial training (the losses are defined in archdsl/gan.py)."""

from __future__ import annotations

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


class GanTrainer:
    def __init__(self, gan: GanGraph, settings: Any):
        keras.utils.set_random_seed(settings.seed)
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

    def _d(self, real: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
        fake = self.g(z, training=True)
        with tf.GradientTape() as tape:
            value = d_loss(self.settings.loss, _float(self.d(real, training=True)),
                           _float(self.d(tf.stop_gradient(fake), training=True)))
            scaled_value = scale_loss(self.d_opt, value)
        variables = self.d.trainable_variables
        self.d_opt.apply_gradients(zip(tape.gradient(scaled_value, variables), variables,
                                       strict=True))
        if self.settings.loss == "wasserstein":
            for v in variables:
                v.assign(tf.clip_by_value(v, -self.settings.clip, self.settings.clip))
        return value

    def _g(self, z: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            value = g_loss(self.settings.loss,
                           _float(self.d(self.g(z, training=True), training=True)))
            scaled_value = scale_loss(self.g_opt, value)
        variables = self.g.trainable_variables
        self.g_opt.apply_gradients(zip(tape.gradient(scaled_value, variables), variables,
                                       strict=True))
        return value

    def d_step(self, real: np.ndarray, z: np.ndarray) -> float:
        with tf.device(self.device):
            return float(self._d_step(tf.constant(real), tf.constant(z)))

    def g_step(self, z: np.ndarray) -> float:
        with tf.device(self.device):
            return float(self._g_step(tf.constant(z)))

    def sample(self, z: np.ndarray) -> np.ndarray:
        with tf.device(self.device):
            return _float(self.g(tf.constant(z), training=False)).numpy()

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
