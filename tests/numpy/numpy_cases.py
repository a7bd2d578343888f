"""The specs every model-level test runs: each spec of specs/ (and the shared examples) at a
small size, and random inputs for them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from contract import EXAMPLES as CONTRACT_EXAMPLES
from spec_sizes import SLOW, small

import archdsl
from archdsl.graph import Graph

ROOT = Path(__file__).resolve().parents[2]
SHARED = CONTRACT_EXAMPLES
BATCH, LENGTH = 3, 6  # sizes given to the symbols B and any other symbol (T, S)


def spec_files() -> list[Path]:
    files = {p.name: p for p in sorted(SHARED.glob("*.arch"))} if SHARED.is_dir() else {}
    files.update({p.name: p for p in sorted((ROOT / "specs").glob("*.arch"))})
    files["calls.arch"] = ROOT / "tests" / "torch" / "specs" / "calls.arch"  # block calls
    return sorted(files.values())


def graphs() -> list:
    """Every model of every spec as a pytest param; a gan gives its generator and discriminator."""
    out = []
    for path in spec_files():
        g = archdsl.load(path).graph(params=small(path))
        marks = [pytest.mark.slow] if path.stem in SLOW["numpy"] else []
        parts = [("", g)] if isinstance(g, Graph) else [("-generator", g.generator),
                                                         ("-discriminator", g.discriminator)]
        out += [pytest.param(graph, id=path.stem + part, marks=marks) for part, graph in parts]
    return out


GRAPHS = graphs()


def inputs(g: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    """Random inputs; token ids stay below the smallest Embedding that reads them."""
    xs = []
    for i in g.inputs:
        node = g.node(i)
        shape = [d if isinstance(d, int) else (BATCH if str(d) == "B" else LENGTH)
                 for d in node.type.shape]
        if node.type.dtype in ("i32", "i64"):
            high = min((n.args["num"] for n in g.nodes if n.op == "Embedding" and i in n.inputs),
                       default=2)
            xs.append(rng.integers(0, high, shape))
        else:
            xs.append(rng.standard_normal(shape))
    return xs
