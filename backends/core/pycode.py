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
    """`func(args...)`; an argument may be `"name=value"` or a nested expression. `func` may
    itself be a call: `layers.Dense(4)(x)`."""

    func: str | Call
    args: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class Seq:
    """A bracketed list: `[a, b]`, `(a, b)`; `prefix` is text before the bracket (`*`)."""

    items: tuple[Expr, ...]
    open: str = "["
    close: str = "]"
    prefix: str = ""


@dataclass(frozen=True)
class Index:
    """`value[index]`: a subscript of an expression (`conv(x)[:, ::2]`)."""

    value: Expr
    index: str


@dataclass(frozen=True)
class Comp:
    """`[element for _ in range(n)]`, optionally starred."""

    element: Expr
    clause: str
    prefix: str = ""


@dataclass(frozen=True)
class Chain:
    """Operands joined by operators of one precedence: `a + b - c`. Too long for a line, it
    is bracketed with one operand per line, each after its operator, as the formatter does."""

    operands: tuple[Expr, ...]
    ops: tuple[str, ...]
    level: int


Expr = str | Call | Seq | Comp | Chain | Index

# Python's binding strength of the binary operators tensor code uses.
LEVEL = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2, "@": 2, "**": 4}
_UNARY = 3


def call(func: str, *args: Expr) -> Call:
    return Call(func, tuple(args))


def binop(op: str, left: Expr, right: Expr) -> Chain:
    """`left op right` with the brackets Python needs and no more."""
    level = LEVEL[op]
    if isinstance(left, Chain) and left.level == level and op != "**":
        operands, ops = left.operands, left.ops
    else:
        operands, ops = (_bracket(left, level, op == "**"),), ()
    right = _bracket(right, level, op != "**")
    return Chain((*operands, right), (*ops, op), level)


def unary(op: str, operand: Expr) -> str:
    return f"{op}{flat(_bracket(operand, _UNARY, False))}"


def _bracket(e: Expr, level: int, strict: bool) -> Expr:
    """`e` as an operand at `level`: bracketed if it binds more loosely (or as loosely, on
    the side where evaluation order would change)."""
    inner = level_of(e)
    if inner < level or (strict and inner == level):
        return Seq((e,), "(", ")") if not isinstance(e, Seq) else e
    return e


def level_of(e: Expr) -> int:
    if isinstance(e, Chain):
        return e.level
    if isinstance(e, str):
        text = e.strip()
        depth = 0
        for i, ch in enumerate(text):
            depth += 1 if ch in "([{" else -1 if ch in ")]}" else 0
            if depth == 0 and ch == " " and i + 1 < len(text):
                word = text[i + 1:].split(" ", 1)[0]
                if word in LEVEL:
                    return min(LEVEL[word], 10)
                return 0  # `if`, `and`, a comparison: looser than arithmetic
        if text.startswith("-"):
            return _UNARY
    return 10


def flat(e: Expr) -> str:
    """The expression on one line."""
    if isinstance(e, str):
        return e
    if isinstance(e, Call):
        return f"{flat(e.func)}({', '.join(flat(a) for a in e.args)})"
    if isinstance(e, Seq):
        inner = ", ".join(flat(a) for a in e.items)
        if e.open == "(" and len(e.items) == 1 and not _grouping(e):
            inner += ","
        return f"{e.prefix}{e.open}{inner}{e.close}"
    if isinstance(e, Index):
        value = flat(e.value)
        return f"{value if level_of(e.value) >= 10 else f'({value})'}[{e.index}]"
    if isinstance(e, Chain):
        text = flat(e.operands[0])
        for op, operand in zip(e.ops, e.operands[1:], strict=True):
            glue = op if op == "**" and _simple(operand) and _simple(e.operands[0]) else \
                f" {op} "
            text += f"{glue}{flat(operand)}"
        return text
    return f"{e.prefix}[{flat(e.element)} {e.clause}]"


def _grouping(e: Seq) -> bool:
    """A bracketed operand `(a + b)`, not a one-element tuple."""
    return e.open == "(" and len(e.items) == 1 and not e.prefix and \
        isinstance(e.items[0], (Chain, str)) and level_of(e.items[0]) < 10


def _simple(e: Expr) -> bool:
    return isinstance(e, str) and e.replace(".", "").replace("_", "").isalnum()


def layout(head: str, e: Expr, tail: str = "", indent: int = 0) -> list[str]:
    """Lines for `head + e + tail` at `indent` levels, split like the formatter splits them."""
    pad = INDENT * indent
    line = f"{pad}{head}{flat(e)}{tail}"
    if len(line) <= WIDTH or isinstance(e, str):
        return [line]
    if isinstance(e, Index) and level_of(e.value) >= 10:
        return layout(head, e.value, f"[{e.index}]{tail}", indent)
    if isinstance(e, Call) and isinstance(e.func, Call):
        # `f(a)(b)`: split the last brackets if what precedes them fits on the first line;
        # else split f's, `(b)` trailing (the formatter's right-hand split omitting trailers)
        if len(f"{pad}{head}{flat(e.func)}(") <= WIDTH:
            return layout(head, Call(flat(e.func), e.args), tail, indent)
        return layout(head, e.func, f"({', '.join(flat(a) for a in e.args)}){tail}", indent)
    if isinstance(e, Chain):
        last = e.operands[-1]
        if len(e.ops) == 1 and isinstance(last, Call):
            # `a + f(b)`: one operator and a call last: the formatter splits the call's
            # brackets, keeping the operator on the first line, when that line fits
            lines = layout(f"{head}{flat(e.operands[0])} {e.ops[0]} ", last, tail, indent)
            if len(lines[0]) <= WIDTH:
                return lines
        if len(e.ops) == 1 and isinstance(e.operands[0], Call):
            # `f(a) * g(b)` whose last call cannot split: the first call's brackets split,
            # the operator and the rest on the closing line, when every line fits
            lines = layout(head, e.operands[0], f" {e.ops[0]} {flat(last)}{tail}", indent)
            if all(len(line) <= WIDTH for line in lines):
                return lines
        inner = f"{pad}{INDENT}{flat(e)}"
        if len(inner) <= WIDTH:
            return [f"{pad}{head}(", inner, f"{pad}){tail}"]
        body = [*layout("", e.operands[0], "", indent + 1)]
        for op, operand in zip(e.ops, e.operands[1:], strict=True):
            body += layout(f"{op} ", operand, "", indent + 1)
        return [f"{pad}{head}(", *body, f"{pad}){tail}"]
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


def _parts(e: Call | Seq | Comp | Chain) -> tuple[str, str, Sequence[Expr]]:
    if isinstance(e, Call):
        return f"{flat(e.func)}(", ")", e.args
    if isinstance(e, Seq):
        return f"{e.prefix}{e.open}", e.close, e.items
    return f"{e.prefix}[", "]", ()


def statement(code: Expr, target: str = "", comment: str = "", indent: int = 0) -> list[str]:
    """`target = code  # comment`; the comment moves above the line when it would not fit,
    on as many lines as it needs."""
    head = f"{target} = " if target else ""
    if comment:
        lines = layout(head, code, f"  # {comment}", indent)
        if len(lines) == 1:
            return lines
        return [*comment_lines(comment, indent), *layout(head, code, "", indent)]
    return layout(head, code, "", indent)


def comment_lines(comment: str, indent: int) -> list[str]:
    """`# comment` within the width, broken after commas (a shape's dimensions)."""
    pad = f"{INDENT * indent}# "
    lines: list[str] = []
    current = ""
    for part in comment.split(", "):
        joined = f"{current}, {part}" if current else part
        if current and len(pad) + len(joined) + 1 > WIDTH:
            lines.append(f"{pad}{current},")
            current = part
        else:
            current = joined
    return [*lines, f"{pad}{current}"]
