"""What generated Keras modules use beyond Keras: layers where Keras lacks PyTorch's
semantics, and the few helpers of the functional API a spec can need.

The generator copies into a module only the classes it uses (with those they use), so
each is self-contained: it uses `math`, `keras` and `tf`, which the module imports.
Layers take and return tensors in the layout the generated code gives them
(channels-last for batch norm); their weights are in Keras's layouts, and
`runtime.state_dict` converts them to PyTorch's. Each layer is registered with Keras, so
a saved model loads once its module is imported. Formatted for 88 columns, as the
modules it goes into.
"""

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="archdsl")
class BatchNorm(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` as PyTorch's BatchNorm trains: the moving
    variance takes the unbiased batch variance (the normalisation the biased one) and
    `num_batches_tracked` counts the steps. `momentum` is Keras's: PyTorch's 0.1 is 0.9
    here. In training, a float32 4-D input runs TensorFlow's fused kernel."""

    def build(self, input_shape):
        super().build(input_shape)
        self.num_batches_tracked = self.add_weight(
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            name="num_batches_tracked",
        )

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable):
            return super().call(inputs, training=False)
        dtype = keras.backend.result_type(inputs.dtype, "float32")  # float16 in float32
        x = keras.ops.cast(inputs, dtype)
        channels = x.shape[self.axis]
        gamma = self.gamma if self.scale else keras.ops.ones((channels,))
        beta = self.beta if self.center else keras.ops.zeros((channels,))
        gamma, beta = keras.ops.cast(gamma, dtype), keras.ops.cast(beta, dtype)
        if len(x.shape) == 4 and self.axis in (-1, 3) and dtype == "float32":
            y, mean, unbiased, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x,
                scale=gamma,
                offset=beta,
                mean=tf.constant([], dtype),
                variance=tf.constant([], dtype),
                epsilon=self.epsilon,
                is_training=True,
            )
        else:
            mean, variance = tf.nn.moments(x, self._reduction_axes)
            count = keras.ops.cast(keras.ops.size(x) // channels, dtype)
            unbiased = variance * count / (count - 1)
            y = tf.nn.batch_normalization(x, mean, variance, beta, gamma, self.epsilon)
        m = self.momentum
        for moving, batch in (
            (self.moving_mean, mean),
            (self.moving_variance, unbiased),
        ):
            moving.assign(moving * m + keras.ops.cast(batch, moving.dtype) * (1 - m))
        self.num_batches_tracked.assign_add(1)
        return keras.ops.cast(y, self.compute_dtype)


@keras.saving.register_keras_serializable(package="archdsl")
class RNNCell(keras.layers.Layer):
    """torch.nn.RNN's cell (tanh) for `keras.layers.RNN`, with PyTorch's two biases:
    Keras's SimpleRNNCell has one, their sum, which trains differently. Weights start as
    PyTorch's: U(+-1/sqrt(units))."""

    gates = 1

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units] * (2 if self.gates == 4 else 1)
        self.output_size = units

    def build(self, input_shape):
        bound = 1 / math.sqrt(self.units)
        width = self.gates * self.units

        def weight(name, shape):
            init = keras.initializers.RandomUniform(-bound, bound)
            return self.add_weight(shape=shape, initializer=init, name=name)

        self.kernel = weight("kernel", (input_shape[-1], width))
        self.recurrent_kernel = weight("recurrent_kernel", (self.units, width))
        self.bias = weight("bias", (width,))
        self.recurrent_bias = weight("recurrent_bias", (width,))

    def gates_of(self, x, h):
        return (
            keras.ops.matmul(x, self.kernel)
            + self.bias
            + keras.ops.matmul(h, self.recurrent_kernel)
            + self.recurrent_bias
        )

    def call(self, x, states, training=False):
        h = keras.ops.tanh(self.gates_of(x, states[0]))
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="archdsl")
class LSTMCell(RNNCell):
    """torch.nn.LSTM's cell for `keras.layers.RNN`: gates i, f, g, o (Keras's order too)
    and PyTorch's two biases."""

    gates = 4

    def call(self, x, states, training=False):
        h, c = states
        i, f, g, o = keras.ops.split(self.gates_of(x, h), 4, axis=-1)
        c = keras.ops.sigmoid(f) * c + keras.ops.sigmoid(i) * keras.ops.tanh(g)
        h = keras.ops.sigmoid(o) * keras.ops.tanh(c)
        return h, [h, c]


@keras.saving.register_keras_serializable(package="archdsl")
class GroupedConv2DTranspose(keras.layers.Layer):
    """`keras.layers.Conv2DTranspose` with `groups` (Keras has none): each group of
    input channels makes its own `filters / groups` outputs. No padding;
    `output_padding` adds rows and columns after, as PyTorch's. `rank`: its axes."""

    rank = 2

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        output_padding=0,
        groups=1,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters, self.groups, self.use_bias = filters, groups, use_bias
        self.kernel_size, self.strides, self.output_padding = (
            tuple(v) if isinstance(v, (tuple, list)) else (v,) * self.rank
            for v in (kernel_size, strides, output_padding)
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        fan_in = self.filters // self.groups * math.prod(self.kernel_size)
        init = keras.initializers.RandomUniform(-(fan_in**-0.5), fan_in**-0.5)
        shape = (*self.kernel_size, self.filters // self.groups, channels)
        self.kernel = self.add_weight(shape=shape, initializer=init, name="kernel")
        self.bias = None
        if self.use_bias:
            init = keras.initializers.RandomUniform(-(fan_in**-0.5), fan_in**-0.5)
            self.bias = self.add_weight(
                shape=(self.filters,), initializer=init, name="bias"
            )

    def call(self, x):
        size = tf.shape(x)
        out = [
            (size[1 + i] - 1) * s + k + p
            for i, (s, k, p) in enumerate(
                zip(self.strides, self.kernel_size, self.output_padding, strict=True)
            )
        ]
        pieces = zip(
            tf.split(x, self.groups, axis=-1),
            tf.split(self.kernel, self.groups, axis=-1),
            strict=True,
        )
        y = tf.concat(
            [
                tf.nn.conv_transpose(
                    xg,
                    kg,
                    [size[0], *out, self.filters // self.groups],
                    [1, *self.strides, 1],
                    padding="VALID",
                )
                for xg, kg in pieces
            ],
            axis=-1,
        )
        return y if self.bias is None else y + self.bias

    def compute_output_shape(self, input_shape):
        sizes = [
            None if n is None else (n - 1) * s + k + p
            for n, s, k, p in zip(
                input_shape[1:-1],
                self.strides,
                self.kernel_size,
                self.output_padding,
                strict=True,
            )
        ]
        return (input_shape[0], *sizes, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "output_padding": self.output_padding,
            "groups": self.groups,
            "use_bias": self.use_bias,
        }


@keras.saving.register_keras_serializable(package="archdsl")
class AdditiveAttention(keras.layers.Layer):
    """Bahdanau attention with PyTorch's parameters: score_t = w . tanh(Wq q + Wk v_t
    + b), out = sum_t softmax_t(score) v_t. (Keras's AdditiveAttention projects
    nothing.)"""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, query_shape, values_shape):
        def fan_in(n):
            return keras.initializers.RandomUniform(-(n**-0.5), n**-0.5)

        q, v, u = query_shape[-1], values_shape[-1], self.units
        self.query_kernel = self.add_weight(
            shape=(q, u), initializer=fan_in(q), name="query_kernel"
        )
        self.key_kernel = self.add_weight(
            shape=(v, u), initializer=fan_in(v), name="key_kernel"
        )
        self.key_bias = self.add_weight(
            shape=(u,), initializer=fan_in(v), name="key_bias"
        )
        self.score_kernel = self.add_weight(
            shape=(u, 1), initializer=fan_in(u), name="score_kernel"
        )

    def call(self, query, values):
        q = keras.ops.matmul(query, self.query_kernel)[:, None]  # (B, 1, U)
        k = keras.ops.matmul(values, self.key_kernel) + self.key_bias  # (B, T, U)
        scores = keras.ops.matmul(keras.ops.tanh(q + k), self.score_kernel)  # (B, T, 1)
        weights = keras.ops.softmax(scores, axis=1)
        return keras.ops.sum(weights * values, axis=1)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="archdsl")
class PositionalEncoding(keras.layers.Layer):
    """Adds pe[t, 2i] = sin(t * 10000^(-2i/D)), pe[t, 2i+1] = cos(...) to (B, T, D); the
    table is computed in float64 and rounded once."""

    def __init__(self, max_len=5000, **kwargs):
        super().__init__(**kwargs)
        self.max_len = max_len

    def build(self, input_shape):
        dim = input_shape[-1]
        position = tf.range(self.max_len, dtype="float64")[:, None]
        rate = tf.exp(tf.range(0, dim, 2, dtype="float64") * (-math.log(10000.0) / dim))
        angles = position * rate  # (max_len, ceil(D / 2))
        table = tf.reshape(tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1), [-1])
        self.table = tf.reshape(table, [self.max_len, -1])[:, :dim]

    def call(self, x):
        table = keras.ops.cast(self.table[: keras.ops.shape(x)[1]], x.dtype)
        return x + table

    def get_config(self):
        return {**super().get_config(), "max_len": self.max_len}


@keras.saving.register_keras_serializable(package="archdsl")
class PositionalEmbedding(keras.layers.Layer):
    """Adds the first T rows of a learned (max_len, D) table, initialised N(0, 1)."""

    def __init__(self, max_len, **kwargs):
        super().__init__(**kwargs)
        self.max_len = max_len

    def build(self, input_shape):
        self.weight = self.add_weight(
            shape=(self.max_len, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(0.0, 1.0),
            name="weight",
        )

    def call(self, x):
        return x + self.weight[: keras.ops.shape(x)[1]]

    def get_config(self):
        return {**super().get_config(), "max_len": self.max_len}


@keras.saving.register_keras_serializable(package="archdsl")
class Parameter(keras.layers.Layer):
    """A learned tensor of the spec's shape. A functional model's tensors all derive
    from its inputs, so the tensor is read by calling the layer on any of them:
    `gain(x)`."""

    INITS = {
        "normal": lambda: keras.initializers.RandomNormal(0.0, 1.0),
        "uniform": lambda: keras.initializers.RandomUniform(0.0, 1.0),
        "trunc_normal": lambda: keras.initializers.TruncatedNormal(0.0, 0.02),
        "zeros": keras.initializers.Zeros,
        "ones": keras.initializers.Ones,
        "xavier_uniform": keras.initializers.GlorotUniform,
        "kaiming_uniform": keras.initializers.HeUniform,
        "kaiming_normal": keras.initializers.HeNormal,
    }

    def __init__(self, shape, init="normal", value=None, **kwargs):
        super().__init__(**kwargs)
        self.shape, self.init, self.value = tuple(shape), init, value
        if init == "constant":
            initializer = keras.initializers.Constant(value)
        else:
            initializer = self.INITS[init]()
        self.weight = self.add_weight(
            shape=self.shape, initializer=initializer, name="weight"
        )

    def call(self, anchor):
        return keras.ops.convert_to_tensor(self.weight)

    def compute_output_spec(self, anchor):
        return keras.KerasTensor(self.shape, dtype=self.weight.dtype)

    def get_config(self):
        config = {"shape": self.shape, "init": self.init, "value": self.value}
        return {**super().get_config(), **config}


class Weight(keras.layers.Layer):
    """A weight of another layer as a tensor of the model (tied weights: `wte.weight`),
    read by calling it on any tensor of the model: `Weight(wte, "embeddings")(x)`."""

    def __init__(self, layer, attribute, **kwargs):
        super().__init__(**kwargs)
        self.layer, self.attribute = layer, attribute

    def weight(self):
        return next(w for w in self.layer.weights if w.name == self.attribute)

    def call(self, anchor):
        return keras.ops.convert_to_tensor(self.weight())

    def compute_output_spec(self, anchor):
        weight = self.weight()
        return keras.KerasTensor(tuple(weight.shape), dtype=weight.dtype)


@keras.saving.register_keras_serializable(package="archdsl")
class Size(keras.layers.Layer):
    """A size known only when the model runs (a sequence's length), as a tensor:
    `T = Size(1)(tokens)`."""

    def __init__(self, axis, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x):
        return keras.ops.convert_to_tensor(keras.ops.shape(x)[self.axis], "int32")

    def compute_output_spec(self, x):
        return keras.KerasTensor((), dtype="int32")

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="archdsl")
class ReshapeTo(keras.layers.Layer):
    """Reshape to `shape`, whose None entries are the `sizes` (scalar tensors, read
    when the model runs) in order; -1 is inferred."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(shape)

    def target(self, sizes):
        sizes = iter(sizes)
        return [next(sizes) if d is None else d for d in self.shape]

    def call(self, x, sizes):
        return keras.ops.reshape(x, self.target(sizes))

    def compute_output_spec(self, x, sizes):
        shape = tuple(None if d is None or d == -1 else d for d in self.shape)
        return keras.KerasTensor(shape, dtype=x.dtype)

    def get_config(self):
        return {**super().get_config(), "shape": self.shape}


@keras.saving.register_keras_serializable(package="archdsl")
class ExpandTo(ReshapeTo):
    """torch's expand: broadcast to `shape`, where -1 keeps a dimension of the input and
    None entries are the `sizes` (scalar tensors, read when the model runs) in order."""

    def call(self, x, sizes):
        return keras.ops.broadcast_to(
            x, self.kept(self.target(sizes), keras.ops.shape(x))
        )

    def kept(self, shape, have):
        lead = len(shape) - len(have)
        return [have[i - lead] if d == -1 else d for i, d in enumerate(shape)]

    def compute_output_spec(self, x, sizes):
        shape = self.kept([None if d is None else d for d in self.shape], x.shape)
        return keras.KerasTensor(tuple(shape), dtype=x.dtype)


class Shared:
    """One block applied to several inputs with the same weights: the block's model is
    made on the first call's inputs (any size on the `free` axes), then applied to each
    call's."""

    def __init__(self, block, *args, name, free=(), **kwargs):
        self.block, self.args, self.kwargs = block, args, kwargs
        self.name, self.free, self.model = name, free, None

    def __call__(self, *inputs):
        if self.model is None:
            made = [
                keras.Input(
                    [None if (k, a) in self.free else d for a, d in enumerate(x.shape)][
                        1:
                    ],
                    dtype=x.dtype,
                )
                for k, x in enumerate(inputs)
            ]
            outputs = self.block(*made, *self.args, name=self.name, **self.kwargs)
            self.model = keras.Model(made, outputs, name=self.name)
        return self.model(list(inputs) if len(inputs) > 1 else inputs[0])


@keras.saving.register_keras_serializable(package="archdsl")
class MultiInputModel(keras.Model):
    """A functional model that also takes its inputs as separate arguments,
    `model(a, b)`, as PyTorch's modules do (and as a list, as Keras's)."""

    def __call__(self, *inputs, **kwargs):
        if len(inputs) > 1:
            inputs = (list(inputs),)
        return super().__call__(*inputs, **kwargs)


class Gan(keras.Model):
    """A gan's two models: `generator` and `discriminator`."""

    def __init__(self, generator, discriminator, **kwargs):
        super().__init__(**kwargs)
        self.generator, self.discriminator = generator, discriminator
