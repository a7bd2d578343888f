"""The weights an exported model carries: drawn as PyTorch's modules draw them, or given.

Weights are a state dict in PyTorch's keys and layouts (`Graph.parameters()` and buffers);
`initial` draws them with the NumPy build's recipes, order and seed, so a model exported
without weights equals `archdsl.build(spec, "numpy")`; `checked` validates given ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from archdsl.backends.numpy.init import describe, draw
from archdsl.graph import FLOAT_DTYPES, Graph, ParamSpec
from archdsl.weights import WeightsError


def _dtype(p: ParamSpec) -> type:
    return np.float32 if p.dtype in FLOAT_DTYPES else np.int64


def specs(graph: Graph) -> dict[str, ParamSpec]:
    """Every state-dict key of the model (parameters and buffers) -> its spec, in order."""
    return {layer.key(p): p for layer in graph.layers.values() for p in layer.params}


def initial(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {layer.key(p): draw(describe(layer, p), p.shape, rng).astype(_dtype(p))
            for layer in graph.layers.values() for p in layer.params}


def checked(graph: Graph, state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """`state` (NumPy arrays or CPU tensors) as the model's arrays, after checking that it
    holds every key of the model, no other, each with the model's shape."""
    own = specs(graph)
    values = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
              for k, v in state.items()}
    missing = [k for k in own if k not in values]
    unexpected = [k for k in values if k not in own]
    mismatched = [f"{k}: expected {list(p.shape)}, got {list(values[k].shape)}"
                  for k, p in own.items() if k in values and values[k].shape != p.shape]
    problems = [f"{what}: {', '.join(keys)}" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected),
                 ("shape mismatches", mismatched)) if keys]
    if problems:
        raise WeightsError(f"these weights do not fit {graph.name}: " + "; ".join(problems))
    return {k: np.array(values[k], dtype=_dtype(p), order="C") for k, p in own.items()}
