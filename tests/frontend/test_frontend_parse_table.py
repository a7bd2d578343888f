"""The generated parser table (`grammars/arch_table.py`): current, and parsing as the grammar.

When this fails after a grammar edit (or a Lark upgrade), regenerate the table:

    python -m archdsl.parse_table
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from archdsl import parse_table, parser
from archdsl.diagnostics import Problem
from archdsl.limits import Limits

ROOT = Path(__file__).resolve().parents[2]
INPUTS = sorted([*ROOT.glob("specs/**/*.arch"), *ROOT.glob("tests/frontend/golden/**/*.arch")])
GRAMMAR_BUILT = parser.make_lark(from_table=False)


def test_committed_table_is_generated_from_the_grammar() -> None:
    check = subprocess.run([sys.executable, "-m", "archdsl.parse_table", "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_the_check_finds_a_stale_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from archdsl.grammars import arch_table

    monkeypatch.setattr(arch_table, "GRAMMAR_SHA256", "0" * 64)
    assert parse_table.main(["--check"]) == 1
    assert parser.make_lark().source_path != "<deserialized>"


def test_the_table_is_used_when_current() -> None:
    assert parser.make_lark().source_path == "<deserialized>"


def _outcome(path: Path) -> object:
    """The syntax tree of `path`, or the problem its parse raises."""
    try:
        text = parser.decode(path.read_bytes(), path.name)
        return parser.parse(parser.normalize_newlines(text), path.name, Limits())
    except Problem as exc:
        return ("problem", exc.code, exc.message, exc.loc, exc.label, exc.hint, exc.notes)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_table_parses_as_the_grammar(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_table = _outcome(path)
    monkeypatch.setattr(parser, "_lark", lambda: GRAMMAR_BUILT)
    assert _outcome(path) == from_table



HOSTILE = sorted(ROOT.glob("tests/hostile/**/*.arch"))


@pytest.mark.parametrize("path", INPUTS + HOSTILE, ids=lambda p: str(p.relative_to(ROOT)))
def test_our_parse_loop_parses_as_larks(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`parser._drive` runs Lark's LALR loop with the rules' callbacks looked up once: the same
    syntax tree, and the same problem at the same place, as `Lark.parse`."""
    ours = _outcome(path)
    monkeypatch.setattr(parser, "_drive", lambda lark, text: lark.parse(text))
    assert _outcome(path) == ours
