"""The syntax tree of a `.arch` file: small frozen dataclasses, each remembering its span."""

from __future__ import annotations

from dataclasses import dataclass, field

from archdsl.diagnostics import Loc


@dataclass(frozen=True, slots=True)
class Node:
    loc: Loc


# ---- expressions ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Name(Node):
    id: str


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: int | float | str | bool


@dataclass(frozen=True, slots=True)
class TupleExpr(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class ListExpr(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class BinOp(Node):
    op: str  # + - * / // % @ ** == != < <= > >= and or
    left: Node
    right: Node
    op_loc: Loc | None = None


@dataclass(frozen=True, slots=True)
class UnaryOp(Node):
    op: str  # - not
    operand: Node


@dataclass(frozen=True, slots=True)
class IfElse(Node):
    cond: Node
    then: Node
    orelse: Node


@dataclass(frozen=True, slots=True)
class Pipeline(Node):
    source: Node
    stage: Node


@dataclass(frozen=True, slots=True)
class Keyword(Node):
    name: str
    value: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    func: Node
    args: tuple[Node, ...]
    kwargs: tuple[Keyword, ...]


@dataclass(frozen=True, slots=True)
class Slice(Node):
    start: Node | None
    stop: Node | None
    step: Node | None


@dataclass(frozen=True, slots=True)
class Index(Node):
    value: Node
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Attribute(Node):
    value: Node
    name: str


# ---- statements -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TensorTypeExpr(Node):
    dtype: str | None
    dtype_loc: Loc | None
    dims: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Input(Node):
    name: str
    type: TensorTypeExpr


@dataclass(frozen=True, slots=True)
class Assign(Node):
    name: str
    type: TensorTypeExpr | None
    value: Node
    name_loc: Loc


@dataclass(frozen=True, slots=True)
class Destructure(Node):
    """`a, b = expr`: one name per part of a multi-output value."""

    names: tuple[str, ...]
    name_locs: tuple[Loc, ...]
    type: TensorTypeExpr | None  # never allowed; kept to refuse it where it is written
    value: Node


@dataclass(frozen=True, slots=True)
class Output(Node):
    name: str
    type: TensorTypeExpr | None
    value: Node
    name_loc: Loc


@dataclass(frozen=True, slots=True)
class AssertShape(Node):
    name: str
    type: TensorTypeExpr
    name_loc: Loc


@dataclass(frozen=True, slots=True)
class AssertCond(Node):
    cond: Node
    message: str


@dataclass(frozen=True, slots=True)
class For(Node):
    var: str
    args: tuple[Node, ...]
    body: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Setting(Node):
    name: str
    value: Node


@dataclass(frozen=True, slots=True)
class Train(Node):
    settings: tuple[Setting, ...]


# ---- definitions ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Param(Node):
    name: str
    type: str
    type_loc: Loc
    default: Node | None


@dataclass(frozen=True, slots=True)
class Definition(Node):
    kind: str  # block | model | gan
    name: str
    name_loc: Loc
    params: tuple[Param, ...]
    body: tuple[Node, ...]
    file: str = ""


@dataclass(frozen=True, slots=True)
class Const(Node):
    name: str
    value: Node
    name_loc: Loc


@dataclass(frozen=True, slots=True)
class Import(Node):
    path: str


@dataclass(slots=True)
class Module:
    """One parsed file."""

    file: str
    items: list[Node] = field(default_factory=list)
