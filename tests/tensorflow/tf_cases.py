"""The specs every TensorFlow test runs over, with the sizes that keep them fast.

Each case is data: the spec, the parameters it is compiled with in tests (tests/spec_sizes.py),
the sizes bound to its symbols, and whether it is slow enough to mark `slow`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from contract import EXAMPLES as CONTRACT_EXAMPLES
from spec_sizes import SLOW, small

import archdsl
from archdsl.graph import GanGraph, Graph
from archdsl.symbolic import evaluate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = CONTRACT_EXAMPLES


@dataclass(frozen=True, eq=False)  # hashed by identity, for the cache
class Spec:
    path: Path
    params: dict[str, Any] = field(default_factory=dict)
    slow: bool = False

    @property
    def id(self) -> str:
        return f"{self.path.parent.name}/{self.path.stem}"


def _specs() -> list[Spec]:
    """specs/, the shared examples whose text differs from their port there, our op tables."""
    ported = {p.read_bytes() for p in (ROOT / "specs").glob("*.arch")}
    paths = [*sorted((ROOT / "specs").glob("*.arch")),
             *(p for p in sorted(EXAMPLES.glob("*.arch")) if p.read_bytes() not in ported),
             *sorted((ROOT / "tests" / "tensorflow" / "specs").glob("*.arch")),
             ROOT / "tests" / "torch" / "specs" / "calls.arch"]  # block calls, every backend
    return [Spec(p, small(p), p.stem in SLOW["tensorflow"]) for p in paths]


SPECS = _specs()
SIZES = {"B": 4, "T": 5, "S": 6}  # every other symbol: 3


@cache
def graph(spec: Spec) -> Graph | GanGraph:
    return archdsl.load(spec.path).graph(params=spec.params)


def models(g: Graph | GanGraph) -> list[Graph]:
    return [g.generator, g.discriminator] if isinstance(g, GanGraph) else [g]


def bindings(g: Graph) -> dict[str, int]:
    return {s: SIZES.get(s, 3) for s in g.symbols}


def shape(g: Graph, node: int) -> tuple[int, ...]:
    values = bindings(g)
    return tuple(evaluate(d, values) for d in g.node(node).type.shape)


def inputs(g: Graph, seed: int = 0) -> list[np.ndarray]:
    """Random inputs: normal floats, token ids below every embedding's size."""
    rng = np.random.default_rng(seed)
    vocab = min((layer.args["num"] for layer in g.layers.values() if layer.op == "Embedding"),
                default=2)
    out = []
    for i in g.inputs:
        t = g.node(i).type
        if t.dtype in ("i32", "i64"):
            out.append(rng.integers(0, vocab, shape(g, i)).astype(t.dtype.replace("i", "int")))
        else:
            out.append(rng.standard_normal(shape(g, i)).astype("float32"))
    return out
