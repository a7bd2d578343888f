"""What a target's lowering rules see of one op application (`OpSite`) and what they give
back (`Lowered`, or `Refused` for what the target cannot write).

Names in emitted code are tokens (`\\0p:stride\\0`) until a target renders a method, because a
parameter reads `stride` in a constructor and `self.stride` in `forward`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archdsl.expr import E, Lit, expr_of
from archdsl.graph import Node, TensorType
from archdsl.ops.registry import OpDef

from .pycode import Expr

TOKEN = re.compile("\0([psl]):([^\0]*)\0")


def token(kind: str, name: str) -> str:
    """A name whose spelling depends on the method: `p` parameter, `s` size, `l` local."""
    return f"\0{kind}:{name}\0"


class Refused(Exception):
    """This construct cannot be written for this target; `loc` says where in the spec."""

    def __init__(self, message: str, loc: Any = None, label: str = "") -> None:
        super().__init__(message)
        self.loc, self.label = loc, label


def plain(text: str) -> str:
    """`text` with every token written as its bare name (for comments)."""
    return TOKEN.sub(lambda m: m.group(2), text)


def token_uses(text: str) -> frozenset[str]:
    """The tokens `text` reads, as `kind:name`."""
    return frozenset(f"{k}:{n}" for k, n in TOKEN.findall(text))


@dataclass
class OpSite:
    """What a lowering rule sees of one op application."""

    op: OpDef
    node: Node
    ins: list[TensorType]
    xs: list[Expr]
    given: dict[str, E]
    module: str | None
    text: Callable[[Any], str]  # any value or expression, as code in this class
    temp: Callable[[str], str]
    reusable: bool = False  # the first input may be overwritten (an in-place op)

    @property
    def args(self) -> dict[str, Any]:
        return self.node.args

    @property
    def x(self) -> Expr:
        return self.xs[0]

    def arg(self, name: str) -> str:
        """An argument as code: as the spec wrote it, else its resolved value."""
        if name in self.given:
            return self.text(self.given[name])
        return self.text(self.args[name])

    def fixed(self, name: str) -> bool:
        """Whether the argument is the same for every instance of the class (a literal)."""
        if name in self.given:
            return isinstance(self.given[name], Lit)
        return isinstance(expr_of(self.args[name]), Lit)

    def dim(self, d: Any) -> str:
        return self.text(d)

    def keyword(self, name: str, default: Any, keyword: str | None = None) -> list[str]:
        """`[keyword=value]` when the spec gives the argument a value other than `default`
        (a literal equal to it, of its type, counts as not given), else `[]`."""
        given = self.given.get(name)
        if given is None or (isinstance(given, Lit) and given.value == default and
                             type(given.value) is type(default)):
            return []
        return [f"{keyword or name}={self.text(given)}"]

    def ints(self, name: str) -> str:
        """A size argument as written (`3`, `(3, 5)`), or its resolved value, compacted to
        one number when every dimension has it."""
        if name in self.given:
            return self.text(self.given[name])
        v = self.args[name]
        if isinstance(v, list) and len(set(map(int, v))) == 1:
            return self.text(v[0])
        return self.text(tuple(v) if isinstance(v, list) else v)


@dataclass
class Lowered:
    """`target.format(out) = code`, after the statements in `before`."""

    code: Expr
    target: str = "{}"
    before: tuple[str, ...] = ()
