"""Warnings about valid specs that probably do not say what their author meant.

W0001: a pipeline stage after `if c then a else b` applies to the whole `if`, both branches
(`|>` binds loosest), where a reader often expects it to apply to the `else` branch alone:

    y = if pre_norm then x + a else x + a |> LayerNorm     # LayerNorm on both branches

Bracketing the `if`, as `archdsl fmt` does, says it is meant and silences the warning.
"""

from __future__ import annotations

from archdsl import syntax as ast
from archdsl.delimiters import CLOSER, brackets
from archdsl.diagnostics import Diagnostic, Loc, Note


class _Offsets:
    def __init__(self, text: str):
        self.text = text
        self.starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self.starts.append(i + 1)

    def of(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col - 1

    def loc(self, offset: int, length: int, file: str) -> Loc:
        line = next(i for i in range(len(self.starts), 0, -1) if self.starts[i - 1] <= offset)
        col = offset - self.starts[line - 1] + 1
        return Loc(file=file, line=line, col=col, end_line=line, end_col=col + length)


def lint(module: ast.Module, text: str) -> list[Diagnostic]:
    offsets = _Offsets(text)
    closing: dict[int, int] | None = None
    out = []
    stack: list[object] = list(module.items)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Pipeline) and isinstance(node.source, ast.IfElse):
            if closing is None:
                closing = _matching(text)
            warning = _pipe_after_if(node, node.source, offsets, closing, module.file)
            if warning is not None:
                out.append(warning)
        stack.extend(ast.children(node))
    return sorted(out, key=lambda d: (d.loc.line, d.loc.col) if d.loc else (0, 0))


def _matching(text: str) -> dict[int, int]:
    """Opening bracket offset -> its closing bracket's offset (the text has parsed)."""
    out, stack = {}, []
    for b in brackets(text):
        if b.char in CLOSER:
            stack.append(b.offset)
        elif stack:
            out[stack.pop()] = b.offset
    return out


def _pipe_after_if(pipe: ast.Pipeline, cond: ast.IfElse, offsets: _Offsets,
                   closing: dict[int, int], file: str) -> Diagnostic | None:
    text = offsets.text
    keyword = text.rfind("if", 0, offsets.of(cond.cond.loc.line, cond.cond.loc.col))
    before = text[:keyword].rstrip()
    arrow = text.find("|>", offsets.of(cond.orelse.loc.end_line, cond.orelse.loc.end_col))
    if before.endswith("(") and closing.get(len(before) - 1, len(text)) < arrow:
        return None  # `(if ... else ...) |> f`: said on purpose
    return Diagnostic(
        code="W0001", severity="warning",
        message="`|>` after `if ... then ... else` applies to both branches",
        loc=offsets.loc(arrow, 2, file),
        label="this stage gets the result of the whole `if`, not only the `else` branch",
        notes=[Note(message="the `then` branch goes through it too", loc=cond.then.loc)],
        hint="bracket the `if` to say so, `(if ... else ...) |> ...`, or bracket the "
             "branch, `else (... |> ...)`")
