"""What `archdsl verify` asks of the PyTorch build: forward, gradients and optimizer steps on
canonical weights, everything in and out as NumPy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from archdsl.graph import Graph, Optimizer

from .runtime import build, load_state_dict, state_dict
from .training import loss_fn, make_optimizer


class Harness:
    def __init__(self, graph: Graph):
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        self.graph = graph
        self.model = build(graph)

    def load(self, state: dict[str, np.ndarray]) -> None:
        load_state_dict(self.model, state)

    def state(self) -> dict[str, np.ndarray]:
        return state_dict(self.model)

    def _run(self, inputs: list[np.ndarray], train: bool, grad_inputs: bool = False
             ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        self.model.train(train)
        xs = [torch.tensor(x, requires_grad=grad_inputs and x.dtype.kind == "f")
              for x in inputs]
        out = self.model(*xs)
        return list(out) if isinstance(out, tuple) else [out], xs

    def forward(self, inputs: list[np.ndarray], train: bool) -> list[np.ndarray]:
        with torch.no_grad():
            outs, _ = self._run(inputs, train)
        return [o.numpy() for o in outs]

    def gradients(self, inputs: list[np.ndarray], target: np.ndarray, loss: str
                  ) -> tuple[float, dict[str, np.ndarray], list[np.ndarray | None]]:
        self.model.zero_grad(set_to_none=True)
        outs, xs = self._run(inputs, train=True, grad_inputs=True)
        value = loss_fn(loss, outs[0], torch.from_numpy(target))
        value.backward()
        names = {id(p): k for k, p in self.model.named_parameters()}
        grads = {names[id(p)]: (p.grad.numpy().copy() if p.grad is not None
                                else np.zeros(p.shape, np.float32))
                 for p in self.model.parameters()}
        return (float(value.detach()), grads,
                [x.grad.numpy() if x.grad is not None else None for x in xs])

    def optimizer_step(self, inputs: list[np.ndarray], target: np.ndarray, loss: str,
                       optimizer: Optimizer) -> dict[str, np.ndarray]:
        opt = make_optimizer(self.model.parameters(), optimizer.name, optimizer.args)
        outs, _ = self._run(inputs, train=True)
        opt.zero_grad(set_to_none=True)
        loss_fn(loss, outs[0], torch.from_numpy(target)).backward()
        opt.step()
        return self.state()


def describe() -> dict[str, Any]:
    return {"framework": f"torch {torch.__version__}"}
