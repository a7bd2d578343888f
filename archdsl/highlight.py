"""Syntax highlighting for documentation and terminals, from the editor's TextMate grammar.

`ArchLexer` is a Pygments lexer built at import time from `grammars/arch.tmLanguage.json`, the
grammar the VS Code extension uses, so the docs and `archdsl explain` colour specs as the editor
does. Installed, it is Pygments' `arch` lexer (the `pygments.lexers` entry point): Sphinx, MkDocs
and `pygmentize -l arch` highlight ```arch blocks with it.

The grammar uses what TextMate and Pygments share: `match` rules (with `captures`), `begin` and
`end` rules (a state each), `include` of the repository and `$self`, and regular expressions in
the subset Oniguruma and Python's `re` read alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any

from pygments.lexer import RegexLexer
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
    _TokenType,
)

# TextMate scope (the longest prefix that applies) -> Pygments token
SCOPES: dict[str, _TokenType] = {
    "comment": Comment.Single,
    "string": String.Double,
    "constant.character.escape": String.Escape,
    "constant.numeric": Number,
    "constant.language": Keyword.Constant,
    "invalid": Error,
    "keyword": Keyword,
    "keyword.operator": Operator,
    "keyword.operator.logical": Operator.Word,
    "storage.type": Keyword.Declaration,
    "support.type": Keyword.Type,
    "entity.name.type": Name.Class,
    "entity.name.function": Name.Function,
    "variable.parameter": Name.Attribute,
    "variable.other.constant": Name.Constant,
    "variable.other.dimension": Name.Variable.Magic,
    "variable.other": Name,
    "punctuation": Punctuation,
}


def token_of(scope: str | None) -> _TokenType:
    if not scope:
        return Text
    parts = scope.split(".")
    for n in range(len(parts), 0, -1):
        found = SCOPES.get(".".join(parts[:n]))
        if found is not None:
            return found
    return Text


@cache
def grammar() -> dict[str, Any]:
    text = resources.files("archdsl.grammars").joinpath("arch.tmLanguage.json")
    return json.loads(text.read_text(encoding="utf-8"))


def _captured(rule: dict[str, Any], key: str = "captures") -> Callable[..., Iterator[Any]]:
    """A callback that gives each captured group its scope's token, and what the groups leave
    uncovered the rule's own token (Pygments must see every character)."""
    captures = {int(k): token_of(v.get("name")) for k, v in rule.get(key, {}).items()}
    whole = token_of(rule.get("name"))

    def callback(lexer: Any, match: re.Match[str]) -> Iterator[tuple[int, Any, str]]:
        if 0 in captures:
            yield match.start(), captures[0], match.group()
            return
        pos = match.start()
        for group in sorted(g for g in captures if match.group(g) is not None):
            start, end = match.span(group)
            if start > pos:
                yield pos, whole, match.string[pos:start]
            if end > start:
                yield start, captures[group], match.group(group)
            pos = max(pos, end)
        if match.end() > pos:
            yield pos, whole, match.string[pos:match.end()]

    return callback


def _rules(patterns: list[dict[str, Any]], states: dict[str, list[Any]],
           seen: tuple[str, ...] = ()) -> list[Any]:
    """Pygments rules for TextMate patterns; a `begin`/`end` rule becomes a state of its own."""
    g = grammar()
    out: list[Any] = []
    for rule in patterns:
        if "include" in rule:
            ref = rule["include"]
            target = g["patterns"] if ref == "$self" else g["repository"][ref.lstrip("#")]
            name = ref.lstrip("#$")
            if name in seen:
                continue  # a rule list includes itself only through a begin/end state
            inner = target if isinstance(target, list) else [target]
            if isinstance(target, dict) and "patterns" in target and "begin" not in target:
                inner = target["patterns"]
            out += _rules(inner, states, (*seen, name))
        elif "match" in rule:
            out.append((rule["match"], _captured(rule)))
        elif "begin" in rule:
            state = f"{rule.get('name') or 'group'}-{id(rule)}"
            if state not in states:  # made once, however often it is included
                states[state] = [(rule["end"], _captured(rule, "endCaptures"), "#pop")]
                states[state] += _rules(rule.get("patterns", []), states)
                if rule.get("name"):  # inside a string: the rest is the string's token
                    states[state] += [(rf"(?:(?!{rule['end']})[^\\\n])+|[^\n]",
                                       token_of(rule["name"]))]
                states[state].append((r"\s+", Whitespace))
            out.append((rule["begin"], _captured(rule, "beginCaptures"), state))
        elif "patterns" in rule:
            out += _rules(rule["patterns"], states, seen)
    return out


def _tokens() -> dict[str, list[Any]]:
    states: dict[str, list[Any]] = {}
    root = _rules(grammar()["patterns"], states)
    return {"root": [*root, (r"\s+", Whitespace)], **states}


class ArchLexer(RegexLexer):
    """The `.arch` language, highlighted as the VS Code extension does."""

    name = "archdsl"
    aliases = ["arch", "archdsl"]
    filenames = ["*.arch"]
    tokens = _tokens()


def terminal(spec: str) -> str:
    """`spec` coloured for a terminal (ANSI), as `archdsl explain` shows examples."""
    from pygments import highlight
    from pygments.formatters import TerminalFormatter
    return highlight(spec, ArchLexer(), TerminalFormatter())
