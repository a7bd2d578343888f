"""The syntax tree of a `.arch` file: small immutable nodes, each remembering its span.

A node class lists its fields as annotations, after those of the classes it extends (a field
with a default comes last). It behaves as a frozen dataclass with slots would: a constructor
taking the fields in order or by name, comparison and hashing by field values, a repr, no
assignment after construction, copies and pickles. Creating 29 such dataclasses took 12 ms
of CPU at every start; `_NodeClass` makes the slots, compiles the constructor and leaves the
rest to `Node`, 0.06 ms a class.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any, ClassVar

from archdsl.diagnostics import Loc


class _NodeClass(type):
    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> type:
        own = tuple(f for f in ns.get("__annotations__", ()) if not f.startswith("_"))
        defaults = {f: ns.pop(f) for f in own if f in ns}
        ns["__slots__"] = own
        cls = super().__new__(mcs, name, bases, ns)
        cls._fields = (*getattr(cls, "_fields", ()), *own)
        cls._defaults = {**getattr(cls, "_defaults", {}), **defaults}
        cls.__match_args__ = cls._fields
        cls.__init__ = _constructor(cls._fields, cls._defaults)
        return cls


def _constructor(fields: tuple[str, ...], defaults: dict[str, Any]) -> Any:
    """`__init__(self, <fields>)`, compiled for these fields as a dataclass's would be."""
    params = ", ".join(f"{f}=_defaults[{f!r}]" if f in defaults else f for f in fields)
    body = "".join(f"\n    _set(self, {f!r}, {f})" for f in fields)
    scope = {"_set": object.__setattr__, "_defaults": defaults}
    exec(f"def __init__(self, {params}):{body}", scope)  # noqa: S102 - our own field names
    return scope["__init__"]


class Node(metaclass=_NodeClass):
    loc: Loc

    _fields: ClassVar[tuple[str, ...]]  # every field, the extended classes' first
    _defaults: ClassVar[dict[str, Any]]

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{self.__class__.__qualname__}({fields})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __getstate__(self) -> tuple[Any, ...]:
        return self._values()

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for f, v in zip(self._fields, state, strict=True):
            object.__setattr__(self, f, v)


def children(node: Any) -> Iterator[Node]:
    """The nodes directly under `node`: its node fields and the nodes in its tuple fields."""
    for name in getattr(node, "_fields", ()):
        child = getattr(node, name)
        if isinstance(child, Node):
            yield child
        elif isinstance(child, tuple):
            yield from (c for c in child if isinstance(c, Node))


# ---- expressions ------------------------------------------------------------------------
class Name(Node):
    id: str


class Literal(Node):
    value: int | float | str | bool


class TupleExpr(Node):
    items: tuple[Node, ...]


class ListExpr(Node):
    items: tuple[Node, ...]


class BinOp(Node):
    op: str  # + - * / // % @ ** == != < <= > >= and or
    left: Node
    right: Node
    op_loc: Loc | None = None


class UnaryOp(Node):
    op: str  # - not
    operand: Node


class IfElse(Node):
    cond: Node
    then: Node
    orelse: Node


class Pipeline(Node):
    source: Node
    stage: Node


class Keyword(Node):
    name: str
    value: Node


class Call(Node):
    func: Node
    args: tuple[Node, ...]
    kwargs: tuple[Keyword, ...]


class Slice(Node):
    start: Node | None
    stop: Node | None
    step: Node | None


class Index(Node):
    value: Node
    items: tuple[Node, ...]


class Attribute(Node):
    value: Node
    name: str


# ---- statements -------------------------------------------------------------------------
class TensorTypeExpr(Node):
    dtype: str | None
    dtype_loc: Loc | None
    dims: tuple[Node, ...]


class Input(Node):
    name: str
    type: TensorTypeExpr


class Assign(Node):
    name: str
    type: TensorTypeExpr | None
    value: Node
    name_loc: Loc


class Destructure(Node):
    """`a, b = expr`: one name per part of a multi-output value."""

    names: tuple[str, ...]
    name_locs: tuple[Loc, ...]
    type: TensorTypeExpr | None  # never allowed; kept to refuse it where it is written
    value: Node


class Output(Node):
    name: str
    type: TensorTypeExpr | None
    value: Node
    name_loc: Loc


class AssertShape(Node):
    name: str
    type: TensorTypeExpr
    name_loc: Loc


class AssertCond(Node):
    cond: Node
    message: str


class For(Node):
    var: str
    args: tuple[Node, ...]
    body: tuple[Node, ...]


class Setting(Node):
    name: str
    value: Node


class Train(Node):
    settings: tuple[Setting, ...]


# ---- definitions ------------------------------------------------------------------------
class Param(Node):
    name: str
    type: str
    type_loc: Loc
    default: Node | None


class Definition(Node):
    kind: str  # block | model | gan
    name: str
    name_loc: Loc
    params: tuple[Param, ...]
    body: tuple[Node, ...]
    file: str = ""


class Const(Node):
    name: str
    value: Node
    name_loc: Loc


class Import(Node):
    path: str


@dataclass(slots=True)
class Module:
    """One parsed file."""

    file: str
    items: list[Node] = field(default_factory=list)
