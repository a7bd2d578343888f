"""`archdsl fmt`: one canonical layout for `.arch` files, comments kept (docs/editor.md).

The layout is printed from the syntax tree, so it cannot change what a spec means: spacing and
indentation are fixed, a statement longer than `WIDTH` breaks its pipeline one stage per line
(or its `if` before `then` and `else`), a header longer than `HEADER_WIDTH` takes one parameter
per line, `train` settings and gan parts align their `=`, and at most one blank line separates
statements. Comments are found by a scan of the text (the grammar drops them): a comment on its
own line keeps its place, one after code stays after the same code (after its stage, in a
pipeline), and a statement with any other comment inside it is kept as written, re-indented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from archdsl import syntax as ast
from archdsl.diagnostics import Loc, Problem, SourceMap, SpecError
from archdsl.limits import Limits
from archdsl.parser import decode, parse

WIDTH = 100  # a statement longer than this breaks
HEADER_WIDTH = 120  # a definition's header longer than this takes one parameter per line
INDENT = "    "

Pos = tuple[int, int]  # (line, column), both from 1, as in `Loc`


# ---- what the grammar drops: comments, and where braces are -------------------------------
@dataclass(frozen=True)
class Comment:
    pos: Pos
    text: str
    own_line: bool  # nothing but whitespace before it on its line


@dataclass
class _Scan:
    comments: list[Comment] = field(default_factory=list)
    braces: list[tuple[Pos, Pos]] = field(default_factory=list)  # (`{`, `}`) by `{` order


def _scan(text: str) -> _Scan:
    """Comments and matched braces, outside strings. The text has parsed, so braces balance."""
    out = _Scan()
    opened: list[int] = []
    for number, line in enumerate(text.split("\n"), 1):
        in_string = False
        i = 0
        while i < len(line):
            ch = line[i]
            if in_string:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "#":
                out.comments.append(Comment((number, i + 1), line[i:].rstrip(),
                                            not line[:i].strip()))
                break
            elif ch == "{":
                opened.append(len(out.braces))
                out.braces.append(((number, i + 1), (0, 0)))
            elif ch == "}":
                k = opened.pop()
                out.braces[k] = (out.braces[k][0], (number, i + 1))
            i += 1
    return out


# ---- expressions ----------------------------------------------------------------------------
# Binding strength, loosest first, as in the grammar: |> if or and not compare sum product
# unary power postfix atom.
_PIPE, _IF, _OR, _AND, _NOT, _CMP, _SUM, _PROD, _UNARY, _POW, _POSTFIX, _ATOM = range(12)
_BINARY = {"or": (_OR, _OR, _AND), "and": (_AND, _AND, _NOT), "**": (_POW, _POSTFIX, _UNARY)}
for _op in ("==", "!=", "<", "<=", ">", ">="):
    _BINARY[_op] = (_CMP, _SUM, _SUM)
for _op in ("+", "-"):
    _BINARY[_op] = (_SUM, _SUM, _PROD)
for _op in ("*", "/", "//", "%", "@"):
    _BINARY[_op] = (_PROD, _PROD, _UNARY)


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _negative(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.copysign(1, value) < 0


def _strength(e: ast.Node) -> int:
    if isinstance(e, ast.Pipeline):
        return _PIPE
    if isinstance(e, ast.IfElse):
        return _IF
    if isinstance(e, ast.BinOp):
        return _BINARY[e.op][0]
    if isinstance(e, ast.UnaryOp):
        return _NOT if e.op == "not" else _UNARY
    if isinstance(e, (ast.Call, ast.Index, ast.Attribute)):
        return _POSTFIX
    if isinstance(e, ast.Literal) and _negative(e.value):
        return _UNARY
    return _ATOM


class _Text:
    """The source, for what the tree does not keep: how literals and strings were spelt."""

    def __init__(self, text: str, comments: list[Comment]):
        self.lines = text.split("\n")
        self.code_ends = {c.pos[0]: c.pos[1] - 1 for c in comments}  # line -> code length

    def token(self, loc: Loc) -> str:
        return self.span((loc.line, loc.col), (loc.end_line, loc.end_col))

    def span(self, start: Pos, end: Pos) -> str:
        (l1, c1), (l2, c2) = start, end
        if l1 == l2:
            return self.lines[l1 - 1][c1 - 1:c2 - 1]
        parts = [self.lines[l1 - 1][c1 - 1:], *self.lines[l1:l2 - 1], self.lines[l2 - 1][:c2 - 1]]
        return "\n".join(parts)

    def keyword_before(self, pos: Pos, keyword: str) -> Pos:
        """Where `keyword` starts when it is the word before `pos` (`output` before a
        statement's name, across whitespace, line breaks and comments); else `pos`."""
        line, col = pos
        while line >= 1:
            text = self.lines[line - 1][:min(col - 1, self.code_ends.get(line, 1 << 30))]
            code = text.rstrip(" \t\r")
            if code:
                return (line, len(code) - len(keyword) + 1) if code.endswith(keyword) and (
                    len(code) == len(keyword) or not _word_char(code[-len(keyword) - 1])) \
                    else pos
            line -= 1
            col = 1 << 30
        return pos

    def literal(self, e: ast.Literal) -> str:
        """As written (`1e-3`, `1_000`, `"same"`); a folded `- 1` loses its space."""
        if isinstance(e.value, bool):
            return "true" if e.value else "false"
        if isinstance(e.value, str):
            return self.token(e.loc)
        written = "".join(self.token(e.loc).split())
        if _negative(e.value) and not written.startswith("-"):
            written = "-" + written
        return written

    def string_ending_at(self, end: Pos) -> str:
        """A string token that ends at `end` (an assertion's message)."""
        line = self.lines[end[0] - 1]
        close = end[1] - 2
        i = close - 1
        while i >= 0:
            if line[i] == '"':
                slashes = 0
                while i - 1 - slashes >= 0 and line[i - 1 - slashes] == "\\":
                    slashes += 1
                if slashes % 2 == 0:
                    break
            i -= 1
        return line[i:close + 1]


class _Expr:
    def __init__(self, text: _Text):
        self.text = text

    def __call__(self, e: ast.Node, weakest: int = _PIPE) -> str:
        out = self._flat(e)
        return f"({out})" if _strength(e) < weakest else out

    def _flat(self, e: ast.Node) -> str:
        if isinstance(e, ast.Name):
            return e.id
        if isinstance(e, ast.Literal):
            return self.text.literal(e)
        if isinstance(e, ast.Pipeline):
            return f"{self.source(e.source)} |> {self(e.stage, _IF)}"
        if isinstance(e, ast.IfElse):
            return f"if {self(e.cond)} then {self(e.then)} else {self(e.orelse, _IF)}"
        if isinstance(e, ast.BinOp):
            _, left, right = _BINARY[e.op]
            return f"{self(e.left, left)} {e.op} {self(e.right, right)}"
        if isinstance(e, ast.UnaryOp):
            if e.op == "not":
                return f"not {self(e.operand, _NOT)}"
            return f"-{self(e.operand, _UNARY)}"
        if isinstance(e, ast.Call):
            return f"{self(e.func, _POSTFIX)}({self.arguments(e.args + e.kwargs)})"
        if isinstance(e, ast.Keyword):
            return f"{e.name}={self(e.value)}"
        if isinstance(e, ast.Index):
            return f"{self(e.value, _POSTFIX)}[{', '.join(map(self._subscript, e.items))}]"
        if isinstance(e, ast.Attribute):
            return f"{self(e.value, _POSTFIX)}.{e.name}"
        if isinstance(e, ast.TupleExpr):
            items = ", ".join(map(self, e.items))
            return f"({items},)" if len(e.items) == 1 else f"({items})"
        if isinstance(e, ast.ListExpr):
            return f"[{', '.join(map(self, e.items))}]"
        raise TypeError(f"cannot print {type(e).__name__}")

    def source(self, e: ast.Node) -> str:
        """A pipeline's source; an `if` in brackets, which is how it parses (the stage applies
        to both branches) and what the reader may not expect."""
        return f"({self(e)})" if isinstance(e, ast.IfElse) else self(e, _PIPE)

    def arguments(self, args: tuple[ast.Node, ...]) -> str:
        """Positional and keyword arguments in the order they were written."""
        ordered = sorted(args, key=lambda a: (a.loc.line, a.loc.col))
        return ", ".join(map(self, ordered))

    def _subscript(self, e: ast.Node) -> str:
        if not isinstance(e, ast.Slice):
            return self(e)
        parts = ["" if p is None else self(p) for p in (e.start, e.stop)]
        if e.step is not None:
            parts.append(self(e.step))
        return ":".join(parts)

    def type(self, t: ast.TensorTypeExpr) -> str:
        return f"{t.dtype or ''}[{', '.join(map(self, t.dims))}]"

    def param(self, p: ast.Param) -> str:
        default = f" = {self(p.default)}" if p.default is not None else ""
        return f"{p.name}: {p.type}{default}"


# ---- statements and items -------------------------------------------------------------------
@dataclass
class _Element:
    """A statement, item or comment of a body, with its span and the comments it owns."""

    start: Pos
    end: Pos  # exclusive; for a statement with a body, just after its `{`
    node: ast.Node | None = None
    comment: Comment | None = None
    trailing: Comment | None = None
    inside: list[Comment] = field(default_factory=list)
    body: _Body | None = None


@dataclass
class _Body:
    open: Pos
    close: Pos
    elements: list[_Element] = field(default_factory=list)
    close_trailing: Comment | None = None


_KEYWORDS = {ast.Input: "input", ast.Output: "output", ast.AssertShape: "assert",
             ast.AssertCond: "assert", ast.For: "for", ast.Const: "const", ast.Import: "import"}


class Formatter:
    def __init__(self, text: str):
        scan = _scan(text)
        self.src = _Text(text, scan.comments)
        self.expr = _Expr(self.src)
        self.comments = scan.comments
        self.braces = iter(scan.braces)
        self.out: list[str] = []

    # -- structure: spans, bodies and who owns each comment ---------------------------------
    def elements(self, nodes: list[ast.Node] | tuple[ast.Node, ...]) -> list[_Element]:
        out = []
        for node in nodes:
            el = _Element((node.loc.line, node.loc.col), (node.loc.end_line, node.loc.end_col),
                          node)
            body = self._body_of(node)
            if body is not None:
                brace_open, brace_close = next(self.braces)
                el.end = (brace_open[0], brace_open[1] + 1)
                el.body = _Body(brace_open, brace_close, self.elements(body))
            if isinstance(node, ast.Train):  # its span is its settings', or nothing
                el.start = self.src.keyword_before(brace_open, "train")
            elif isinstance(node, ast.Definition):
                el.start = self.src.keyword_before(el.start, node.kind)
            elif type(node) in _KEYWORDS:
                el.start = self.src.keyword_before(el.start, _KEYWORDS[type(node)])
            out.append(el)
        return out

    @staticmethod
    def _body_of(node: ast.Node) -> tuple[ast.Node, ...] | None:
        if isinstance(node, (ast.Definition, ast.For)):
            return node.body
        if isinstance(node, ast.Train):
            return node.settings
        return None

    def attach(self, elements: list[_Element], body: _Body | None, owner: _Element | None
               ) -> list[_Element]:
        """Give each comment of a region to the element it belongs to; the rest become
        elements of their own. Returns the region's elements in source order."""
        lo = body.open if body else (0, 0)
        hi = body.close if body else (len(self.src.lines) + 1, 0)
        mine = [c for c in self.comments if lo < c.pos < hi and not any(
            e.body and e.body.open < c.pos < e.body.close for e in elements)]
        for el in elements:
            if el.body is not None:
                el.body.elements = self.attach(el.body.elements, el.body, el)
        loose = []
        for c in mine:
            inside = next((e for e in elements if e.start < c.pos < e.end), None)
            if inside is not None:
                inside.inside.append(c)
                continue
            if not c.own_line:
                ends = [(e.end, "head", e) for e in elements if e.end[0] == c.pos[0]
                        and e.end <= c.pos]
                ends += [((e.body.close[0], e.body.close[1] + 1), "close", e) for e in elements
                         if e.body and e.body.close[0] == c.pos[0] and e.body.close < c.pos]
                if body is not None and owner is not None and body.open[0] == c.pos[0]:
                    ends.append(((body.open[0], body.open[1] + 1), "head", owner))
                if ends:
                    _, what, el = max(ends, key=lambda x: x[0])
                    if what == "close" and el.body.close_trailing is None:
                        el.body.close_trailing = c
                        continue
                    if what == "head" and el.trailing is None:
                        el.trailing = c
                        continue
            loose.append(_Element(c.pos, (c.pos[0], c.pos[1] + len(c.text)), comment=c))
        return sorted(elements + loose, key=lambda e: e.start)

    # -- printing ---------------------------------------------------------------------------
    def format(self, module: ast.Module) -> str:
        top = self.attach(self.elements(module.items), None, None)
        edges = self._definition_edges(top)
        for i, el in enumerate(top):
            if i and (i in edges or self._blank_between(top[i - 1], el)):
                self.out.append("")
            self.element(el, "", aligned=None)
        return "\n".join(self.out) + "\n" if self.out else ""

    def _definition_edges(self, top: list[_Element]) -> set[int]:
        """Where a blank line must come: before a definition (or the comments right above
        it) and after one."""
        edges = set()
        for i, el in enumerate(top):
            if not isinstance(el.node, ast.Definition):
                continue
            j = i
            while j > 0 and top[j - 1].comment is not None and top[j - 1].comment.own_line \
                    and top[j - 1].start[0] == top[j].start[0] - 1:
                j -= 1
            edges |= {j, i + 1}
        return edges

    def _last_line(self, el: _Element) -> int:
        return el.body.close[0] if el.body else el.end[0]

    def _blank_between(self, a: _Element, b: _Element) -> bool:
        return any(not self.src.lines[i].strip() for i in range(self._last_line(a), b.start[0] - 1))

    def element(self, el: _Element, indent: str, aligned: int | None) -> None:
        if el.comment is not None:
            self.out.append(indent + el.comment.text)
            return
        node = el.node
        assert node is not None
        lines = self.statement(node, indent, aligned, el.inside)
        if lines is None:
            lines = self._verbatim(el, indent)
        if el.trailing is not None:
            lines[-1] += "  " + el.trailing.text
        if el.body is not None:
            if not el.body.elements and el.trailing is None and not el.inside:
                lines[-1] += "}"
            else:
                self.out.extend(lines)
                lines = []
                self.body(node, el.body, indent + INDENT)
                lines.append(indent + "}")
            if el.body.close_trailing is not None:
                lines[-1] += "  " + el.body.close_trailing.text
        self.out.extend(lines)

    def body(self, owner: ast.Node, body: _Body, indent: str) -> None:
        aligns = isinstance(owner, ast.Train) or (
            isinstance(owner, ast.Definition) and owner.kind == "gan")
        widths = self._alignment(body.elements) if aligns else {}
        previous: _Element | None = None
        for el in body.elements:
            if previous is not None and self._blank_between(previous, el):
                self.out.append("")
            self.element(el, indent, widths.get(id(el)))
            previous = el

    def _alignment(self, elements: list[_Element]) -> dict[int, int]:
        """Width of the names in each run of `name = value` lines not parted by a blank line."""
        widths: dict[int, int] = {}
        run: list[_Element] = []

        def close() -> None:
            width = max((len(self._aligned_name(e)) for e in run), default=0)
            widths.update({id(e): width for e in run})
            run.clear()

        previous: _Element | None = None
        for el in elements:
            if previous is not None and self._blank_between(previous, el):
                close()
            if self._aligned_name(el):
                run.append(el)
            previous = el
        close()
        return widths

    @staticmethod
    def _aligned_name(el: _Element) -> str:
        node = el.node
        if isinstance(node, ast.Setting) or (isinstance(node, ast.Assign) and node.type is None):
            return node.name
        return ""

    def _verbatim(self, el: _Element, indent: str) -> list[str]:
        lines = self.src.span(el.start, el.end).split("\n")
        shift = len(indent) - (el.start[1] - 1)
        out = [indent + lines[0].strip()]
        for line in lines[1:]:
            stripped = line.lstrip(" \t")
            if not stripped.strip():
                out.append("")
                continue
            depth = max(0, len(line) - len(stripped) + shift)
            out.append(" " * depth + stripped.rstrip())
        return out

    def statement(self, node: ast.Node, indent: str, aligned: int | None,
                  comments: list[Comment]) -> list[str] | None:
        """The statement's lines; None when comments inside it leave it as written."""
        e = self.expr
        if comments and not isinstance(node, (ast.Assign, ast.Destructure, ast.Output,
                                              ast.Setting, ast.Const)):
            return None
        if isinstance(node, ast.Definition):
            head = f"{indent}{node.kind} {node.name}"
            params = f"({', '.join(map(e.param, node.params))})" if node.params else ""
            if len(head + params) + 2 <= HEADER_WIDTH:
                return [f"{head}{params} {{"]
            return [f"{head}(", *(f"{indent}{INDENT}{e.param(p)}," for p in node.params),
                    f"{indent}) {{"]
        if isinstance(node, ast.For):
            return [f"{indent}for {node.var} in range({e.arguments(node.args)}) {{"]
        if isinstance(node, ast.Train):
            return [f"{indent}train {{"]
        if isinstance(node, ast.Import):
            return [f"{indent}import {self.src.token(node.loc)}"]
        if isinstance(node, ast.Input):
            return [f"{indent}input {node.name}: {e.type(node.type)}"]
        if isinstance(node, ast.AssertShape):
            return [f"{indent}assert {node.name}: {e.type(node.type)}"]
        if isinstance(node, ast.AssertCond):
            end = (node.loc.end_line, node.loc.end_col)
            return [f"{indent}assert {e(node.cond)}, {self.src.string_ending_at(end)}"]
        if isinstance(node, ast.Const):
            return self.binding(f"{indent}const {node.name} = ", node.value, indent, comments)
        if isinstance(node, (ast.Assign, ast.Output, ast.Setting)):
            name = node.name.ljust(aligned) if aligned else node.name
            keyword = "output " if isinstance(node, ast.Output) else ""
            declared = getattr(node, "type", None)
            shape = f": {e.type(declared)}" if declared is not None else ""
            return self.binding(f"{indent}{keyword}{name}{shape} = ", node.value, indent,
                                comments)
        if isinstance(node, ast.Destructure):
            shape = f": {e.type(node.type)}" if node.type is not None else ""
            return self.binding(f"{indent}{', '.join(node.names)}{shape} = ", node.value, indent,
                                comments)
        raise TypeError(f"cannot print {type(node).__name__}")

    def binding(self, prefix: str, value: ast.Node, indent: str, comments: list[Comment]
                ) -> list[str] | None:
        """`prefix value` on one line if it fits, else its pipeline one stage per line or its
        `if` with `then` and `else` under it; anything else that is long stays on one line.
        Comments after stages of a pipeline stay after them; other comments inside: None."""
        e = self.expr
        line = prefix + e(value)
        if isinstance(value, ast.Pipeline) and (comments or len(line) > WIDTH):
            parts: list[ast.Node] = []
            source: ast.Node = value
            while isinstance(source, ast.Pipeline):
                parts.append(source.stage)
                source = source.source
            parts.append(source)
            parts.reverse()
            after = _comments_after(parts, comments)
            if after is None:
                return None
            more = indent + INDENT
            lines = [prefix + e.source(source)] + [f"{more}|> {e(s, _IF)}" for s in parts[1:]]
            return [ln + ("  " + after[i].text if i in after else "") for i, ln in enumerate(lines)]
        if comments:
            return None
        if len(line) > WIDTH and isinstance(value, ast.IfElse):
            under = " " * len(prefix)
            return [f"{prefix}if {e(value.cond)}", f"{under}then {e(value.then)}",
                    f"{under}else {e(value.orelse, _IF)}"]
        return [line]


def _comments_after(parts: list[ast.Node], comments: list[Comment]) -> dict[int, Comment] | None:
    """Which part of a pipeline each comment follows on its line: {part index: comment}."""
    out: dict[int, Comment] = {}
    for c in comments:
        ends = [i for i, p in enumerate(parts) if p.loc.end_line == c.pos[0]
                and p.loc.end_col <= c.pos[1]]
        if c.own_line or not ends or ends[-1] in out or any(
                (p.loc.line, p.loc.col) < c.pos for p in parts[ends[-1] + 1:]):
            return None
        out[ends[-1]] = c
    return out


def format_text(text: str, file: str = "<spec>", limits: Limits | None = None) -> str:
    """The canonical layout of `text`; raises `Problem` when it does not parse."""
    module = parse(text, file, limits or Limits())
    return Formatter(text).format(module)


def format_source(source: str | bytes, file: str) -> str:
    """`format_text` of a file's text or bytes; a spec that does not parse raises
    `SpecError` with its diagnostic."""
    sources = SourceMap()
    try:
        text = decode(source, file) if isinstance(source, bytes) else source
        sources.add(file, text)
        return format_text(text, file)
    except Problem as p:
        raise SpecError([p.at(None)], sources) from None


def spec_files(paths: list[Path]) -> list[Path]:
    """The files named, and the `.arch` files under the folders named, in a stable order."""
    out: list[Path] = []
    for p in paths:
        out += sorted(q for q in p.rglob("*.arch") if q.is_file()) if p.is_dir() else [p]
    return out
