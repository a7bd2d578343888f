"""`model.compile` with a spec's `train` section, meaning what PyTorch means by it.

Keras's optimizers differ from PyTorch's in two places, and both are fixed here: Adam adds its
epsilon before the bias correction of the second moment (PyTorch after), and `weight_decay` of
SGD and Adam is PyTorch's L2 term added to the gradient, while Keras decays the weights
directly (that is AdamW, where both agree).

    graph = archdsl.load("specs/cnn_digits.arch").graph()
    model = archdsl.backends.tensorflow.build(graph)
    fit_args = compile_for_fit(model, graph)        # loss, optimizer, batch and epochs
    data = archdsl.data.load_dataset("digits", graph)
    model.fit(*data.xy("train"), validation_data=data.xy("test"), **fit_args)
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from archdsl import schedules
from archdsl.graph import Graph, Optimizer, TrainConfig

DEFAULT = TrainConfig(loss="cross_entropy", optimizer=Optimizer(name="Adam", args={"lr": 1e-3}))

LOSSES = {
    "cross_entropy": lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    "bce_with_logits": lambda: keras.losses.BinaryCrossentropy(from_logits=True),
    "mse": lambda: keras.losses.MeanSquaredError(),
    "l1": lambda: keras.losses.MeanAbsoluteError(),
}


class SGD(keras.optimizers.SGD):
    """torch.optim.SGD: buf = momentum * buf + g (buffers start at zero, so the first step's
    buf is g, as PyTorch's); p -= lr * buf, or with Nesterov p -= lr * (g + momentum * buf);
    `l2` (PyTorch's weight_decay) joins g first. Keras folds the learning rate into its buffer,
    which differs from PyTorch once a schedule changes the rate."""

    def __init__(self, l2: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.l2 = l2
        self.scheduled_momentum: tf.Variable | None = None

    def cycle_momentum(self) -> None:
        """Read the momentum from a variable a schedule sets before every step (OneCycle),
        with buffers even when the spec's momentum is 0, as PyTorch's OneCycleLR does."""
        self.scheduled_momentum = tf.Variable(float(self.momentum), trainable=False,
                                              dtype=tf.float64)

    def build(self, variables: Any) -> None:
        if self.built:
            return
        keras.optimizers.Optimizer.build(self, variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum") if (
            self.momentum or self.scheduled_momentum is not None) else []

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        g = tf.cast(gradient, dtype)
        if self.l2:
            g = g + self.l2 * variable
        lr = tf.cast(learning_rate, dtype)
        if not self.momentums:
            self.assign_sub(variable, lr * g)
            return
        momentum = self.momentum if self.scheduled_momentum is None else \
            tf.cast(self.scheduled_momentum, dtype)
        buf = self.momentums[self._get_variable_index(variable)]
        self.assign(buf, momentum * buf + g)
        self.assign_sub(variable, lr * (g + momentum * buf if self.nesterov else buf))


class Adam(keras.optimizers.Adam):
    """torch.optim.Adam (and AdamW, through Keras's decoupled `weight_decay`).

    p -= lr * m_hat / (sqrt(v_hat) + eps), with `l2` (Adam's weight_decay) added to the gradient.
    """

    def __init__(self, l2: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.l2 = l2
        self.scheduled_momentum: tf.Variable | None = None

    def cycle_momentum(self) -> None:
        """Read beta1 from a variable a schedule sets before every step (OneCycle)."""
        self.scheduled_momentum = tf.Variable(float(self.beta_1), trainable=False,
                                              dtype=tf.float64)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        g = tf.cast(gradient, dtype)
        if self.l2:
            g = g + self.l2 * variable
        beta_1 = self.beta_1 if self.scheduled_momentum is None else \
            tf.cast(self.scheduled_momentum, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, (g - m) * (1 - beta_1))
        self.assign_add(v, (tf.square(g) - v) * (1 - self.beta_2))
        m_hat = m / (1 - beta_1**step)  # a Python float without a schedule: no float32 round trip
        v_hat = v / (1 - self.beta_2**step)
        lr = tf.cast(learning_rate, dtype)
        self.assign_sub(variable, lr * m_hat / (tf.sqrt(v_hat) + self.epsilon))


def set_hyperparameters(opt: SGD | Adam, lr: float, momentum: float | None = None) -> None:
    """A schedule's values for the next step (`momentum`: SGD's momentum or Adam's beta1, once
    `cycle_momentum()` made it a variable)."""
    opt.learning_rate.assign(lr)
    if momentum is not None and opt.scheduled_momentum is not None:
        opt.scheduled_momentum.assign(momentum)


def hyperparameters(opt: SGD | Adam) -> dict[str, float]:
    momentum = opt.momentum if isinstance(opt, SGD) else opt.beta_1
    if opt.scheduled_momentum is not None:
        momentum = float(opt.scheduled_momentum.numpy())
    return {"lr": float(opt.learning_rate.numpy()), "momentum": float(momentum)}


class FollowSchedule(keras.callbacks.Callback):
    """For `fit`: the schedule's learning rate (and momentum) before every batch, at the step
    the optimizer has counted, so a `fit` resumed from saved optimizer variables continues."""

    def __init__(self, plan: schedules.Plan):
        super().__init__()
        self.plan = plan

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        opt = self.model.optimizer
        set_hyperparameters(opt, *self.plan.at(int(opt.iterations.numpy())))


def optimizer(spec: Optimizer, clip: float | None = None) -> SGD | Adam:
    """The Keras optimizer for a spec's `Optimizer(...)`; `clip` is the global gradient norm."""
    a = dict(spec.args)
    common = {"learning_rate": a.pop("lr", 1e-3), "global_clipnorm": clip}
    if spec.name == "SGD":
        if a.pop("dampening", 0.0):
            raise ValueError("SGD `dampening` has no Keras equivalent")
        out = SGD(l2=a.pop("weight_decay", 0.0), momentum=a.pop("momentum", 0.0),
                  nesterov=a.pop("nesterov", False), **common)
    else:
        beta_1, beta_2 = a.pop("betas", (0.9, 0.999))
        decay = a.pop("weight_decay", 0.01 if spec.name == "AdamW" else 0.0)
        out = Adam(beta_1=beta_1, beta_2=beta_2, epsilon=a.pop("eps", 1e-8),
                   l2=0.0 if spec.name == "AdamW" else decay,
                   weight_decay=decay if spec.name == "AdamW" and decay else None, **common)
    if a:
        raise ValueError(f"{spec.name} arguments the TensorFlow backend does not know: "
                         f"{', '.join(sorted(a))}")
    return out


def compile_for_training(model: keras.Model, train: TrainConfig | None = None,
                         outputs: int = 1, steps_per_epoch: int | None = None,
                         **compile_args: Any) -> dict[str, Any]:
    """Compile `model` with the spec's loss and optimizer (cross entropy and Adam(lr=1e-3) when
    the spec has none); returns `fit`'s `batch_size` and `epochs` from the spec, if given, and
    with a `schedule`, the `callbacks` that follow it (it needs `steps_per_epoch`: the
    examples over the batch, rounded down, as `archdsl train` steps).
    With several `outputs` the loss reads the first, as in `archdsl train`; `fit` takes its
    target alone."""
    loss = (train and train.loss) or DEFAULT.loss
    spec = (train and train.optimizer) or DEFAULT.optimizer
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    losses = LOSSES[loss]() if outputs == 1 else [LOSSES[loss](), *[None] * (outputs - 1)]
    opt = optimizer(spec, train.clip if train else None)
    fit: dict[str, Any] = {"batch_size": train.batch if train else None,
                           "epochs": train.epochs if train else None}
    if train and train.schedule:
        if not (steps_per_epoch and train.epochs):
            raise ValueError("the spec's schedule spans the run: give compile_for_fit "
                             "steps_per_epoch (and the spec `epochs`)")
        plan = schedules.plan(train.schedule, spec, steps_per_epoch * train.epochs)
        if plan and plan.cycles_momentum:
            opt.cycle_momentum()
        fit["callbacks"] = [FollowSchedule(plan)]
    model.compile(optimizer=opt, loss=losses, **compile_args)
    return {k: v for k, v in fit.items() if v is not None}


def compile_for_fit(model: keras.Model, graph: Graph, steps_per_epoch: int | None = None,
                    **compile_args: Any) -> dict[str, Any]:
    """`compile_for_training` with the `train` section and the outputs of the spec `model` was
    built from; returns `fit`'s `batch_size`, `epochs` and `callbacks` from the spec."""
    return compile_for_training(model, graph.train, len(graph.outputs), steps_per_epoch,
                                **compile_args)


class Trainer:
    """The trainer behind `archdsl train --backend tensorflow` (see archdsl/train.py): one
    GradientTape step per batch, with the optimizers above."""

    def __init__(self, graph: Any, settings: Any):
        from . import build
        keras.utils.set_random_seed(settings.seed)
        self.settings = settings
        self.model = build(graph)
        self.optimizer = optimizer(settings.optimizer)
        if schedules.cycles_momentum(settings.schedule):
            self.optimizer.cycle_momentum()
        self.optimizer.build(self.model.trainable_variables)
        self._step = tf.function(self._train_step, reduce_retracing=True)

    def _train_step(self, inputs: list[tf.Tensor], target: tf.Tensor) -> tf.Tensor:
        from .harness import loss_value
        with tf.GradientTape() as tape:
            out = self.model(*inputs, training=True)
            out = out[0] if isinstance(out, (tuple, list)) else out
            value = loss_value(self.settings.loss, out, target)
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(value, variables), variables,
                                           strict=True))
        return value

    def _inputs(self, batch: dict[str, Any]) -> list[tf.Tensor]:
        return [tf.constant(batch[n]) for n in self.settings.inputs]

    def step(self, batch: dict[str, Any]) -> float:
        return float(self._step(self._inputs(batch), tf.constant(batch[self.settings.label])))

    def predict(self, batch: dict[str, Any]) -> Any:
        out = self.model(*self._inputs(batch), training=False)
        return (out[0] if isinstance(out, (tuple, list)) else out).numpy()

    def weights(self) -> dict[str, Any]:
        from . import state_dict
        return state_dict(self.model)

    def set_hyperparameters(self, lr: float, momentum: float | None = None) -> None:
        set_hyperparameters(self.optimizer, lr, momentum)

    def hyperparameters(self) -> dict[str, float]:
        return hyperparameters(self.optimizer)

    def state(self) -> dict[str, Any]:
        """Every model and optimizer variable (weights, statistics, seed states, moments)."""
        out = {f"var/{i}": v.numpy() for i, v in enumerate(self.model.variables)}
        out.update({f"optim/{i}": v.numpy() for i, v in enumerate(self.optimizer.variables)})
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a `state()`; the learning rate stays this run's (`--lr`), as in torch."""
        lr = float(self.optimizer.learning_rate)
        for prefix, variables in (("var", self.model.variables),
                                  ("optim", self.optimizer.variables)):
            for i, v in enumerate(variables):
                v.assign(state[f"{prefix}/{i}"])
        self.optimizer.learning_rate.assign(lr)
