"""Text -> syntax tree, with every lexical and syntax problem turned into a located diagnostic.

The grammar ships inside the package (`archdsl/grammars/arch.lark`). Parsing is LALR with the
contextual lexer; the parser builds the syntax tree itself, one node per reduction (no parse
tree in between, and no recursion, so deep nesting cannot overflow Python's stack). Our own
LALR driver over Lark's table (`_drive`) finds each reduction's callback without hashing the rule
and skips the reductions that only pass a child up; a syntax error is reported from Lark's own
loop, run again to the same token. Nesting
depth, input size and token count are bounded, and numbers and characters checked, by a scan
before Lark sees the text.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from typing import Any, NoReturn

from lark import Lark, Token, Transformer, UnexpectedInput, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken
from lark.lexer import LexerThread
from lark.parsers.lalr_analysis import Shift

from archdsl import syntax as ast
from archdsl.delimiters import explain
from archdsl.diagnostics import Loc, Problem
from archdsl.limits import Limits, raise_hint

KEYWORDS = frozenset(
    "model block gan train input output assert const import for in range if then else and or "
    "not true false".split()
)

# Readable names for the grammar's terminals, used in "expected ..." lists.
_TERMINALS = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
    "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`", "LBRACE": "`{`",
    "RBRACE": "`}`", "COMMA": "`,`", "COLON": "`:`", "EQUAL": "`=`", "DOT": "`.`",
    "COMP_OP": "a comparison", "ADD_OP": "`+` or `-`", "MUL_OP": "an operator", "MINUS": "`-`",
    "PIPE": "`|>`", "$END": "end of file", "POW_OP": "`**`",
}

_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


class _KeywordAsName(Exception):
    def __init__(self, token: Token):
        self.token = token


def _reject_keyword(tok: Token) -> Token:
    """The contextual lexer reads `model` as a NAME where only a name fits; the language
    reserves its keywords everywhere."""
    if tok in KEYWORDS:
        raise _KeywordAsName(tok)
    return tok


@cache
def _lark() -> Lark:
    return make_lark()


def make_lark(from_table: bool = True) -> Lark:
    """The parser, building the syntax tree as it reduces (no parse tree in between): loaded
    from the generated table of `archdsl.parse_table`, or built from the grammar."""
    from archdsl import parse_table  # imported here: `python -m archdsl.parse_table` runs it

    runtime = {"lexer_callbacks": {"NAME": _reject_keyword}, "transformer": _ToAst()}
    return parse_table.load(runtime) if from_table else parse_table.build(runtime)


# The file being parsed and its limits, for the transformer the parser was built with.
_PARSING: ContextVar[tuple[str, Limits]] = ContextVar("archdsl_parsing")


def decode(data: bytes, file: str) -> str:
    """UTF-8 bytes -> text (a leading BOM is dropped); a bad byte is reported where it is."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        loc = Loc(file=file, line=line, col=col, end_line=line, end_col=col + 1)
        raise Problem("E0001", "the file is not valid UTF-8", loc=loc,
                      label=f"byte 0x{data[exc.start]:02x} cannot start a character here",
                      hint="save the spec as UTF-8") from None


def _loc_at(text: str, pos: int, file: str, length: int = 1) -> Loc:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return Loc(file=file, line=line, col=col, end_line=line, end_col=col + length)


def normalize_newlines(text: str) -> str:
    """`\r\n` and a lone `\r` end a line, as in editors and the language server protocol."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def prescan(text: str, file: str, limits: Limits) -> None:
    """Refuse what the grammar should never see: oversize input, control bytes, deep nesting,
    too many tokens, malformed numbers and characters outside the language."""
    if len(text) > limits.max_source_chars:
        raise Problem("E0801", f"the spec is {len(text):,} characters long",
                      loc=Loc(file=file, line=1, col=1, end_line=1, end_col=2),
                      label=f"the limit is {limits.max_source_chars:,}",
                      hint=raise_hint("max_source_chars"))
    for pattern, what in ((_CONTROL, "control character"), (_BIDI, "bidirectional control")):
        m = pattern.search(text)
        if m:
            raise Problem("E0002", f"a {what} (U+{ord(m.group()):04X}) in the spec",
                          loc=_loc_at(text, m.start(), file),
                          label="not allowed anywhere in a spec, not even in comments",
                          hint="such characters can hide or reorder the text a reader sees")
    _scan_tokens(text, file, limits)


# The scan's tokens: comments (skipped), strings, names, runs that start like a number (checked
# against the grammar's INT and FLOAT), brackets, the operators and words that nest an
# expression one level deeper, and the separators that end one.
_SCAN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\[^\n])*"?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\.?[0-9](?:[0-9A-Za-z_.]|(?<=[eE])[+-])*)
  | (?P<open>[(\[{])
  | (?P<close>[)\]}])
  | (?P<op>\|>|\*\*|//|[=!<>]=|[-+*/@%<>.|])
  | (?P<reset>[=,:])
  | (?P<other>[^ \t\n\r\f])
""", re.VERBOSE)
_NESTING_WORDS = frozenset({"not", "if", "and", "or"})


def _scan_tokens(text: str, file: str, limits: Limits) -> None:
    """One pass over the tokens, bounding what would make Lark or the checker slow.

    Each bracket level counts the operators, nesting words, attribute dots and brackets since
    its last `= , : { }`: a chain of n of them nests at least n / 4 deep (a term takes at most
    four: an operator, a call's bracket, ...), so a chain far beyond the depth limit is refused
    before Lark spends seconds parsing it."""
    number = _number_pattern()
    depth = tokens = 0
    chain = [0]
    longest = 4 * limits.max_nesting
    for m in _SCAN.finditer(text):
        kind = m.lastgroup
        if kind == "comment":
            continue
        tokens += 1
        if tokens > limits.max_tokens:
            raise Problem("E0801", f"the spec has more than {limits.max_tokens:,} tokens",
                          loc=_loc_at(text, m.start(), file, m.end() - m.start()),
                          label="the limit is reached here",
                          hint=raise_hint("max_tokens"))
        if kind == "name":
            if m.end() - m.start() > limits.max_name_chars:
                raise Problem("E0801", "a name longer than the limit",
                              loc=_loc_at(text, m.start(), file, limits.max_name_chars),
                              label=f"more than {limits.max_name_chars:,} characters",
                              hint=raise_hint("max_name_chars"))
            if m.group() not in _NESTING_WORDS:
                continue
        elif kind == "number":
            if not number.fullmatch(m.group()):
                raise _malformed_number(m.group(), _loc_at(text, m.start(), file,
                                                           m.end() - m.start()))
            continue
        elif kind == "string":
            if m.end() - m.start() - 2 > limits.max_string_chars:
                raise Problem("E0801", "a string longer than the limit",
                              loc=_loc_at(text, m.start(), file, 1),
                              label=f"more than {limits.max_string_chars:,} characters",
                              hint=raise_hint("max_string_chars"))
            continue
        elif kind == "reset":
            chain[-1] = 0
            continue
        elif kind == "close":
            depth -= 1
            if len(chain) > 1:
                chain.pop()
            if m.group() == "}":  # the end of a body ends its last statement
                chain[-1] = 0
            continue
        elif kind == "other":
            if not m.group().isascii():
                raise _foreign_character(m.group(), _loc_at(text, m.start(), file))
            continue
        chain[-1] += 1  # an operator, a nesting word, or a bracket opening
        if chain[-1] > longest:
            raise Problem("E0801", "an expression nested too deeply",
                          loc=_loc_at(text, m.start(), file, m.end() - m.start()),
                          label=f"more than {longest:,} operators in one chain",
                          hint="split the expression into several statements")
        if kind == "open":
            depth += 1
            chain.append(0)
            if depth > limits.max_nesting:
                raise Problem("E0801", "brackets nested too deeply",
                              loc=_loc_at(text, m.start(), file),
                              label=f"nesting depth {depth} exceeds the limit of "
                                    f"{limits.max_nesting}", hint=raise_hint("max_nesting"))
            if m.group() == "{":
                chain[-2] = 0


@cache
def _number_pattern() -> re.Pattern[str]:
    """The grammar's own number literals, as one pattern."""
    patterns = {t.name: t.pattern.to_regexp() for t in _lark().terminals}
    return re.compile(f"(?:{patterns['INT']})|(?:{patterns['FLOAT']})")


def _malformed_number(token: str, loc: Loc) -> Problem:
    lower = token.lower()
    hint = None
    if re.match(r"0[xob]", lower):
        label = "hexadecimal, octal and binary numbers are not part of the language"
        try:
            hint = f"write it in decimal: `{int(token, 0)}`"
        except ValueError:
            hint = "write it in decimal"
    elif "__" in token or re.search(r"_(?![0-9])|(?<![0-9])_", token):
        label = "`_` may only stand between two digits"
        hint = "e.g. `1_000`"
    elif re.search(r"[0-9.]e[+-]?$", lower):
        label = "an exponent needs digits"
        hint = "e.g. `1e-3`"
    elif token.count(".") > 1:
        label = "a number has one decimal point at most"
    elif ".e" in lower:
        label = "a digit must follow the decimal point"
        hint = "e.g. `1.0e5`"
    else:
        label = "a number runs into letters"
        hint = "put a space or an operator between a number and a name"
    return Problem("E0003", "a malformed number", loc=loc, label=label, hint=hint)


# Letters of other scripts that look like ASCII ones: a name that holds one reads correctly
# and still fails to match.
_LOOKALIKES = dict(zip("аеорсухіјѕԁһӏԛԝАВЕКМНОРСТХІЈЅαοντΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
                       "aeopcyxijsdhlqwABEKMHOPCTXIJSaovtABEZHIKMNOPTYX", strict=True))


def _foreign_character(ch: str, loc: Loc) -> Problem:
    """A character outside ASCII where only names, numbers and symbols may stand."""
    code = f"U+{ord(ch):04X} {unicodedata.name(ch, '')}".rstrip()
    message = f"unexpected character `{ch}` ({code})" if ch.isprintable() else \
        f"unexpected character {code}"
    folded = unicodedata.normalize("NFKC", ch)
    lookalike = _LOOKALIKES.get(ch) or (folded if folded.isascii() and folded.isprintable()
                                        and folded != ch else None)
    if ch.isspace() or (lookalike is not None and lookalike.isspace()):
        return Problem("E0002", message, loc=loc, label="a space that is not ASCII",
                       hint="replace it with a plain space")
    if lookalike:
        return Problem("E0002", message, loc=loc, label=f"it looks like `{lookalike}` but is "
                       "not ASCII", hint=f"retype it as `{lookalike}`")
    return Problem("E0002", message, loc=loc, label="not part of the language",
                   hint="names are ASCII letters, digits and `_`; other text belongs in strings "
                        "or comments" if ch.isalpha() else None)


def parse(text: str, file: str, limits: Limits) -> ast.Module:
    prescan(text, file, limits)
    token = _PARSING.set((file, limits))
    try:
        try:
            items = _drive(_lark(), text)
        except UnexpectedInput:  # Lark's own parse, for the exception it raises at the error
            items = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_problem(exc, text, file) from None
    except _KeywordAsName as exc:
        tok = exc.token
        raise explain(text, file, tok.start_pos, str(tok), None) or Problem(
            "E0103", f"`{tok}` is a keyword and cannot be used as a name",
            loc=_tok_loc(file, tok), label="a name is expected here",
            hint=f"rename it, e.g. `{tok}_`") from None
    finally:
        _PARSING.reset(token)
    module = ast.Module(file=file, items=list(items))
    _check_expression_depth(module, limits)
    return module


class _Position:
    """What Lark's contextual lexer reads of the parser: the state it stands in."""

    __slots__ = ("stack",)

    def __init__(self, stack: list[int]):
        self.stack = stack

    @property
    def position(self) -> int:
        return self.stack[-1]


# One state's actions: terminal or rule name -> (True, (next state, the terminal's callback or
# None)) to shift, or (False, (symbols popped, the rule's name, its callback)) to reduce
_Actions = dict[str, tuple[bool, Any]]


@cache
def _actions(lark: Lark) -> tuple[dict[int, _Actions], int, int]:
    """Lark's LALR table with each reduction's rule looked up once: Lark's own loop hashes
    the rule (its name and every symbol of its expansion) to find its callback at each
    reduction. Also the start and end states."""
    parser = lark.parser.parser.parser
    table, callbacks = parser.parse_table, parser.callbacks
    terminal = {k: v for k, v in callbacks.items() if isinstance(k, str)}
    reduce = {rule: (len(rule.expansion), rule.origin.name,
                     None if _passes_through(rule, callbacks[rule]) else callbacks[rule])
              for rule in callbacks if not isinstance(rule, str)}
    states = {state: {name: (True, (arg, terminal.get(name))) if action is Shift else
                      (False, reduce[arg]) for name, (action, arg) in row.items()}
              for state, row in table.states.items()}
    return states, table.start_states["start"], table.end_states["start"]


def _passes_through(rule: Any, callback: Any) -> bool:
    """Whether reducing `rule` leaves its one child as it is: a `?rule` of one symbol, a rule
    of the grammar's that only names the precedence level below it (`?sum: product`).
    Hundreds of thousands of reductions in a large spec are these."""
    if not (rule.options.expand1 and not rule.alias and len(rule.expansion) == 1
            and not rule.expansion[0].is_term and not rule.expansion[0].name.startswith("_")
            and not rule.options.empty_indices):
        return False
    probe = object()
    return callback([probe]) is probe


def _drive(lark: Lark, text: str) -> Any:
    """`lark.parse(text)`: the same LALR loop over the same contextual lexer, with every
    reduction's callback found in `_actions`. A token the table has no action for raises
    `UnexpectedInput` here without Lark's details; the caller parses again with Lark."""
    states, start, end = _actions(lark)
    stack, values = [start], []
    tokens = LexerThread.from_text(lark.parser.lexer, text).lex(_Position(stack))
    for token in _and_end(tokens):
        while True:
            shift, arg = states[stack[-1]].get(token.type) or _unexpected(token)
            if shift:
                if token.type == "$END":  # never in an LALR table: Lark's loop would assert
                    _unexpected(token)
                stack.append(arg[0])
                values.append(token if arg[1] is None else arg[1](token))
                break
            size, origin, callback = arg
            if callback is None:  # the child stays on the stack as the rule's value
                del stack[-1]
            elif size:
                popped = values[-size:]
                del stack[-size:]
                del values[-size:]
                values.append(callback(popped))
            else:
                values.append(callback([]))
            stack.append(states[stack[-1]][origin][1][0])
            if stack[-1] == end and token.type == "$END":
                return values[-1]
    raise AssertionError("the end token reduces to the end state or is unexpected")


def _and_end(tokens: Iterator[Token]) -> Iterator[Token]:
    """The lexer's tokens, then Lark's end token (at the last token's position)."""
    last = None
    for last in tokens:
        yield last
    yield Token.new_borrow_pos("$END", "", last) if last else Token("$END", "", 0, 1, 1)


def _unexpected(token: Token) -> NoReturn:
    raise UnexpectedInput(f"unexpected {token.type}")


def _check_expression_depth(module: ast.Module, limits: Limits) -> None:
    """Long operator chains (`a+a+a+...`) nest without brackets; bound them iteratively."""
    stack: list[tuple[object, int]] = [(item, 0) for item in module.items]
    while stack:
        node, depth = stack.pop()
        if depth > limits.max_nesting:
            loc = getattr(node, "loc", None)
            raise Problem("E0801", "an expression nested too deeply", loc=loc,
                          label=f"nesting depth exceeds the limit of {limits.max_nesting}",
                          hint="split the expression into several statements")
        for name in getattr(node, "__slots__", ()):
            child = getattr(node, name, None)
            if isinstance(child, ast.Node):
                stack.append((child, depth + 1))
            elif isinstance(child, tuple):
                stack.extend((c, depth + 1) for c in child if isinstance(c, ast.Node))


def _token_text(tok: Token) -> str:
    return "end of file" if tok.type == "$END" else f"`{tok}`"


def _syntax_problem(exc: UnexpectedInput, text: str, file: str) -> Problem:
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        ch = text[pos] if pos < len(text) else ""
        if ch == '"':
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            return Problem("E0004", "a string that is not closed",
                           loc=_loc_at(text, pos, file, max(1, end - pos)),
                           label="the closing `\"` must be on the same line")
        if ch.isdigit() or ch == ".":
            return Problem("E0003", "a malformed number", loc=_loc_at(text, pos, file),
                           label="not a valid integer or float literal")
        shown = ch if ch.isprintable() else f"U+{ord(ch):04X}"
        return Problem("E0002", f"unexpected character `{shown}`", loc=_loc_at(text, pos, file),
                       label="not part of the language",
                       hint=_char_hint(ch))
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        unclosed = explain(text, file, len(text), "", None)
        if unclosed is not None:
            return unclosed
        pos = len(text.rstrip())
        expected = _expected(getattr(exc, "expected", set()) or set())
        return Problem("E0102", "the file ends in the middle of a definition",
                       loc=_loc_at(text, max(pos - 1, 0), file),
                       label=f"expected {expected} after this" if expected else "")
    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    brackets = explain(text, file, tok.start_pos, str(tok), set(exc.expected))
    if brackets is not None:
        return brackets
    loc = Loc(file=file, line=tok.line or 1, col=tok.column or 1,
              end_line=tok.end_line or tok.line or 1,
              end_col=(tok.end_column or (tok.column or 1) + 1))
    expected = _expected(exc.expected)
    if str(tok) in KEYWORDS and "NAME" in exc.expected:
        return Problem("E0103", f"`{tok}` is a keyword and cannot be used as a name", loc=loc,
                       label="a name is expected here", hint=f"rename it, e.g. `{tok}_`")
    hint = None
    if tok.type == "NAME" and "EQUAL" in exc.expected:
        hint = "a statement needs `=` after the name"
    return Problem("E0101", f"unexpected {_token_text(tok)}", loc=loc,
                   label=f"expected {expected}" if expected else "", hint=hint)


def _char_hint(ch: str) -> str | None:
    if ch == ";":
        return "statements need no `;`: put each on its own line"
    if ch in "'`":
        return 'strings use double quotes: "same"'
    if ch == "\\":
        return "a line may simply continue on the next one; no `\\` is needed"
    return None


def _expected(names: set[str]) -> str:
    readable = sorted({_TERMINALS.get(n, f"`{n.lower()}`" if n.isalpha() else n) for n in names
                       if not n.startswith("_") or n in _TERMINALS})
    if len(readable) > 6:
        return "a statement or an expression" if "a name" in readable else "something else"
    if len(readable) > 1:
        return ", ".join(readable[:-1]) + " or " + readable[-1]
    return readable[0] if readable else ""


# ---- parse tree -> syntax tree --------------------------------------------------------------
def _tok_loc(file: str, tok: Token) -> Loc:
    return Loc(file=file, line=tok.line, col=tok.column, end_line=tok.end_line,
               end_col=tok.end_column)


def _span(file: str, *parts: object) -> Loc:
    """From the start of the first part to the end of the last (None parts left out)."""
    present = [p for p in parts if p is not None]
    first, last = present[0], present[-1]
    if isinstance(first, Token):
        line, col = first.line, first.column
    else:
        start = first if isinstance(first, Loc) else first.loc  # type: ignore[attr-defined]
        line, col = start.line, start.col
    if isinstance(last, Token):
        end_line, end_col = last.end_line, last.end_column
    else:
        end = last if isinstance(last, Loc) else last.loc  # type: ignore[attr-defined]
        end_line, end_col = end.end_line, end.end_col
    return Loc(file=file, line=line, col=col, end_line=end_line, end_col=end_col)


_STRING_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(tok: Token, file: str) -> str:
    body = str(tok)[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _STRING_ESCAPES:
                raise Problem("E0004", f"unknown escape `\\{nxt}` in a string",
                              loc=_tok_loc(file, tok), label="only \\n \\t \\\" \\\\ are allowed")
            out.append(_STRING_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@v_args(inline=True)
class _ToAst(Transformer):
    """Called by the parser at each reduction, for the file `_PARSING` names."""

    @property
    def file(self) -> str:
        return _PARSING.get()[0]

    @property
    def limits(self) -> Limits:
        return _PARSING.get()[1]

    def _loc(self, *parts: object) -> Loc:
        return _span(self.file, *parts)

    # -- literals and names --------------------------------------------------------------
    def name(self, tok: Token) -> ast.Name:
        return ast.Name(self._loc(tok), str(tok))

    def int_lit(self, tok: Token) -> ast.Literal:
        digits = str(tok).replace("_", "")
        if len(digits) > self.limits.max_literal_digits:
            raise Problem("E0003", "an integer literal with too many digits",
                          loc=_tok_loc(self.file, tok),
                          label=f"{len(digits)} digits; at most {self.limits.max_literal_digits}")
        return ast.Literal(self._loc(tok), int(digits))

    def float_lit(self, tok: Token) -> ast.Literal:
        text = str(tok).replace("_", "")
        if len(text) > self.limits.max_literal_digits + 8:
            raise Problem("E0003", "a number literal that is too long",
                          loc=_tok_loc(self.file, tok), label="too many digits")
        value = float(text)
        if not math.isfinite(value):
            raise Problem("E0003", "a number literal out of range", loc=_tok_loc(self.file, tok),
                          label=f"`{tok}` does not fit a 64-bit float")
        return ast.Literal(self._loc(tok), value)

    def string_lit(self, tok: Token) -> ast.Literal:
        return ast.Literal(self._loc(tok), _unquote(tok, self.file))

    def bool_lit(self, tok: Token) -> ast.Literal:
        return ast.Literal(self._loc(tok), str(tok) == "true")

    def tuple_lit(self, lpar: Token, *rest: object) -> ast.TupleExpr:
        items = tuple(x for x in rest[:-1] if x is not None)
        return ast.TupleExpr(self._loc(lpar, rest[-1]), items)

    def list_lit(self, lsqb: Token, *rest: object) -> ast.ListExpr:
        items = tuple(x for x in rest[:-1] if x is not None)
        return ast.ListExpr(self._loc(lsqb, rest[-1]), items)

    # -- operators -----------------------------------------------------------------------
    def pipeline(self, source: ast.Node, _pipe: Token, stage: ast.Node) -> ast.Pipeline:
        return ast.Pipeline(self._loc(source, stage), source, stage)

    def ifelse(self, cond: ast.Node, then: ast.Node, orelse: ast.Node) -> ast.IfElse:
        return ast.IfElse(self._loc(cond, orelse), cond, then, orelse)

    def or_op(self, a: ast.Node, b: ast.Node) -> ast.BinOp:
        return ast.BinOp(self._loc(a, b), "or", a, b)

    def and_op(self, a: ast.Node, b: ast.Node) -> ast.BinOp:
        return ast.BinOp(self._loc(a, b), "and", a, b)

    def not_op(self, a: ast.Node) -> ast.UnaryOp:
        return ast.UnaryOp(a.loc, "not", a)

    def compare(self, a: ast.Node, op: Token, b: ast.Node) -> ast.BinOp:
        return ast.BinOp(self._loc(a, b), str(op), a, b, _tok_loc(self.file, op))

    def binop(self, a: ast.Node, op: Token, b: ast.Node) -> ast.BinOp:
        return ast.BinOp(self._loc(a, b), str(op), a, b, _tok_loc(self.file, op))

    def neg(self, a: ast.Node) -> ast.Node:
        if isinstance(a, ast.Literal) and isinstance(a.value, (int, float)) \
                and not isinstance(a.value, bool):
            loc = Loc(file=self.file, line=a.loc.line, col=max(1, a.loc.col - 1),
                      end_line=a.loc.end_line, end_col=a.loc.end_col)
            return ast.Literal(loc, -a.value)
        return ast.UnaryOp(a.loc, "-", a)

    def pow(self, a: ast.Node, op: Token, b: ast.Node) -> ast.BinOp:
        return ast.BinOp(self._loc(a, b), "**", a, b, _tok_loc(self.file, op))

    # -- postfix -------------------------------------------------------------------------
    def arguments(self, *items: object) -> tuple:
        return tuple(x for x in items if x is not None)

    def kwarg(self, name: Token, value: ast.Node) -> ast.Keyword:
        return ast.Keyword(self._loc(name, value), str(name), value)

    def call(self, func: ast.Node, args: tuple, rpar: Token) -> ast.Call:
        positional = tuple(a for a in args if not isinstance(a, ast.Keyword))
        keywords = tuple(a for a in args if isinstance(a, ast.Keyword))
        return ast.Call(self._loc(func, rpar), func, positional, keywords)

    def subscripts(self, *items: object) -> tuple:
        return tuple(x for x in items if x is not None)

    def slice(self, start: object, stop: object, step: object = None) -> ast.Slice:
        parts = [p for p in (start, stop, step) if p is not None]
        loc = self._loc(*parts) if parts else Loc(file=self.file, line=1, col=1, end_line=1,
                                                   end_col=1)
        return ast.Slice(loc, start, stop, step)  # type: ignore[arg-type]

    def index(self, value: ast.Node, items: tuple, rsqb: Token) -> ast.Index:
        return ast.Index(self._loc(value, rsqb), value, items)

    def attr(self, value: ast.Node, name: Token) -> ast.Attribute:
        return ast.Attribute(self._loc(value, name), value, str(name))

    # -- statements ----------------------------------------------------------------------
    def tensor_type(self, dtype: Token | None, *rest: object) -> ast.TensorTypeExpr:
        rsqb = rest[-1]
        dims = tuple(x for x in rest[:-1] if x is not None)
        start = dtype if dtype is not None else (dims[0] if dims else rsqb)
        return ast.TensorTypeExpr(self._loc(start, rsqb), str(dtype) if dtype else None,
                                  _tok_loc(self.file, dtype) if dtype else None, dims)

    def input_stmt(self, name: Token, ttype: ast.TensorTypeExpr) -> ast.Input:
        return ast.Input(self._loc(name, ttype), str(name), ttype)

    def assign_stmt(self, name: Token, ttype: object, value: ast.Node) -> ast.Assign:
        return ast.Assign(self._loc(name, value), str(name), ttype, value,  # type: ignore[arg-type]
                          _tok_loc(self.file, name))

    def destructure_stmt(self, *items: object) -> ast.Destructure:
        *names, ttype, value = items
        return ast.Destructure(self._loc(names[0], value), tuple(str(n) for n in names),
                               tuple(_tok_loc(self.file, n) for n in names),  # type: ignore[arg-type]
                               ttype, value)  # type: ignore[arg-type]

    def output_stmt(self, name: Token, ttype: object, value: ast.Node) -> ast.Output:
        return ast.Output(self._loc(name, value), str(name), ttype, value,  # type: ignore[arg-type]
                          _tok_loc(self.file, name))

    def assert_shape(self, name: Token, ttype: ast.TensorTypeExpr) -> ast.AssertShape:
        return ast.AssertShape(self._loc(name, ttype), str(name), ttype,
                               _tok_loc(self.file, name))

    def assert_cond(self, cond: ast.Node, message: Token) -> ast.AssertCond:
        return ast.AssertCond(self._loc(cond, message), cond, _unquote(message, self.file))

    def for_stmt(self, var: Token, args: tuple, body: tuple) -> ast.For:
        return ast.For(_tok_loc(self.file, var), str(var), args, body)

    def setting(self, name: Token, value: ast.Node) -> ast.Setting:
        return ast.Setting(self._loc(name, value), str(name), value)

    def train_stmt(self, *settings: ast.Setting) -> ast.Train:
        loc = self._loc(settings[0], settings[-1]) if settings else \
            Loc(file=self.file, line=1, col=1, end_line=1, end_col=1)
        return ast.Train(loc, tuple(settings))

    def body(self, *stmts: ast.Node) -> tuple:
        return stmts

    # -- definitions ---------------------------------------------------------------------
    def param(self, name: Token, ptype: Token, default: object) -> ast.Param:
        return ast.Param(self._loc(name, default if default is not None else ptype), str(name),
                         str(ptype), _tok_loc(self.file, ptype), default)  # type: ignore[arg-type]

    def param_list(self, *params: object) -> tuple:
        return tuple(p for p in params if p is not None)

    def _definition(self, kind: str, name: Token, params: object, body: tuple) -> ast.Definition:
        return ast.Definition(_tok_loc(self.file, name), kind, str(name),
                              _tok_loc(self.file, name), tuple(params or ()), body, self.file)

    def block_def(self, name: Token, params: object, body: tuple) -> ast.Definition:
        return self._definition("block", name, params, body)

    def model_def(self, name: Token, params: object, body: tuple) -> ast.Definition:
        return self._definition("model", name, params, body)

    def gan_def(self, name: Token, params: object, body: tuple) -> ast.Definition:
        return self._definition("gan", name, params, body)

    def const_def(self, name: Token, value: ast.Node) -> ast.Const:
        return ast.Const(self._loc(name, value), str(name), value, _tok_loc(self.file, name))

    def import_stmt(self, path: Token) -> ast.Import:
        return ast.Import(_tok_loc(self.file, path), _unquote(path, self.file))

    def start(self, *items: ast.Node) -> tuple:
        return items
