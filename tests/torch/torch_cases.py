"""Specs, graphs and example inputs shared by the PyTorch backend's tests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import torch
from spec_sizes import small

import archdsl
from archdsl.graph import GanGraph, Graph
from archdsl.symbolic import evaluate

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SPECS = sorted((ROOT / "specs").glob("*.arch")) + sorted((HERE / "specs").glob("*.arch"))


@dataclass(frozen=True)
class Case:
    """One model of one spec: a gan gives two (its generator and its discriminator)."""

    spec: Path
    model: str
    params: tuple[tuple[str, int], ...] = ()
    full_size: bool = False

    @property
    def id(self) -> str:
        return f"{self.spec.stem}:{self.model}{'(full size)' if self.full_size else ''}"


@cache
def spec_graph(spec: Path, params: tuple[tuple[str, int], ...] = ()) -> Graph | GanGraph:
    """The graph code is generated from: elaborated with its records (`trace=True`)."""
    return archdsl.load(spec).graph(params=dict(params) or None, trace=True)


def case_graph(case: Case) -> Graph:
    g = spec_graph(case.spec, case.params)
    if isinstance(g, GanGraph):
        return g.generator if g.generator.name == case.model else g.discriminator
    return g


def _cases(full_size: bool) -> list[Case]:
    out = []
    for spec in SPECS:
        params = () if full_size else tuple(small(spec).items())
        g = spec_graph(spec, params)
        models = [g.generator, g.discriminator] if isinstance(g, GanGraph) else [g]
        out += [Case(spec, m.name, params, full_size) for m in models]
    return out


# Every model at the small sizes of tests/spec_sizes.py; at the spec's own sizes, only for
# tests on the meta device, which allocates nothing.
CASES = _cases(full_size=False)
FULL_SIZE_CASES = _cases(full_size=True)


def case_params(*, full_size: bool = False) -> list:
    """`CASES` (or `FULL_SIZE_CASES`) as pytest parameters."""
    return [pytest.param(c, id=c.id) for c in (FULL_SIZE_CASES if full_size else CASES)]


def find(model: str) -> Case:
    return next(c for c in CASES if c.model == model)


def bindings(g: Graph) -> dict[str, int]:
    """Small, distinct sizes for the symbolic dimensions: B = 2, then 5, 6, 7, ..."""
    return {s: 2 if s == "B" else 5 + k for k, s in enumerate(g.symbols)}


def example_inputs(g: Graph, seed: int = 0) -> list[torch.Tensor]:
    """Random inputs of the declared types; integer inputs are valid ids for every Embedding
    that reads them."""
    gen = torch.Generator().manual_seed(seed)
    values = bindings(g)
    out = []
    for i in g.inputs:
        t = g.nodes[i].type
        shape = [evaluate(d, values) for d in t.shape]
        if t.dtype in ("i32", "i64"):
            high = min((g.layers[n.layer].args["num"] for n in g.nodes
                        if n.op == "Embedding" and n.inputs == [i] and n.layer), default=10)
            x = torch.randint(0, high, shape, generator=gen)
            out.append(x.to(torch.int32 if t.dtype == "i32" else torch.int64))
        else:
            out.append(torch.randn(shape, generator=gen))
    return out


def submodel(model: torch.nn.Module, case: Case) -> torch.nn.Module:
    """The module computing `case.model` inside what `build` returned for its spec."""
    g = spec_graph(case.spec, case.params)
    if isinstance(g, GanGraph):
        return model.generator if g.generator.name == case.model else model.discriminator
    return model
