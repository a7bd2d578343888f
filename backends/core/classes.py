"""What the emitter makes of one definition: a class in statements, before any framework.

A `ClassCode` is the spec's definition as a generated class: a signature (the definition's
parameters and the input sizes its layers are built from), and one list of statements in the
spec's order, where `Module` statements make the class's layers and every other statement
computes. A target renders it: PyTorch and NumPy split it into a constructor (modules and the
locals they need, under the same `if`s and loops) and a `forward`; Keras keeps one function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from archdsl import syntax as ast
from archdsl.graph import TensorType

from .pycode import Expr

Stmt = Union["Module", "Line", "Local", "If", "For", "Fail"]


@dataclass
class Module:
    """`attr = make` in the constructor. `attr` is a path relative to the class (`conv1`,
    `fc[i]`). Inside loops the module is appended to the container `fill`; `ensure` lists
    the containers, outermost first, with how to make each one empty where it is missing."""

    attr: str
    make: Expr
    fill: str | None = None
    ensure: tuple[tuple[str, Expr], ...] = ()
    op: str = ""


@dataclass
class Line:
    """`target = code  # comment` in the forward pass (`before` runs first)."""

    target: str
    code: Expr
    comment: str = ""
    before: tuple[str, ...] = ()


@dataclass
class Local:
    """A scalar the spec binds (`out = width * expansion`), for whichever method uses it."""

    name: str
    code: str
    uses: frozenset[str] = frozenset()


@dataclass
class If:
    cond: str
    then: list[Stmt]
    orelse: list[Stmt]
    uses: frozenset[str] = frozenset()  # the names the condition reads
    negated: str = ""  # the condition's negation, for an `if` whose `then` is empty


@dataclass
class For:
    var: str
    iterable: str
    body: list[Stmt]
    uses: frozenset[str] = frozenset()


@dataclass
class Fail:
    """A branch no elaboration could build: generated code raises if it is ever taken."""

    message: str


@dataclass
class Param:
    name: str  # the Python name
    kind: str  # int, float, bool, str
    default: str | None  # Python source, or None when required
    late: str | None = None  # a default computed from earlier parameters (`4 * d_model`)


@dataclass
class ClassCode:
    definition: ast.Definition
    kind: str  # "model" or "block"
    name: str
    params: list[Param]
    sizes: list[str]  # input sizes the constructor takes, before the parameters
    inputs: list[tuple[str, TensorType]]
    outputs: list[tuple[str, TensorType]]
    body: list[Stmt]
    returns: list[str]
    size_reads: dict[str, tuple[int, int]]  # size name -> (input index, axis)
    input_vars: list[str]
    shapes: dict[str, str] = field(default_factory=dict)  # input/output name -> shape text
    runtime: list[str] = field(default_factory=list)  # parameters `forward` takes (symbolic)
    forward_params: set[str] = field(default_factory=set)  # parameters forward reads
    uses: list[ClassCode] = field(default_factory=list)  # classes this one builds
    file: str = ""
    compiled: dict[str, Any] = field(default_factory=dict)  # a model's parameter values
    helpers: set[str] = field(default_factory=set)

    @property
    def input_names(self) -> list[str]:
        return [n for n, _ in self.inputs]

    @property
    def token(self) -> str:
        """Stands for the class's name in code until names are given."""
        return f"\0c:{id(self)}\0"

    def key(self) -> str:
        """What the class does, whatever it is called: two instances of a definition that
        give the same key share one class (the classes it builds are in the body's tokens)."""
        return repr((self.definition.name, self.params, self.sizes, self.body, self.returns))
