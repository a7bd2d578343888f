"""Layers generated Keras modules use for the ops of LANGUAGE.md section 10 that Keras
lacks with PyTorch's semantics: border padding, pooling with `ceil_mode`, resampling,
pixel shuffles, recurrent cells, padded embeddings and attention.

Copied into a module that uses them, after those of layers.py (the classes imported
below come from there): each uses `math` and `keras` only. Spatial layers take
channels-last tensors. The weights these layers make themselves are held in PyTorch's
names and layouts (`weight_ih` [3H, I]), so `runtime.state_dict` reads them as they are.
Formatted for 88 columns.
"""

import math

import keras

from .layers import GroupedConv2DTranspose, LSTMCell, RNNCell


def border_index(i, n, mode):
    """Which of `n` cells PyTorch's `mode` padding copies to position `i` (-pad..)."""
    if mode == "reflect":
        return -i if i < 0 else 2 * (n - 1) - i if i >= n else i
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    return i % n  # circular


@keras.saving.register_keras_serializable(package="archdsl")
class BorderPad(keras.layers.Layer):
    """Pads the spatial axes of a channels-last tensor by `padding` ((before, after)
    per axis) as PyTorch's reflect, replicate or circular padding: a gather of each
    axis, so the gradient flows to the cells copied."""

    def __init__(self, padding, mode, **kwargs):
        super().__init__(**kwargs)
        self.padding, self.mode = [tuple(p) for p in padding], mode

    def call(self, x):
        for axis, (before, after) in enumerate(self.padding, 1):
            n = x.shape[axis]
            index = [border_index(i, n, self.mode) for i in range(-before, n + after)]
            x = keras.ops.take(x, index, axis=axis)
        return x

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "mode": self.mode}


@keras.saving.register_keras_serializable(package="archdsl")
class Pool(keras.layers.Layer):
    """PyTorch's max or average pooling of a channels-last tensor, with `ceil_mode`
    (a last window that starts inside the input or its left padding) and
    `count_include_pad`: a max pool pads with -inf; an average pool sums zero-padded
    windows and divides by the cells counted (the padding up to `padding` after the
    input when `count_include_pad`, never the overhang of `ceil_mode`). `kernel`,
    `stride` (default: the kernel) and `padding`: a number, or one per spatial axis."""

    def __init__(
        self,
        kind,
        kernel,
        stride=None,
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kind, self.kernel, self.padding = kind, kernel, padding
        self.stride = kernel if stride is None else stride
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def axes(self, value, n):
        return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n

    def extra(self, n, k, s, p):
        """The cells padded after `padding` for the last window."""
        span = n + 2 * p - k
        out = (-(-span // s) if self.ceil_mode else span // s) + 1
        if self.ceil_mode and (out - 1) * s >= n + p:
            out -= 1
        return max((out - 1) * s + k - n - 2 * p, 0)

    def call(self, x):
        sizes = x.shape[1:-1]
        kernel, stride, padding = (
            self.axes(v, len(sizes)) for v in (self.kernel, self.stride, self.padding)
        )
        extra = [
            self.extra(*args)
            for args in zip(sizes, kernel, stride, padding, strict=True)
        ]
        widths = [
            (0, 0),
            *((p, p + e) for p, e in zip(padding, extra, strict=True)),
            (0, 0),
        ]
        if self.kind == "max":
            x = keras.ops.pad(x, widths, constant_values=float("-inf"))
            return self.windows(x, kernel, stride)
        x = keras.ops.pad(x, widths)
        # the cells each window counts, as a (1, *spatial, 1) mask
        counted = padding if self.count_include_pad else [0] * len(sizes)
        mask = keras.ops.ones(
            (1, *(n + 2 * c for n, c in zip(sizes, counted, strict=True)), 1), x.dtype
        )
        outside = [
            (p - c, p - c + e) for p, c, e in zip(padding, counted, extra, strict=True)
        ]
        mask = keras.ops.pad(mask, [(0, 0), *outside, (0, 0)])
        return self.windows(x, kernel, stride) / self.windows(mask, kernel, stride)

    def windows(self, x, kernel, stride):
        """Each window's max or mean, unpadded. TensorFlow has no 3-d pooling kernel for
        float64 on the CPU: there, a box is reduced one axis after the other, over
        strided slices."""
        if len(x.shape) < 5 or x.dtype != "float64":
            pool = keras.ops.max_pool if self.kind == "max" else keras.ops.average_pool
            return pool(x, kernel, stride)
        for axis, (k, s) in enumerate(zip(kernel, stride, strict=True), 1):
            last = (x.shape[axis] - k) // s * s
            pieces = [
                x[(slice(None),) * axis + (slice(o, o + last + 1, s),)]
                for o in range(k)
            ]
            y = pieces[0]
            for piece in pieces[1:]:
                y = keras.ops.maximum(y, piece) if self.kind == "max" else y + piece
            x = y if self.kind == "max" else y / k
        return x

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "kernel": self.kernel,
            "stride": self.stride,
            "padding": self.padding,
            "ceil_mode": self.ceil_mode,
            "count_include_pad": self.count_include_pad,
        }


@keras.saving.register_keras_serializable(package="archdsl")
class GroupedConv1DTranspose(GroupedConv2DTranspose):
    """`GroupedConv2DTranspose` along one axis: ConvTranspose1d with `groups`."""

    rank = 1


def resample_step(n_in, n_out, scale):
    """Input cells per output cell: `1 / scale` when a scale is given, as PyTorch's."""
    return 1 / scale if scale is not None else n_in / n_out


def resample_taps(n_in, n_out, scale, mode, align_corners):
    """Per output cell along one axis, PyTorch's (input index, weight) pairs for modes
    linear and cubic: the source coordinate as F.interpolate computes it, indices past
    the border clamped to it."""
    step = resample_step(n_in, n_out, scale)
    out = []
    for dst in range(n_out):
        if align_corners:
            src = dst * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            src = step * (dst + 0.5) - 0.5
            src = src if mode == "bicubic" else max(src, 0.0)
        base = math.floor(src)
        t = src - base
        if mode == "bicubic":
            a = -0.75  # PyTorch's bicubic convolution coefficient
            near = [((a + 2) * x - (a + 3)) * x * x + 1 for x in (t, 1 - t)]
            far = [((a * x - 5 * a) * x + 8 * a) * x - 4 * a for x in (t + 1, 2 - t)]
            weights = [far[0], near[0], near[1], far[1]]
            taps = [(base - 1 + k, w) for k, w in enumerate(weights)]
        else:
            taps = [(base, 1 - t), (base + 1, t)]
        out.append([(min(max(i, 0), n_in - 1), w) for i, w in taps])
    return out


@keras.saving.register_keras_serializable(package="archdsl")
class Resample(keras.layers.Layer):
    """F.interpolate of a channels-last tensor (recompute_scale_factor=None): to `size`,
    or by `scale` (floor(in * scale) cells); nearest gathers, the other modes multiply
    each spatial axis by its (out, in) matrix of weights."""

    def __init__(self, mode, size=None, scale=None, align_corners=False, **kwargs):
        super().__init__(**kwargs)
        self.mode, self.align_corners = mode, align_corners
        self.size = None if size is None else tuple(size)
        self.scale = None if scale is None else tuple(scale)

    def call(self, x):
        for axis, n_in in enumerate(x.shape[1:-1], 1):
            scale = None if self.scale is None else self.scale[axis - 1]
            n_out = self.size[axis - 1] if self.size else math.floor(n_in * scale)
            if self.mode == "nearest":
                # floor(dst * step), the product rounded to float32 first, as PyTorch's
                step = resample_step(n_in, n_out, scale)
                src = keras.ops.arange(n_out, dtype="float64") * step
                src = keras.ops.floor(keras.ops.cast(src, "float32"))
                index = keras.ops.minimum(keras.ops.cast(src, "int32"), n_in - 1)
                x = keras.ops.take(x, index, axis=axis)
                continue
            taps = resample_taps(n_in, n_out, scale, self.mode, self.align_corners)
            matrix = [[0.0] * n_in for _ in range(n_out)]
            for row, pairs in zip(matrix, taps, strict=True):
                for i, w in pairs:
                    row[i] += w
            matrix = keras.ops.convert_to_tensor(matrix, x.dtype)  # (out, in)
            x = keras.ops.moveaxis(
                keras.ops.tensordot(x, matrix, [[axis], [1]]), -1, axis
            )
        return x

    def get_config(self):
        config = {"mode": self.mode, "size": self.size, "scale": self.scale}
        return {**super().get_config(), **config, "align_corners": self.align_corners}


@keras.saving.register_keras_serializable(package="archdsl")
class PixelShuffle(keras.layers.Layer):
    """F.pixel_shuffle (or, `inverse`, F.pixel_unshuffle) of a channels-first tensor:
    [B, C·r², H, W] <-> [B, C, H·r, W·r], channel c·r² + i·r + j going to
    (h·r + i, w·r + j)."""

    def __init__(self, r, inverse=False, **kwargs):
        super().__init__(**kwargs)
        self.r, self.inverse = r, inverse

    def call(self, x):
        r = self.r
        _, c, h, w = x.shape
        if self.inverse:
            y = keras.ops.reshape(x, (-1, c, h // r, r, w // r, r))
            y = keras.ops.transpose(y, (0, 1, 3, 5, 2, 4))
            return keras.ops.reshape(y, (-1, c * r * r, h // r, w // r))
        y = keras.ops.reshape(x, (-1, c // (r * r), r, r, h, w))
        y = keras.ops.transpose(y, (0, 1, 4, 2, 5, 3))
        return keras.ops.reshape(y, (-1, c // (r * r), h * r, w * r))

    def get_config(self):
        return {**super().get_config(), "r": self.r, "inverse": self.inverse}


@keras.saving.register_keras_serializable(package="archdsl")
class PaddedEmbedding(keras.layers.Layer):
    """nn.Embedding with `padding_idx`: row `padding_idx` starts at zero and gets no
    gradient (its lookups are cut from the graph); `weight` is [num, dim]."""

    def __init__(self, num, dim, padding_idx, **kwargs):
        super().__init__(**kwargs)
        self.num, self.dim, self.padding_idx = num, dim, padding_idx

    def build(self, input_shape):
        self.weight = self.add_weight(
            shape=(self.num, self.dim),
            initializer=keras.initializers.RandomNormal(0.0, 1.0),
            name="weight",
        )
        row = keras.ops.arange(self.num)[:, None] != self.padding_idx
        self.weight.assign(self.weight * keras.ops.cast(row, self.weight.dtype))

    def call(self, tokens):
        y = keras.ops.take(self.weight, tokens, axis=0)
        padded = (tokens == self.padding_idx)[..., None]
        return keras.ops.where(padded, keras.ops.stop_gradient(y), y)

    def get_config(self):
        config = {"num": self.num, "dim": self.dim, "padding_idx": self.padding_idx}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="archdsl")
class Cell(keras.layers.Layer):
    """nn.RNNCell (tanh), nn.GRUCell or nn.LSTMCell, one step: `cell(x, h)` -> h, or
    `cell(x, h, c)` -> (h, c) for LSTM; a state not given is zeros. Gates in PyTorch's
    order (GRU r, z, n; LSTM i, f, g, o), weights as PyTorch's, U(+-1/sqrt(units))."""

    GATES = {"rnn": 1, "gru": 3, "lstm": 4}

    def __init__(self, mode, units, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.mode, self.units, self.use_bias = mode, units, use_bias

    def build(self, x_shape, h_shape=None, c_shape=None):
        bound = 1 / math.sqrt(self.units)
        width = self.GATES[self.mode] * self.units

        def weight(name, shape):
            init = keras.initializers.RandomUniform(-bound, bound)
            return self.add_weight(shape=shape, initializer=init, name=name)

        self.weight_ih = weight("weight_ih", (width, x_shape[-1]))
        self.weight_hh = weight("weight_hh", (width, self.units))
        if self.use_bias:
            self.bias_ih = weight("bias_ih", (width,))
            self.bias_hh = weight("bias_hh", (width,))

    def affine(self, v, which):
        weight, bias = (
            (self.weight_ih, "bias_ih") if which == "ih" else (self.weight_hh, "bias_hh")
        )
        y = keras.ops.matmul(v, keras.ops.transpose(weight))
        if not self.use_bias:
            return y
        return y + (self.bias_ih if bias == "bias_ih" else self.bias_hh)

    def call(self, x, h=None, c=None):
        if h is None:
            h = keras.ops.zeros((keras.ops.shape(x)[0], self.units), x.dtype)
        if self.mode == "rnn":
            return keras.ops.tanh(self.affine(x, "ih") + self.affine(h, "hh"))
        if self.mode == "gru":
            xr, xz, xn = keras.ops.split(self.affine(x, "ih"), 3, axis=-1)
            hr, hz, hn = keras.ops.split(self.affine(h, "hh"), 3, axis=-1)
            r, z = keras.ops.sigmoid(xr + hr), keras.ops.sigmoid(xz + hz)
            n = keras.ops.tanh(xn + r * hn)
            return (1 - z) * n + z * h
        if c is None:
            c = keras.ops.zeros_like(h)
        gates = self.affine(x, "ih") + self.affine(h, "hh")
        i, f, g, o = keras.ops.split(gates, 4, axis=-1)
        c = keras.ops.sigmoid(f) * c + keras.ops.sigmoid(i) * keras.ops.tanh(g)
        return keras.ops.sigmoid(o) * keras.ops.tanh(c), c

    def get_config(self):
        config = {"mode": self.mode, "units": self.units, "use_bias": self.use_bias}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="archdsl")
class Recurrent(keras.layers.Layer):
    """nn.RNN, nn.GRU or nn.LSTM (batch first) taking initial states and returning its
    final ones: `layer(x, h0[, c0])` -> output[, h_n[, c_n]], states [layers *
    directions, B, H] as PyTorch's. Made of the Keras layers target.py stacks (GRU, or
    RNN of the cells of layers.py; named `.l0`, `.l1` when stacked), dropout between
    them in training."""

    def __init__(
        self,
        mode,
        units,
        layers=1,
        bidirectional=False,
        return_sequences=True,
        return_state=False,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mode, self.units, self.count = mode, units, layers
        self.bidirectional, self.dropout = bidirectional, dropout
        self.return_sequences, self.return_state = return_sequences, return_state
        self.layers = [self.make(k) for k in range(layers)]
        self.between = keras.layers.Dropout(dropout)

    def make(self, k):
        name = f"{self.name}.l{k}" if self.count > 1 else self.name
        own = {} if self.bidirectional else {"name": name}
        both = {"return_sequences": True, "return_state": True, **own}
        if self.mode == "gru":
            inner = keras.layers.GRU(self.units, **both)
        else:
            cell = (LSTMCell if self.mode == "lstm" else RNNCell)(self.units)
            inner = keras.layers.RNN(cell, **both)
        if self.bidirectional:
            return keras.layers.Bidirectional(inner, name=name)
        return inner

    def build(self, x_shape, h_shape=None, c_shape=None):
        width = self.units * (2 if self.bidirectional else 1)
        for k, layer in enumerate(self.layers):
            layer.build((*x_shape[:-1], width) if k else x_shape)

    def call(self, x, h=None, c=None, training=None):
        directions = 2 if self.bidirectional else 1
        kinds = 2 if self.mode == "lstm" else 1
        finals = [[], []]  # h_n and c_n, one entry per layer and direction
        for k, layer in enumerate(self.layers):
            if k:
                x = self.between(x, training=training)
            state = None
            if h is not None:
                given = [h] if c is None else [h, c]
                state = [
                    s[k * directions + d] for d in range(directions) for s in given
                ]
            x, *states = layer(x, initial_state=state, training=training)
            for d in range(directions):
                for j in range(kinds):
                    finals[j].append(states[d * kinds + j])
        h_n = keras.ops.stack(finals[0])
        out = x
        if not self.return_sequences:
            last = finals[0][-directions:]
            out = keras.ops.concatenate(last, axis=-1) if directions > 1 else last[0]
        if not self.return_state:
            return out
        return (out, h_n, keras.ops.stack(finals[1])) if kinds > 1 else (out, h_n)

    def get_config(self):
        config = {
            "mode": self.mode,
            "units": self.units,
            "layers": self.count,
            "bidirectional": self.bidirectional,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "dropout": self.dropout,
        }
        return {**super().get_config(), **config}


def split_heads(x, heads):
    """(B, T, heads * d) -> (B, heads, T, d)."""
    x = keras.ops.reshape(x, (keras.ops.shape(x)[0], -1, heads, x.shape[-1] // heads))
    return keras.ops.transpose(x, (0, 2, 1, 3))


def merge_heads(x):
    """(B, heads, T, d) -> (B, T, heads * d)."""
    x = keras.ops.transpose(x, (0, 2, 1, 3))
    return keras.ops.reshape(x, (keras.ops.shape(x)[0], -1, x.shape[2] * x.shape[3]))


def linear(x, weight, bias=None):
    """F.linear: x @ weight.T + bias, weight [out, in] as PyTorch's."""
    y = keras.ops.matmul(x, keras.ops.transpose(weight))
    return y if bias is None else y + bias


def attend(q, k, v, causal, key_padding_mask, dropout, training):
    """Attention of (B, heads, T, d) tensors, scores scaled by 1/sqrt(d), with PyTorch's
    masks: `causal` lets query i see keys j <= i (top-left), `key_padding_mask` (B, Tk)
    hides the keys where it is true; a query that sees no key is NaN, as in PyTorch
    (and gets no gradient). `dropout` (a layer) acts on the weights."""
    scores = keras.ops.matmul(q, keras.ops.transpose(k, (0, 1, 3, 2)))
    scores = scores * (1 / math.sqrt(q.shape[-1]))
    keep = None
    if causal:
        tq, tk = keras.ops.shape(q)[2], keras.ops.shape(k)[2]
        keep = keras.ops.tril(keras.ops.ones((tq, tk), "int32")) > 0
    if key_padding_mask is not None:
        shown = keras.ops.logical_not(key_padding_mask[:, None, None, :])
        keep = shown if keep is None else keras.ops.logical_and(keep, shown)
    blind = None
    if keep is not None:
        scores = keras.ops.where(keep, scores, float("-inf"))
        if key_padding_mask is not None:  # causal alone leaves every query key 0
            blind = keras.ops.logical_not(keras.ops.any(keep, axis=-1, keepdims=True))
            scores = keras.ops.where(blind, 0.0, scores)
    weights = dropout(keras.ops.softmax(scores, axis=-1), training=training)
    out = keras.ops.matmul(weights, v)
    return out if blind is None else keras.ops.where(blind, float("nan"), out)


@keras.saving.register_keras_serializable(package="archdsl")
class MultiheadAttention(keras.layers.Layer):
    """nn.MultiheadAttention (batch first) in its parameters' names and layouts:
    `in_proj_weight` [3E, E] when key and value are E wide, else `q/k/v_proj_weight`;
    `in_proj_bias`, `out_proj`. Used where keras.layers.MultiHeadAttention cannot
    serve: a `key_padding_mask`, and heads 1 wide, whose projection bias Keras 3.15
    adds along the sequence when its length is the head count."""

    def __init__(self, heads, bias=True, causal=False, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.bias, self.causal, self.dropout = heads, bias, causal, dropout
        self.drop = keras.layers.Dropout(dropout)

    def build(
        self, query_shape, key_shape=None, value_shape=None, key_padding_mask_shape=None
    ):
        e = query_shape[-1]
        k = e if key_shape is None else key_shape[-1]
        v = e if value_shape is None else value_shape[-1]
        glorot = keras.initializers.GlorotUniform()
        if k == e and v == e:
            shapes = {"in_proj_weight": ((3 * e, e), glorot)}
        else:
            shapes = {
                "q_proj_weight": ((e, e), glorot),
                "k_proj_weight": ((e, k), glorot),
                "v_proj_weight": ((e, v), glorot),
            }
        if self.bias:
            shapes["in_proj_bias"] = ((3 * e,), "zeros")
        shapes["out_proj.weight"] = ((e, e), glorot)
        if self.bias:
            shapes["out_proj.bias"] = ((e,), "zeros")
        self.params = {
            name: self.add_weight(shape=shape, initializer=init, name=name)
            for name, (shape, init) in shapes.items()
        }

    def call(self, query, key=None, value=None, key_padding_mask=None, training=None):
        p = self.params
        key = query if key is None else key
        value = query if value is None else value
        if "in_proj_weight" in p:
            weights = keras.ops.split(p["in_proj_weight"], 3)
        else:
            weights = [p[f"{n}_proj_weight"] for n in "qkv"]
        biases = keras.ops.split(p["in_proj_bias"], 3) if self.bias else [None] * 3
        q, k, v = (
            split_heads(linear(x, w, b), self.heads)
            for x, w, b in zip((query, key, value), weights, biases, strict=True)
        )
        out = attend(q, k, v, self.causal, key_padding_mask, self.drop, training)
        return linear(merge_heads(out), p["out_proj.weight"], p.get("out_proj.bias"))

    def get_config(self):
        config = {"heads": self.heads, "bias": self.bias, "causal": self.causal}
        return {**super().get_config(), **config, "dropout": self.dropout}


def rotary(x, base):
    """Rotary position embeddings of (B, heads, T, d) at positions 0..T-1, the
    rotate-half convention (Hugging Face's Llama): inv_freq = base^(-2i / d), the first
    and second halves of each head paired. Angles are computed in float64."""
    d = x.shape[-1]
    inv_freq = base ** (-keras.ops.arange(0, d, 2, dtype="float64") / d)
    positions = keras.ops.arange(keras.ops.shape(x)[2], dtype="float64")
    angles = positions[:, None] * inv_freq[None, :]
    angles = keras.ops.concatenate([angles, angles], axis=-1)  # (T, d)
    first, second = keras.ops.split(x, 2, axis=-1)
    rotated = keras.ops.concatenate([-second, first], axis=-1)
    cos = keras.ops.cast(keras.ops.cos(angles), x.dtype)
    sin = keras.ops.cast(keras.ops.sin(angles), x.dtype)
    return x * cos + rotated * sin


@keras.saving.register_keras_serializable(package="archdsl")
class Attention(keras.layers.Layer):
    """The decoder attention of Llama-style models, in Hugging Face's parameter names
    (`q_proj.weight` [heads * d, dim]...): query head i reads key/value head
    i // (heads / kv_heads); `rotary` rotates queries and keys by their positions;
    masks as `attend`; dropout on the weights in training."""

    def __init__(
        self,
        heads,
        kv_heads=None,
        bias=False,
        causal=False,
        rotary=False,
        rope_base=10000.0,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.heads, self.kv_heads = heads, heads if kv_heads is None else kv_heads
        self.bias, self.causal, self.dropout = bias, causal, dropout
        self.rotary, self.rope_base = rotary, rope_base
        self.drop = keras.layers.Dropout(dropout)

    def build(
        self, query_shape, key_shape=None, value_shape=None, key_padding_mask_shape=None
    ):
        dim = query_shape[-1]
        d = dim // self.heads
        widths = {"q": self.heads * d, "k": self.kv_heads * d, "v": self.kv_heads * d}
        shapes = {}
        for n, width in widths.items():
            shapes[f"{n}_proj"] = (width, dim)
        shapes["o_proj"] = (dim, self.heads * d)
        self.params = {}
        for n, (out, fan_in) in shapes.items():
            bound = 1 / math.sqrt(fan_in)
            init = keras.initializers.RandomUniform(-bound, bound)
            names = [("weight", (out, fan_in))] + (
                [("bias", (out,))] if self.bias else []
            )
            for kind, shape in names:
                self.params[f"{n}.{kind}"] = self.add_weight(
                    shape=shape, initializer=init, name=f"{n}.{kind}"
                )

    def project(self, x, name, heads):
        p = self.params
        return split_heads(linear(x, p[f"{name}.weight"], p.get(f"{name}.bias")), heads)

    def call(self, query, key=None, value=None, key_padding_mask=None, training=None):
        key = query if key is None else key
        value = query if value is None else value
        q = self.project(query, "q_proj", self.heads)
        k = self.project(key, "k_proj", self.kv_heads)
        v = self.project(value, "v_proj", self.kv_heads)
        if self.rotary:
            q, k = rotary(q, self.rope_base), rotary(k, self.rope_base)
        group = self.heads // self.kv_heads  # query heads per key/value head
        k, v = keras.ops.repeat(k, group, axis=1), keras.ops.repeat(v, group, axis=1)
        out = attend(q, k, v, self.causal, key_padding_mask, self.drop, training)
        p = self.params
        return linear(merge_heads(out), p["o_proj.weight"], p.get("o_proj.bias"))

    def get_config(self):
        config = {
            "heads": self.heads,
            "kv_heads": self.kv_heads,
            "bias": self.bias,
            "causal": self.causal,
            "rotary": self.rotary,
            "rope_base": self.rope_base,
            "dropout": self.dropout,
        }
        return {**super().get_config(), **config}
