"""Python expressions as small trees, laid out the way `ruff format` lays them out.

The generator builds calls, lists and comprehensions as `Call`, `Seq` and `Comp` (leaves are
plain strings) and `layout` breaks them into lines: on one line if it fits, else the brackets'
contents on one indented line, else one item per line with a trailing comma. That is the
formatter's right-hand split, so generated files are already formatted (88 columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 88
INDENT = "    "


@dataclass(frozen=True)
class Call:
    """`func(args...)`; an argument may be `"name=value"` or a nested expression."""

    func: str
    args: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class Seq:
    """A bracketed list: `[a, b]`, `(a, b)`; `prefix` is text before the bracket (`*`)."""

    items: tuple[Expr, ...]
    open: str = "["
    close: str = "]"
    prefix: str = ""


@dataclass(frozen=True)
class Comp:
    """`[element for _ in range(n)]`, optionally starred."""

    element: Expr
    clause: str
    prefix: str = ""


Expr = str | Call | Seq | Comp


def call(func: str, *args: Expr) -> Call:
    return Call(func, tuple(args))


def flat(e: Expr) -> str:
    """The expression on one line."""
    if isinstance(e, str):
        return e
    if isinstance(e, Call):
        return f"{e.func}({', '.join(flat(a) for a in e.args)})"
    if isinstance(e, Seq):
        inner = ", ".join(flat(a) for a in e.items)
        if e.open == "(" and len(e.items) == 1:
            inner += ","
        return f"{e.prefix}{e.open}{inner}{e.close}"
    return f"{e.prefix}[{flat(e.element)} {e.clause}]"


def layout(head: str, e: Expr, tail: str = "", indent: int = 0) -> list[str]:
    """Lines for `head + e + tail` at `indent` levels, split like the formatter splits them."""
    pad = INDENT * indent
    line = f"{pad}{head}{flat(e)}{tail}"
    if len(line) <= WIDTH or isinstance(e, str):
        return [line]
    opener, closer, items = _parts(e)
    first, last = f"{pad}{head}{opener}", f"{pad}{closer}{tail}"
    if isinstance(e, Comp):
        hugged = f"{pad}{INDENT}{flat(e.element)} {e.clause}"
        if len(hugged) <= WIDTH:
            return [first, hugged, last]
        return [first, *layout("", e.element, "", indent + 1), f"{pad}{INDENT}{e.clause}", last]
    hugged = f"{pad}{INDENT}{', '.join(flat(a) for a in items)}"
    if len(hugged) <= WIDTH:
        return [first, hugged, last]
    if len(items) == 1:
        return [first, *layout("", items[0], "", indent + 1), last]
    body = [ln for a in items for ln in layout("", a, ",", indent + 1)]
    return [first, *body, last]


def _parts(e: Call | Seq | Comp) -> tuple[str, str, Sequence[Expr]]:
    if isinstance(e, Call):
        return f"{e.func}(", ")", e.args
    if isinstance(e, Seq):
        return f"{e.prefix}{e.open}", e.close, e.items
    return f"{e.prefix}[", "]", ()


def statement(code: Expr, target: str = "", comment: str = "", indent: int = 0) -> list[str]:
    """`target = code  # comment`; the comment moves above the line when it would not fit."""
    head = f"{target} = " if target else ""
    if comment:
        lines = layout(head, code, f"  # {comment}", indent)
        if len(lines) == 1:
            return lines
        return [f"{INDENT * indent}# {comment}", *layout(head, code, "", indent)]
    return layout(head, code, "", indent)
