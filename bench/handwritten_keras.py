"""Hand-written Keras versions of three specs, as a Keras user would write them: functional
models of stock layers, images channels-last.

Each builder returns the model and its weighted layers in the order the spec creates them;
`load_torch_layout` fills those layers from a PyTorch-layout state dict taken in that order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import keras
import numpy as np
from keras import layers


class Tracked(list):
    """Records each layer it is handed, in order: `x = track(layers.Dense(8))(x)`."""

    def __call__(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        self.append(layer)
        return layer


def resnet20(classes: int = 10) -> tuple[keras.Model, Tracked]:
    """Stride-2 convolutions pad explicitly, as keras.applications' ResNets do: "same"
    padding would put the one extra row and column after, where PyTorch pads both sides."""
    track = Tracked()

    def conv_bn(x, channels: int, kernel: int, stride: int = 1):
        if stride > 1 and kernel > 1:
            x = layers.ZeroPadding2D(kernel // 2)(x)
        padding = "same" if stride == 1 else "valid"
        x = track(layers.Conv2D(channels, kernel, stride, padding, use_bias=False))(x)
        return track(layers.BatchNormalization(momentum=0.9, epsilon=1e-5))(x)

    def block(x, channels: int, stride: int = 1):
        h = layers.ReLU()(conv_bn(x, channels, 3, stride))
        h = conv_bn(h, channels, 3)
        shortcut = x if stride == 1 and x.shape[-1] == channels else conv_bn(x, channels, 1,
                                                                              stride)
        return layers.ReLU()(layers.Add()([h, shortcut]))

    image = keras.Input((32, 32, 3))
    x = layers.ReLU()(conv_bn(image, 16, 3))
    for channels, stride in ((16, 1), (32, 2), (64, 2)):
        x = block(x, channels, stride)
        x = block(block(x, channels), channels)
    logits = track(layers.Dense(classes))(layers.GlobalAveragePooling2D()(x))
    return keras.Model(image, logits), track


class PositionalEncoding(layers.Layer):
    """Adds the sinusoidal table: sin on even features, cos on odd ones."""

    def __init__(self, d_model: int, max_len: int = 512, **kwargs) -> None:
        super().__init__(**kwargs)
        rate = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        angles = np.arange(max_len)[:, None] * rate
        table = np.zeros((max_len, d_model))
        table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
        self.table = table.astype("float32")

    def call(self, x):
        return x + self.table[: x.shape[1]]


def text_classifier(vocab: int, d_model: int, heads: int, layers_: int, classes: int,
                    length: int, dropout: float = 0.1) -> tuple[keras.Model, Tracked]:
    track = Tracked()
    tokens = keras.Input((length,), dtype="int64")
    x = PositionalEncoding(d_model)(track(layers.Embedding(vocab, d_model))(tokens))
    for _ in range(layers_):
        attention = layers.MultiHeadAttention(heads, d_model // heads, dropout=dropout)
        a = layers.Dropout(dropout)(track(attention)(x, x))
        x = track(layers.LayerNormalization(epsilon=1e-5))(x + a)
        f = track(layers.Dense(4 * d_model, activation="relu"))(x)
        f = track(layers.Dense(d_model))(layers.Dropout(dropout)(f))
        x = track(layers.LayerNormalization(epsilon=1e-5))(x + layers.Dropout(dropout)(f))
    logits = track(layers.Dense(classes))(layers.GlobalAveragePooling1D()(x))
    return keras.Model(tokens, logits), track


def char_lstm(vocab: int, embed: int, hidden: int, length: int) -> tuple[keras.Model, Tracked]:
    track = Tracked()
    tokens = keras.Input((length,), dtype="int64")
    h = track(layers.Embedding(vocab, embed))(tokens)
    h = track(layers.LSTM(hidden, return_sequences=True))(h)
    h = track(layers.LSTM(hidden, return_sequences=True))(h)
    return keras.Model(tokens, track(layers.Dense(vocab))(h)), track


def _keras_weights(layer: keras.layers.Layer, take: Iterator[np.ndarray]) -> list[np.ndarray]:
    """The layer's `set_weights` list from the next PyTorch-layout arrays."""
    if isinstance(layer, layers.Conv2D):
        return [next(take).transpose(2, 3, 1, 0)] + ([next(take)] if layer.use_bias else [])
    if isinstance(layer, layers.BatchNormalization):
        weights = [next(take) for _ in range(4)]
        next(take)  # num_batches_tracked: Keras keeps no count
        return weights
    if isinstance(layer, layers.Dense):
        return [next(take).T, next(take)]
    if isinstance(layer, (layers.Embedding, layers.LayerNormalization)):
        return [next(take) for _ in layer.weights]
    if isinstance(layer, layers.LSTM):  # one bias where PyTorch has two
        w_ih, w_hh, b_ih, b_hh = (next(take) for _ in range(4))
        return [w_ih.T, w_hh.T, b_ih + b_hh]
    if isinstance(layer, layers.MultiHeadAttention):
        w, b, w_out, b_out = (next(take) for _ in range(4))
        heads, d = layer.num_heads, w.shape[1]
        qkv = [(wi.T.reshape(d, heads, -1), bi.reshape(heads, -1))
               for wi, bi in zip(np.split(w, 3), np.split(b, 3), strict=True)]
        return [a for pair in qkv for a in pair] + [w_out.T.reshape(heads, -1, d), b_out]
    raise TypeError(f"no PyTorch layout for {type(layer).__name__}")


def load_torch_layout(tracked: Tracked, state: dict[str, np.ndarray]) -> None:
    take = iter(state.values())
    for layer in tracked:
        layer.set_weights(_keras_weights(layer, take))
    left = list(take)
    if left:
        raise ValueError(f"{len(left)} arrays of the state dict were not used")
