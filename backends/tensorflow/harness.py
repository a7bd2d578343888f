"""What `archdsl verify` asks of the TensorFlow build. Gradients come from GradientTape in
Keras's layouts and are mapped to PyTorch's through the same conversion as the weights (it
only transposes, reorders and splits, so it is linear and applies to gradients unchanged)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from archdsl.graph import Graph, Optimizer

from .runtime import build, load_state_dict, state_dict
from .training import optimizer as make_optimizer


def loss_value(loss: str, out: tf.Tensor, target: Any) -> tf.Tensor:
    """The `train` losses, each a mean; cross entropy over the last dimension."""
    if loss == "cross_entropy":
        logits = tf.reshape(out, [-1, out.shape[-1]])
        labels = tf.reshape(tf.cast(target, tf.int64), [-1])
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    t = tf.reshape(tf.cast(target, out.dtype), tf.shape(out))
    if loss == "bce_with_logits":
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(t, out))
    return tf.reduce_mean(tf.square(out - t)) if loss == "mse" else \
        tf.reduce_mean(tf.abs(out - t))


class Harness:
    def __init__(self, graph: Graph):
        tf.config.experimental.enable_tensor_float_32_execution(False)
        self.graph = graph
        self.model = build(graph)

    def load(self, state: dict[str, np.ndarray]) -> None:
        load_state_dict(self.model, state)

    def state(self) -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in state_dict(self.model).items()}

    def _call(self, inputs: list[Any], train: bool) -> list[tf.Tensor]:
        out = self.model(*inputs, training=train)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def forward(self, inputs: list[np.ndarray], train: bool) -> list[np.ndarray]:
        return [np.array(y) for y in self._call([tf.constant(x) for x in inputs], train)]

    def _tape(self, inputs: list[np.ndarray], target: np.ndarray, loss: str
              ) -> tuple[tf.Tensor, list[Any], list[tf.Tensor]]:
        xs = [tf.constant(x) for x in inputs]
        with tf.GradientTape() as tape:
            for x in xs:
                if x.dtype.is_floating:
                    tape.watch(x)
            value = loss_value(loss, self._call(xs, train=True)[0], target)
        variables = self.model.trainable_variables
        grads = tape.gradient(value, [*variables, *xs])
        return value, grads[:len(variables)], grads[len(variables):]

    def gradients(self, inputs: list[np.ndarray], target: np.ndarray, loss: str
                  ) -> tuple[float, dict[str, np.ndarray], list[np.ndarray | None]]:
        value, grads, input_grads = self._tape(inputs, target, loss)
        return (float(value), self._canonical_gradients(grads),
                [None if g is None or not x.dtype.kind == "f" else np.array(g)
                 for g, x in zip(input_grads, inputs, strict=True)])

    def _canonical_gradients(self, grads: list[Any]) -> dict[str, np.ndarray]:
        """Write each gradient into its variable, read the canonical view, restore."""
        variables = self.model.trainable_variables
        saved = [v.numpy() for v in variables]
        try:
            for v, g in zip(variables, grads, strict=True):
                v.assign(np.zeros(v.shape, v.dtype) if g is None else g)
            params = set(self.graph.parameters("param"))
            return {k: v for k, v in state_dict(self.model).items() if k in params}
        finally:
            for v, s in zip(variables, saved, strict=True):
                v.assign(s)

    def optimizer_step(self, inputs: list[np.ndarray], target: np.ndarray, loss: str,
                       optimizer: Optimizer) -> dict[str, np.ndarray]:
        opt: keras.optimizers.Optimizer = make_optimizer(optimizer)
        _, grads, _ = self._tape(inputs, target, loss)
        variables = self.model.trainable_variables
        opt.apply_gradients([(g, v) for g, v in zip(grads, variables, strict=True)
                             if g is not None])  # as PyTorch skips a parameter without .grad
        return self.state()
