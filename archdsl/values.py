"""What an expression evaluates to while a definition is elaborated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archdsl import syntax as ast
from archdsl.diagnostics import Loc
from archdsl.graph import TensorType

if TYPE_CHECKING:
    from archdsl.ops.registry import OpDef


@dataclass(frozen=True, slots=True)
class Tensor:
    node: int
    type: TensorType
    kind_name = "tensor"


@dataclass(frozen=True, slots=True)
class LayerClass:
    """A layer not yet configured: `ReLU`, `Conv2d`, a block or a model by name."""

    name: str
    op: OpDef | None = None
    definition: ast.Definition | None = None
    kind_name = "layer"


@dataclass(eq=False, slots=True)
class LayerValue:
    """A configured layer. Bound to a name it is one instance: applied twice, it shares its
    parameters. `repeat` > 1 stands for `L * n`, n fresh copies chained."""

    cls: LayerClass
    args: dict[str, Any]
    loc: Loc
    site: int  # identity of the expression that created it, for stable anonymous names
    repeat: int = 1
    repeated: bool = False  # written `L * n`: copies are numbered even when n is 1
    bound: str | None = None
    bound_suffix: str = ""
    path: str | None = None  # set at first application
    applied: list[Any] = field(default_factory=list)  # per-copy first-application records
    kind_name = "layer"


@dataclass(frozen=True, slots=True)
class Function:
    op: OpDef
    kind_name = "function"


@dataclass(frozen=True, slots=True)
class ScalarFunction:
    name: str  # min | max
    kind_name = "function"


@dataclass(frozen=True, slots=True)
class OptimizerClass:
    name: str
    kind_name = "optimizer"


@dataclass(frozen=True, slots=True)
class OptimizerValue:
    name: str
    args: dict[str, Any]
    kind_name = "optimizer"


@dataclass(frozen=True, slots=True)
class ScheduleClass:
    name: str
    kind_name = "schedule"


@dataclass(frozen=True, slots=True)
class ParamRef:
    """`layer.out_proj` on the way to `layer.out_proj.weight`."""

    layer: LayerValue
    prefix: str
    kind_name = "parameter path"


class Poison:
    """Stands for a name whose statement failed; reading it skips silently (no cascade)."""

    kind_name = "error"


POISON = Poison()


class Skip(Exception):
    """Abandon the current statement without a new diagnostic (one was already reported)."""


def a_kind(v: Any) -> str:
    """`an int`, `a tensor`: the kind of a value with its article, for messages."""
    return with_article(kind_of(v))


def with_article(word: str) -> str:
    """`an int`, `a float`."""
    return ("an " if word[:1] in "aeiou" else "a ") + word


def kind_of(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, (tuple, list)):
        return "tuple"
    return getattr(v, "kind_name", "int")
