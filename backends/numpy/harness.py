"""What `archdsl verify` asks of the NumPy build; in float64 it is the reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from archdsl.graph import Graph, Optimizer

from . import build, load_state_dict, state_dict
from .optim import LOSSES, make_optimizer


class Harness:
    def __init__(self, graph: Graph, dtype: Any = np.float32,
                 perturb: Callable[[np.ndarray], np.ndarray] | None = None):
        self.graph = graph
        self.dtype = dtype
        self.model = build(graph, dtype=dtype)
        self.model.perturb = perturb

    def load(self, state: dict[str, np.ndarray]) -> None:
        load_state_dict(self.model, state)

    def state(self) -> dict[str, np.ndarray]:
        return state_dict(self.model)

    def _cast(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [x.astype(self.dtype) if x.dtype.kind == "f" else x for x in inputs]

    def forward(self, inputs: list[np.ndarray], train: bool) -> list[np.ndarray]:
        self.model.train(train)
        out = self.model(*self._cast(inputs))
        return list(out) if isinstance(out, tuple) else [out]

    def _loss_backward(self, inputs: list[np.ndarray], target: np.ndarray, loss: str
                       ) -> tuple[float, tuple[np.ndarray | None, ...]]:
        outs = self.forward(inputs, train=True)
        value, dout = LOSSES[loss](outs[0], target)
        self.model.zero_grad()
        dins = self.model.backward(dout, *[None] * (len(outs) - 1))
        return value, dins

    def gradients(self, inputs: list[np.ndarray], target: np.ndarray, loss: str
                  ) -> tuple[float, dict[str, np.ndarray], list[np.ndarray | None]]:
        value, dins = self._loss_backward(inputs, target, loss)
        grads = {k: g.copy() for k, g in self.model.grads().items()}
        return value, grads, [d if x.dtype.kind == "f" else None
                              for d, x in zip(dins, inputs, strict=True)]

    def optimizer_step(self, inputs: list[np.ndarray], target: np.ndarray, loss: str,
                       optimizer: Optimizer) -> dict[str, np.ndarray]:
        opt = make_optimizer(optimizer, self.model.parameters())
        self._loss_backward(inputs, target, loss)
        opt.step(self.model.grads())
        return self.state()
