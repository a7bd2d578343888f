"""Optimisers with PyTorch's exact update rules, and the losses of the `train` section.

Optimisers hold the model's live parameter arrays and update them in place; `state()` and
`load_state()` export and restore their moments as plain arrays (for checkpoints):

    opt = Adam(model.parameters(), lr=1e-3)
    loss, dlogits = LOSSES["cross_entropy"](model(x), y)
    model.zero_grad(); model.backward(dlogits); opt.step(model.grads())
"""

from __future__ import annotations

from typing import Any

import numpy as np

from archdsl.graph import Optimizer as OptimizerSpec

from .kernels.losses import LOSSES, bce_with_logits, cross_entropy, l1, mse

Arrays = dict[str, np.ndarray]


class SGD:
    """torch.optim.SGD: buf = m * buf + (1 - dampening) * g (buf = g at first); p -= lr * buf,
    or with Nesterov p -= lr * (g + m * buf)."""

    def __init__(self, params: Arrays, lr: float = 1e-3, momentum: float = 0.0,
                 weight_decay: float = 0.0, dampening: float = 0.0, nesterov: bool = False):
        self.params, self.lr, self.momentum, self.weight_decay = params, lr, momentum, weight_decay
        self.dampening, self.nesterov = dampening, nesterov
        self.buf: Arrays = {}

    def step(self, grads: Arrays) -> None:
        """One step for every parameter with a gradient in `grads` (absent: left alone)."""
        for k, p in self.params.items():
            if k not in grads:
                continue
            d = grads[k] + self.weight_decay * p if self.weight_decay else grads[k]
            if self.momentum:
                buf = self.buf.get(k)
                buf = d.copy() if buf is None else self.momentum * buf + (1 - self.dampening) * d
                self.buf[k] = buf
                d = d + self.momentum * buf if self.nesterov else buf
            p -= self.lr * d

    def state(self) -> Arrays:
        return {f"buf/{k}": v.copy() for k, v in self.buf.items()}

    def load_state(self, state: Arrays) -> None:
        self.buf = {k[4:]: v.copy() for k, v in state.items() if k.startswith("buf/")}


class Adam:
    """torch.optim.Adam; `decoupled=True` is AdamW (p *= 1 - lr * wd before the step)."""

    decoupled = False

    def __init__(self, params: Arrays, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        self.params, self.lr, self.betas, self.eps = params, lr, tuple(betas), eps
        self.weight_decay = weight_decay
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t = 0

    def step(self, grads: Arrays) -> None:
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1**self.t)
        root_c2 = (1 - b2**self.t) ** 0.5
        for k, p in self.params.items():
            if k not in grads:
                continue
            g = grads[k]
            if self.weight_decay and self.decoupled:
                p *= 1 - self.lr * self.weight_decay
            elif self.weight_decay:
                g = g + self.weight_decay * p
            m, v = self.m[k], self.v[k]
            m += (1 - b1) * (g - m)
            v *= b2
            v += (1 - b2) * g * g
            p -= step_size * m / (np.sqrt(v) / root_c2 + self.eps)

    def state(self) -> Arrays:
        return {"step": np.array(self.t), **{f"m/{k}": v.copy() for k, v in self.m.items()},
                **{f"v/{k}": v.copy() for k, v in self.v.items()}}

    def load_state(self, state: Arrays) -> None:
        self.t = int(state["step"])
        for k in self.params:
            self.m[k][...] = state[f"m/{k}"]
            self.v[k][...] = state[f"v/{k}"]


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (default 1e-2)."""

    decoupled = True

    def __init__(self, params: Arrays, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


OPTIMIZERS: dict[str, type] = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}


def make_optimizer(spec: OptimizerSpec, params: Arrays) -> Any:
    """The optimiser a `train` section names, e.g. `Adam(lr=1e-3)`."""
    return OPTIMIZERS[spec.name](params, **spec.args)


__all__ = ["SGD", "Adam", "AdamW", "OPTIMIZERS", "LOSSES", "make_optimizer", "cross_entropy",
           "bce_with_logits", "mse", "l1"]
