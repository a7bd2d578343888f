"""The NumPy backend: archdsl's reference semantics, trainable with no framework underneath.

    from archdsl.backends import numpy as nb
    model = nb.build(graph)                       # float32; dtype=np.float64 for reference runs
    y = model(x); model.backward(dy)              # grads() keyed like PyTorch's state dict
    nb.load_state_dict(model, torch_model.state_dict())

Kernels (one file per op family, forward beside backward) are in `kernels/`; `module.py`
holds what every model shares, `runtime.py` interprets a graph, `generator.py` writes the same
model as a readable module; optimisers and losses are in `optim.py`; `training.py` and `gan.py`
are the trainers behind `archdsl train --backend numpy`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from archdsl.graph import GanGraph, Graph

from .. import Backend
from .generator import generate
from .kernels import KERNELS
from .module import Module
from .optim import LOSSES, OPTIMIZERS, SGD, Adam, AdamW, make_optimizer
from .runtime import Model

BACKEND = Backend("numpy", __name__, generate,
                  lambda model: getattr(model, "archdsl_backend", None) == "numpy", runtime="")


class Gan(NamedTuple):
    generator: Model
    discriminator: Model


def build(graph: Graph | GanGraph, dtype: Any = np.float32, seed: int = 0) -> Model | Gan:
    """A runnable model for a `model` graph; for a `gan`, its generator and discriminator."""
    if isinstance(graph, GanGraph):
        return Gan(Model(graph.generator, dtype, seed), Model(graph.discriminator, dtype, seed + 1))
    return Model(graph, dtype, seed)


def state_dict(model: Module) -> dict[str, np.ndarray]:
    """A copy of every parameter and buffer, keyed, ordered and laid out as PyTorch's."""
    live = {**model.parameters(), **model.buffers()}
    return {k: live[k].copy() for k in model.PARAMETERS}


def load_state_dict(model: Module, state: dict[str, Any]) -> None:
    """Copy `state` (NumPy arrays or CPU torch tensors) into the model, checking every key."""
    live = {**model.parameters(), **model.buffers()}
    values = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
              for k, v in state.items()}
    missing = [k for k in live if k not in values]
    unexpected = [k for k in values if k not in live]
    mismatched = [f"{k}: expected {list(live[k].shape)}, got {list(values[k].shape)}"
                  for k in live if k in values and values[k].shape != live[k].shape]
    problems = [f"{what}: {', '.join(keys)}" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected),
                 ("shape mismatches", mismatched)) if keys]
    if problems:
        raise ValueError(f"cannot load the state into {model.NAME}: " + "; ".join(problems))
    for k, v in values.items():
        live[k][...] = v


__all__ = ["BACKEND", "KERNELS", "LOSSES", "OPTIMIZERS", "SGD", "Adam", "AdamW", "Gan", "Model",
           "Module", "build", "generate", "load_state_dict", "make_optimizer", "state_dict"]
