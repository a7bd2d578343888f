"""The values the emitter's walk passes around: tensors as code, scalars as expressions,
layers configured or only named, and the loops it is inside."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archdsl import syntax as ast
from archdsl.expr import E
from archdsl.graph import TensorType
from archdsl.ops.registry import OpDef

from .pycode import Expr


@dataclass
class Tensor:
    code: Expr
    type: TensorType
    temp: bool = False  # an intermediate nothing else reads: an in-place op may reuse it
    op: str = ""
    learned: bool = False  # a parameter read from a module (`self.gain`): no variable needed


@dataclass
class Scalar:
    e: E


@dataclass
class LayerRef:
    """A layer configured at `site` (not yet applied): an op or a block, with the arguments
    as the spec wrote them, or a repeat (`L * n`)."""

    name: str
    op: OpDef | None
    definition: ast.Definition | None
    given: dict[str, E]
    site: ast.Node
    count: E | None = None  # `L * n`
    bound: str | None = None
    keywords: frozenset[str] = frozenset()  # the arguments given by name
    depth: int | None = None  # the loops around its binding, for a bound layer


@dataclass
class LayerName:
    """A layer or block named but not configured (`ReLU`, `Conv2d`)."""

    name: str
    op: OpDef | None
    definition: ast.Definition | None


@dataclass
class Function:
    op: OpDef


@dataclass
class Parts:
    items: list[Any]


@dataclass
class Loop:
    var: str
    python: bool  # a Python loop (the body written once) or unrolled
    value: int  # the loop variable's value in this iteration (records are kept by it)
    index: int  # the iteration, from 0 (layer paths number by it)
