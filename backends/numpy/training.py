"""The NumPy trainer behind `archdsl train --backend numpy` (see archdsl/train.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from archdsl.graph import Graph

from . import build, load_state_dict, state_dict
from .nn import Module
from .optim import LOSSES, make_optimizer


def loss_grad(name: str, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """The loss of the `train` section and its gradient, with the target shaped to fit."""
    if name == "cross_entropy":
        return LOSSES[name](out, target.reshape(out.shape[:-1]))
    return LOSSES[name](out, target.astype(out.dtype, copy=False).reshape(out.shape))


def rng_state(rng: np.random.Generator) -> np.ndarray:
    """A PCG64 generator's state as uint64 words (checkpoints hold plain arrays)."""
    s = rng.bit_generator.state
    words = [s["state"]["state"], s["state"]["inc"]]
    return np.array([w >> 64 for w in words] + [w & (2**64 - 1) for w in words]
                    + [s["has_uint32"], s["uinteger"]], dtype=np.uint64)


def set_rng_state(rng: np.random.Generator, a: np.ndarray) -> None:
    w = [int(x) for x in a]
    rng.bit_generator.state = {"bit_generator": "PCG64",
                               "state": {"state": w[0] << 64 | w[2], "inc": w[1] << 64 | w[3]},
                               "has_uint32": w[4], "uinteger": w[5]}


def accelerators() -> dict[str, int]:
    """None: NumPy runs on the CPU (archdsl/devices.py declares it)."""
    return {}


def outputs(out: Any) -> tuple[np.ndarray, ...]:
    return out if isinstance(out, tuple) else (out,)


class Trainer:
    def __init__(self, graph: Graph, settings: Any):
        self.settings = settings
        self.model: Module = build(graph, seed=settings.seed)
        self.optimizer = make_optimizer(settings.optimizer, self.model.parameters())

    def _inputs(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [batch[n] for n in self.settings.inputs]

    def step(self, batch: dict[str, np.ndarray]) -> float:
        self.model.train()
        outs = outputs(self.model(*self._inputs(batch)))  # the loss reads the first output
        value, dout = loss_grad(self.settings.loss, outs[0], batch[self.settings.label])
        self.model.zero_grad()
        self.model.backward(dout, *[None] * (len(outs) - 1))
        self.optimizer.step(self.model.grads())
        return value

    def predict(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        self.model.eval()
        return outputs(self.model(*self._inputs(batch)))[0].astype(np.float32)

    def weights(self) -> dict[str, np.ndarray]:
        return state_dict(self.model)

    def set_hyperparameters(self, lr: float, momentum: float | None = None) -> None:
        self.optimizer.lr = lr
        if momentum is not None and hasattr(self.optimizer, "betas"):
            self.optimizer.betas = (momentum, self.optimizer.betas[1])
        elif momentum is not None:
            self.optimizer.momentum = momentum

    def hyperparameters(self) -> dict[str, float]:
        o = self.optimizer
        return {"lr": o.lr, "momentum": o.betas[0] if hasattr(o, "betas") else o.momentum}

    def state(self) -> dict[str, np.ndarray]:
        return {**{f"model/{k}": v for k, v in self.weights().items()},
                **{f"optim/{k}": v for k, v in self.optimizer.state().items()},
                "rng/numpy": rng_state(self.model.rng)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        load_state_dict(self.model, {k[6:]: v for k, v in state.items() if k.startswith("model/")})
        self.optimizer.load_state({k[6:]: v for k, v in state.items() if k.startswith("optim/")})
        set_rng_state(self.model.rng, state["rng/numpy"])
