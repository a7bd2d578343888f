"""Build a model from its generated source, and move its weights in and out.

`build` executes exactly the text `generate` returns, so what a user reads is what runs.
"""

from __future__ import annotations

import linecache
import types
from typing import Any, NamedTuple

import numpy as np

from archdsl.graph import GanGraph, Graph

from . import nn
from .generator import render


class Gan(NamedTuple):
    generator: nn.Module
    discriminator: nn.Module


def load_module(graph: Graph | GanGraph) -> tuple[types.ModuleType, list[str]]:
    """The generated module, executed, and the names of the classes to instantiate."""
    source, roots = render(graph)
    module = types.ModuleType(f"archdsl_generated.{graph.name}")
    filename = f"<archdsl numpy {graph.name}>"
    # Tracebacks and debuggers show the generated lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    return module, roots


def build(graph: Graph | GanGraph, dtype: Any = np.float32, seed: int = 0) -> nn.Module | Gan:
    """A runnable model (float32, or `dtype`) whose parameters are drawn as PyTorch draws
    them from a generator seeded with `seed`; for a gan, its generator and discriminator (the
    discriminator from `seed + 1`)."""
    module, roots = load_module(graph)
    models = []
    for k, name in enumerate(roots):
        with nn.building(dtype, seed + k):
            models.append(getattr(module, name)())
    return Gan(*models) if isinstance(graph, GanGraph) else models[0]


def state_dict(model: nn.Module) -> dict[str, np.ndarray]:
    """A copy of every parameter and buffer, keyed, ordered and laid out as PyTorch's."""
    return {k: v.copy() for k, v in model.state_dict().items()}


def load_state_dict(model: nn.Module, state: dict[str, Any]) -> None:
    """Copy `state` (NumPy arrays or CPU torch tensors) into the model, checking every key."""
    live = model.state_dict()
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
        raise ValueError(f"cannot load the state into {type(model).__name__}: "
                         + "; ".join(problems))
    for k, v in values.items():
        live[k][...] = v
