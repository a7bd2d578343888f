"""Specs, graphs and example inputs shared by the PyTorch backend's tests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.graph import GanGraph, Graph
from archdsl.symbolic import evaluate

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SPECS = sorted((ROOT / "specs").glob("*.arch")) + sorted((HERE / "specs").glob("*.arch"))

# Above this many parameters a spec's end-to-end checks are marked slow.
LARGE = 20_000_000


# Smaller values of a large spec's parameters, so that a quick run still trains its
# architecture; the full size runs with the slow tests.
SMALL = {
    "gpt2_small": {"vocab": 97, "context": 16, "d": 32, "heads": 4, "layers": 2},
}


@dataclass(frozen=True)
class Case:
    """One model of one spec: a gan gives two (its generator and its discriminator)."""

    spec: Path
    model: str
    params: tuple[tuple[str, int], ...] = ()

    @property
    def id(self) -> str:
        small = "(small)" if self.params else ""
        return f"{self.spec.stem}:{self.model}{small}"


@cache
def spec_graph(spec: Path, params: tuple[tuple[str, int], ...] = ()) -> Graph | GanGraph:
    """The graph code is generated from: elaborated with its records (`trace=True`)."""
    return archdsl.load(spec).graph(params=dict(params) or None, trace=True)


def case_graph(case: Case) -> Graph:
    g = spec_graph(case.spec, case.params)
    if isinstance(g, GanGraph):
        return g.generator if g.generator.name == case.model else g.discriminator
    return g


def _cases() -> list[Case]:
    out = []
    for spec in SPECS:
        g = spec_graph(spec)
        models = [g.generator, g.discriminator] if isinstance(g, GanGraph) else [g]
        out += [Case(spec, m.name) for m in models]
    return out


CASES = _cases()


def case_params(*, slow_if_large: bool = False, small: bool = False) -> list:
    """`CASES` as pytest parameters. With `slow_if_large` large models are marked slow; with
    `small` the specs in `SMALL` also come scaled down."""
    out = []
    for case in CASES:
        n = sum(math.prod(p.shape) for p in case_graph(case).parameters().values())
        marks = [pytest.mark.slow] if slow_if_large and n > LARGE else []
        out.append(pytest.param(case, id=case.id, marks=marks))
        if small and case.spec.stem in SMALL:
            scaled = Case(case.spec, case.model, tuple(SMALL[case.spec.stem].items()))
            out.append(pytest.param(scaled, id=scaled.id))
    return out


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
