"""The random batch every backend benchmark feeds a spec's graph (import after `options`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from archdsl.verify import make_inputs


def sizes(graph: Any, bind: dict[str, int]) -> dict[str, int]:
    """The sizes of `bind` that name one of the graph's symbolic dimensions."""
    return {k: v for k, v in bind.items() if k in graph.symbols}


def random_inputs(graph: Any, bind: dict[str, int], rng: np.random.Generator
                  ) -> list[np.ndarray]:
    """One array per input: float32 normals, or token ids every Embedding can take."""
    return [x.astype(np.float32) if x.dtype.kind == "f" else x
            for x in make_inputs(graph, bind, rng)]


def describe(bind: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in bind.items())
