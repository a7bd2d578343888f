"""Layers and functions for the ops of LANGUAGE.md section 10 where Keras lacks
PyTorch's semantics: activations with PyTorch's arguments, norms, structured dropout,
padding modes, noise. Copied into a generated module that uses them, as `layers.py`
is, under the same rules: self-contained (`keras` and `tf` only), weights under the
attribute names `runtime.CONVERT` reads, formatted for 88 columns.
"""

import keras
import tensorflow as tf


def softplus_threshold(x, beta, threshold):
    """torch.nn.functional.softplus: log(1 + exp(beta * x)) / beta, and x itself where
    beta * x exceeds `threshold`."""
    scaled = x * beta
    above = keras.ops.greater(scaled, threshold)
    return keras.ops.where(above, x, keras.ops.softplus(scaled) / beta)


def even_maximum(a, b):
    """torch.maximum: where the operands tie, each gets half the gradient
    (keras.ops.maximum gives it all to the first)."""
    return keras.ops.where(keras.ops.equal(a, b), (a + b) / 2, keras.ops.maximum(a, b))


def even_minimum(a, b):
    """torch.minimum, its gradient split evenly at a tie."""
    return keras.ops.where(keras.ops.equal(a, b), (a + b) / 2, keras.ops.minimum(a, b))


def unbiased_var(x, axis=None, keepdims=False):
    """torch.var with Bessel's correction: the mean square deviation times n / (n - 1),
    n the count of reduced elements."""
    mean = keras.ops.mean(x, axis=axis, keepdims=True)
    n = keras.ops.cast(keras.ops.size(x) // keras.ops.size(mean), x.dtype)
    return keras.ops.var(x, axis=axis, keepdims=keepdims) * n / (n - 1)


def _part(x, axis, start, stop):
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def pad_edges(x, widths, mode):
    """torch.nn.functional.pad's "replicate" (the border value repeated) and "circular"
    (the other end wrapped around, at most the size) modes, which keras.ops.pad lacks on
    TensorFlow. `widths` are (before, after) per axis; sizes may be unknown until run
    time."""
    for axis, (before, after) in enumerate(widths):
        if not (before or after):
            continue
        if mode == "replicate":
            head = keras.ops.repeat(_part(x, axis, 0, 1), before, axis=axis)
            tail = keras.ops.repeat(_part(x, axis, -1, None), after, axis=axis)
        else:  # -0 would take the whole axis
            head = _part(x, axis, -before, None) if before else _part(x, axis, 0, 0)
            tail = _part(x, axis, 0, after)
        x = keras.ops.concatenate([head, x, tail], axis=axis)
    return x


@keras.saving.register_keras_serializable(package="archdsl")
class PReLU(keras.layers.Layer):
    """torch.nn.PReLU: max(0, x) + weight * min(0, x), with PyTorch's `weight` [n]: one
    slope, or one per channel, which the generated code holds last."""

    def __init__(self, num_parameters=1, init=0.25, **kwargs):
        super().__init__(**kwargs)
        self.num_parameters = num_parameters
        self.init = init

    def build(self, input_shape):
        self.weight = self.add_weight(
            shape=(self.num_parameters,),
            initializer=keras.initializers.Constant(self.init),
            name="weight",
        )

    def call(self, x):
        return keras.ops.relu(x) - self.weight * keras.ops.relu(-x)

    def get_config(self):
        return {
            **super().get_config(),
            "num_parameters": self.num_parameters,
            "init": self.init,
        }


@keras.saving.register_keras_serializable(package="archdsl")
class RMSNorm(keras.layers.Layer):
    """torch.nn.RMSNorm over the last axis: x / sqrt(mean(x^2) + epsilon) * gamma, the
    scale optional (`scale=False`: PyTorch's `elementwise_affine=False`)."""

    def __init__(self, epsilon=1e-6, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.scale = scale
        self.center = False

    def build(self, input_shape):
        if self.scale:
            self.gamma = self.add_weight(
                shape=(input_shape[-1],), initializer="ones", name="gamma"
            )

    def call(self, x):
        square = keras.ops.mean(keras.ops.square(x), axis=-1, keepdims=True)
        y = x * keras.ops.rsqrt(square + self.epsilon)
        return y * self.gamma if self.scale else y

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "scale": self.scale}


@keras.saving.register_keras_serializable(package="archdsl")
class InstanceNorm(keras.layers.Layer):
    """torch.nn.InstanceNorm1d/2d, channels-last: each example's channels normalized
    over their positions (biased variance). `momentum` is PyTorch's (the batch's
    weight). With `track_running_stats`, training updates the running statistics as
    PyTorch does (averaged over the batch, the variance unbiased) and evaluation uses
    them."""

    def __init__(
        self,
        epsilon=1e-5,
        momentum=0.1,
        affine=False,
        track_running_stats=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.momentum = momentum
        self.scale = self.center = affine
        self.track_running_stats = track_running_stats

    def build(self, input_shape):
        channels = (input_shape[-1],)
        if self.scale:
            self.gamma = self.add_weight(
                shape=channels, initializer="ones", name="gamma"
            )
            self.beta = self.add_weight(
                shape=channels, initializer="zeros", name="beta"
            )
        if self.track_running_stats:
            self.moving_mean = self.add_weight(
                shape=channels, initializer="zeros", trainable=False, name="moving_mean"
            )
            self.moving_variance = self.add_weight(
                shape=channels,
                initializer="ones",
                trainable=False,
                name="moving_variance",
            )
            self.num_batches_tracked = self.add_weight(
                shape=(),
                dtype="int64",
                initializer="zeros",
                trainable=False,
                name="num_batches_tracked",
            )

    def call(self, x, training=None):
        positions = list(range(1, len(x.shape) - 1))
        if self.track_running_stats and not training:
            mean, variance = self.moving_mean, self.moving_variance
        else:
            mean, variance = keras.ops.moments(x, positions, keepdims=True)
            if self.track_running_stats:
                n = keras.ops.cast(keras.ops.size(x) // keras.ops.size(mean), x.dtype)
                batch = list(range(len(x.shape) - 1))
                m = self.momentum
                for moving, value in (
                    (self.moving_mean, mean),
                    (self.moving_variance, variance * n / (n - 1)),
                ):
                    value = keras.ops.mean(value, axis=batch)
                    moving.assign(moving * (1 - m) + value * m)
        y = (x - mean) * keras.ops.rsqrt(variance + self.epsilon)
        return y * self.gamma + self.beta if self.scale else y

    def get_config(self):
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "momentum": self.momentum,
            "affine": self.scale,
            "track_running_stats": self.track_running_stats,
        }


@keras.saving.register_keras_serializable(package="archdsl")
class DropPath(keras.layers.Layer):
    """Stochastic depth (timm's DropPath): in training, each example's whole input is
    zeroed with probability `rate` and the rest scaled by 1 / (1 - rate)."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, x, training=None):
        if not training or self.rate == 0:
            return x
        keep = 1 - self.rate
        shape = (keras.ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        draw = keras.random.uniform(shape, dtype=x.dtype, seed=self.seed_generator)
        return x / keep * keras.ops.floor(keep + draw)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


@keras.saving.register_keras_serializable(package="archdsl")
class RandnLike(keras.layers.Layer):
    """torch.randn_like: standard normal noise of the input's shape and dtype, fresh at
    every call, in training and evaluation alike. Layers are numbered as they are made
    (`index`: graph order, as the code applies them). `draws`, when set (archdsl's
    runtime sets it for `archdsl.noise`), is asked first in eager calls: a function of
    the index and the shape in PyTorch's layout (channels at axis 1, which the input
    holds at `channels`) returning a NumPy array, or None to draw as usual."""

    made = 0
    draws = None

    def __init__(self, channels=1, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.index = RandnLike.made
        RandnLike.made += 1
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, x):
        if RandnLike.draws is not None and tf.executing_eagerly():
            shape = list(x.shape)
            shape.insert(1, shape.pop(self.channels))
            drawn = RandnLike.draws(self.index, tuple(shape))
            if drawn is not None:
                drawn = keras.ops.moveaxis(drawn, 1, self.channels)
                return keras.ops.cast(drawn, x.dtype)
        shape = keras.ops.shape(x)
        return keras.random.normal(shape, dtype=x.dtype, seed=self.seed_generator)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}
