"""Training-step time of the generated Keras model against a hand-written Keras model.

    python bench/keras_vs_handwritten.py [--quick] [--threads N]

For the same three specs as bench/torch_vs_handwritten.py: builds the generated model with
`archdsl.build(spec, backend="tensorflow")` (channels-first inputs, as the spec; channels-last
inside), loads its weights into the hand-written functional model of
bench/handwritten_keras.py (channels-last images: what a Keras user writes and what
TensorFlow's CPU kernels prefer), checks that both give the same outputs, then times a
training step of each: a `tf.GradientTape` step (forward, cross-entropy, gradients, SGD with
momentum) wrapped in `tf.function`, interleaved. The ratio is hand-written time / generated
time: 1.0 or more means the generated code is no slower.
"""

# ruff: noqa: E402  (the thread variables must be set before numpy and TensorFlow are imported)
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _timing import chosen, interleave, machine, options, pin_tensorflow, print_table

OPTIONS = options(__doc__)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from _inputs import describe, random_inputs, sizes
from handwritten_keras import char_lstm, load_torch_layout, resnet20, text_classifier

import archdsl
from archdsl.api import graph as spec_graph
from archdsl.verify import make_target

SPECS = Path(__file__).resolve().parents[1] / "specs"


@dataclass
class Case:
    name: str
    spec: str
    handwritten: Callable[..., tuple[keras.Model, Any]]  # (params, bind) -> (model, layers)
    params: dict[str, Any]
    bind: dict[str, int]
    quick_bind: dict[str, int] = field(default_factory=lambda: {"B": 2, "T": 8})
    channels_last: bool = False  # the hand-written model takes images channels-last


CASES = [
    Case("ResNet-20, 32x32", "resnet_block.arch", lambda p, b: resnet20(p["classes"]),
         {"classes": 10}, {"B": 32}, channels_last=True),
    Case("Transformer encoder", "text_transformer.arch",
         lambda p, b: text_classifier(p["vocab"], p["d_model"], p["heads"], p["layers"],
                                      p["classes"], b["T"]),
         {"vocab": 1000, "d_model": 128, "heads": 4, "layers": 2, "classes": 2},
         {"B": 16, "T": 64}),
    Case("char LSTM", "char_lstm.arch",
         lambda p, b: char_lstm(p["vocab"], p["embed"], p["hidden"], b["T"]),
         {"vocab": 96, "embed": 64, "hidden": 128}, {"B": 32, "T": 64}),
]


def train_step(model: keras.Model) -> Callable[[tf.Tensor, tf.Tensor], None]:
    """One compiled SGD step on cross-entropy; a fresh optimizer per model."""
    opt = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x: tf.Tensor, y: tf.Tensor) -> None:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    return step


def measure(case: Case, args: argparse.Namespace) -> list[object]:
    spec = SPECS / case.spec
    graph = spec_graph(spec, params=case.params)
    bind = sizes(graph, case.quick_bind if args.quick else case.bind)
    keras.utils.set_random_seed(0)
    generated = archdsl.build(spec, backend="tensorflow", params=case.params)
    handwritten, tracked = case.handwritten(case.params, bind)
    state = archdsl.state_dict(generated)  # in the graph's order, as the tracked layers are
    load_torch_layout(tracked, {layer.key(p): state[layer.key(p)]
                                for layer in graph.layers.values() for p in layer.params})

    rng = np.random.default_rng(0)
    (x,) = random_inputs(graph, bind, rng)
    x_hand = x.transpose(0, 2, 3, 1).copy() if case.channels_last else x
    outs = [np.asarray(generated(x, training=False)),
            np.asarray(handwritten(x_hand, training=False))]
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-4, atol=1e-4)
    y = tf.constant(make_target("cross_entropy", outs[0], rng))

    sides = {}
    for side, model, inputs in (("generated", generated, tf.constant(x)),
                                ("hand-written", handwritten, tf.constant(x_hand))):
        step = train_step(model)
        sides[side] = lambda s=step, i=inputs: s(i, y)
    rounds, reps, warmup = (2, 1, 1) if args.quick else (31, 1, 3)
    t = interleave(sides, rounds, reps, warmup, args.clock)
    return [case.name, describe(bind), 1e3 * t["generated"], 1e3 * t["hand-written"],
            t["hand-written"] / t["generated"]]


def main() -> None:
    pin_tensorflow(OPTIONS.threads)
    tf.get_logger().setLevel("ERROR")  # each model's step is a new tf.function, by design
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}; {machine(OPTIONS)}")
    rows = [measure(case, OPTIONS) for case in chosen(CASES, OPTIONS)]
    print_table(["model", "input", "generated ms/step", "hand-written ms/step", "ratio"], rows)


if __name__ == "__main__":
    main()
