"""The real cause of a syntax error that a bracket left open: the parser gives up lines later
(at the next statement, or at the end of the file), so the error points at the opening bracket
instead, with the place the parser gave up as a note. A closing bracket of the wrong kind is
reported where it is, with the bracket it should have closed as a note."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from archdsl.diagnostics import Loc, Note, Problem

CLOSER = {"(": ")", "[": "]", "{": "}"}
OPENER = {v: k for k, v in CLOSER.items()}
TERMINAL = {")": "RPAR", "]": "RSQB", "}": "RBRACE"}


@dataclass(frozen=True)
class Bracket:
    char: str
    offset: int


def brackets(text: str) -> Iterator[Bracket]:
    """Every bracket outside strings and comments, in order."""
    in_string = in_comment = False
    escaped = False
    for i, ch in enumerate(text):
        if in_comment:
            in_comment = ch != "\n"
        elif in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch in '"\n':
                in_string = False
        elif ch == "#":
            in_comment = True
        elif ch == '"':
            in_string = True
        elif ch in CLOSER or ch in OPENER:
            yield Bracket(ch, i)


def _indent(text: str, offset: int) -> tuple[int, bool]:
    """The indentation of the line holding `offset`, and whether only spaces precede it."""
    start = text.rfind("\n", 0, offset) + 1
    line = text[start:offset]
    code = len(line) - len(line.lstrip(" \t"))
    return code, code == len(line)


def _match(text: str, upto: int) -> tuple[list[Bracket], set[int]]:
    """The brackets still open at offset `upto`, and the offsets of the openers that the
    whole text never closes. A closer of an outer kind closes what it skips over; a `}` alone
    on its line closes the `{` whose line has its indentation, when the one on top has not
    (`for ... {` left open inside a model is the unclosed one, not the model's)."""
    stack: list[Bracket] = []
    open_at: list[Bracket] | None = None
    never: set[int] = set()
    for b in brackets(text):
        if open_at is None and b.offset >= upto:
            open_at = list(stack)
        if b.char in CLOSER:
            stack.append(b)
            continue
        kind = OPENER[b.char]
        target = next((i for i in range(len(stack) - 1, -1, -1) if stack[i].char == kind), None)
        if target is None:
            continue  # a stray closer
        indent, alone = _indent(text, b.offset)
        if alone and _indent(text, stack[target].offset)[0] != indent:
            target = next((i for i in range(target - 1, -1, -1) if stack[i].char == kind
                           and _indent(text, stack[i].offset)[0] == indent), target)
        while len(stack) > target + 1:
            never.add(stack.pop().offset)
        stack.pop()
    never |= {s.offset for s in stack}
    return (list(stack) if open_at is None else open_at), never


def _loc(text: str, offset: int, file: str, length: int = 1) -> Loc:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Loc(file=file, line=line, col=col, end_line=line, end_col=col + length)


def explain(text: str, file: str, offset: int, token: str, expected: set[str] | None
            ) -> Problem | None:
    """A diagnostic about brackets for a parse that failed at `offset` (len(text) at the end of
    the file) on `token`, or None when brackets are not the cause. `expected` holds the
    terminals the parser wanted there; None when it read a keyword where a name goes."""
    stack, never = _match(text, offset)
    at_end = offset >= len(text.rstrip())
    if at_end:
        stack = [b for b in brackets(text) if b.offset in never][-1:]
    if not stack:
        return None
    top = stack[-1]
    opened = _loc(text, top.offset, file)
    if token in OPENER and token != CLOSER[top.char] and top.offset in never:
        return Problem("E0101", f"mismatched closing delimiter `{token}`",
                       loc=_loc(text, offset, file), label=f"expected `{CLOSER[top.char]}`",
                       notes=[Note(message=f"to close the `{top.char}` opened here",
                                   loc=opened)])
    wanted = at_end or expected is None or TERMINAL[CLOSER[top.char]] in expected
    if token in OPENER or top.offset not in never or not wanted:
        return None  # a stray closer: the parser's own message says it
    if at_end:
        end = max(len(text.rstrip()) - 1, 0)
        note = Note(message="the file ends here", loc=_loc(text, end, file))
    else:
        note = Note(message=f"the parser gave up here, at `{token}`",
                    loc=_loc(text, offset, file, max(1, len(token))))
    return Problem("E0104", f"unclosed delimiter `{top.char}`", loc=opened,
                   label=f"this `{top.char}` is never closed", notes=[note],
                   hint=f"close it with `{CLOSER[top.char]}`")
