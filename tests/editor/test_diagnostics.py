"""Diagnostics that find the real cause (the goldens E0104_*, E0101_mismatched_delimiter and
W0001_* show the full text), and colour only on a terminal."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import archdsl
from archdsl.color import paint, wanted
from archdsl.formatter import format_text

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "frontend" / "golden"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

BODY = "model Net {\n    input x: [B, 4]\n%s\n    output y = x\n}\n"
# (statement, code, where the error points, where its note points): line:col
UNCLOSED = [
    ("    h = x |> Linear(4", "E0104", "3:20", "4:5"),
    ("    h = concat([x, x, dim=1)", "E0104", "3:16", "3:26"),
    ("    h = concat([x, x)", "E0101", "3:21", "3:16"),
    ("    assert x: [B, 4", "E0104", "3:15", "4:5"),
    ("    h = f(a, g(b)", "E0104", "3:10", "4:5"),
    ("    for i in range(2) {\n        h = x", "E0104", "3:23", "6:1"),
]


@pytest.mark.parametrize(("stmt", "code", "at", "note"), UNCLOSED, ids=lambda v: str(v)[:20])
def test_an_unclosed_bracket_is_reported_where_it_opens(stmt: str, code: str, at: str,
                                                         note: str) -> None:
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.load(BODY % stmt)
    (d,) = err.value.diagnostics
    assert d.code == code
    assert f"{d.loc.line}:{d.loc.col}" == at
    assert [f"{n.loc.line}:{n.loc.col}" for n in d.notes] == [note]


def test_brackets_that_close_leave_the_parser_s_message() -> None:
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.load(BODY % "    h = x |> Linear(4))")  # one too many
    assert err.value.codes == ["E0101"] and "unexpected `)`" in str(err.value)
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.load("model Net {\n    x = = 1\n")  # the `{` is open, but `=` is the cause
    assert err.value.codes == ["E0101"] and "unexpected `=`" in str(err.value)


def test_pipe_after_if_warns_unless_bracketed() -> None:
    spec = ("model Net(pre: bool = false) {\n    input x: [B, 4]\n"
            "    a = if pre then x else x * 2.0 |> ReLU\n"
            "    b = (if pre then x else x * 2.0) |> ReLU\n"
            "    c = if pre then x |> ReLU else (x |> ReLU)\n"
            "    output y = a + b + c\n}\n")
    program = archdsl.load(spec)
    assert [(w.code, w.loc.line, w.loc.col) for w in program.warnings] == [("W0001", 3, 36)]
    graph = program.graph()
    assert program.warnings and graph.nodes


def test_pipe_after_if_warns_in_a_destructuring_too() -> None:
    """In the value a destructuring splits, and in the argument of a multi-output function;
    fmt's brackets silence it and keep the graph."""
    spec = ("model Net(pre: bool = false) {\n    input x: [B, 8]\n"
            "    a, b = split(if pre then x else x * 2.0 |> ReLU, 4, dim=1)\n"
            "    c, d = if pre then split(x, 4, dim=1) else chunk(x, 2, dim=1)\n"
            "    e, f = if pre then x else x * 2.0 |> Linear(8) |> Halves\n"
            "    output y = a + b + c + d + e + f\n}\n\n"
            "block Halves {\n    input x: [B, D]\n    lo, hi = chunk(x, 2, dim=1)\n"
            "    output a = lo\n    output b = hi\n}\n")
    program = archdsl.load(spec)
    lines = spec.split("\n")
    assert [(w.code, w.loc.line, w.loc.col) for w in program.warnings] == [
        ("W0001", 3, lines[2].index("|>") + 1), ("W0001", 5, lines[4].index("|>") + 1)]
    formatted = archdsl.load(format_text(spec))
    assert formatted.warnings == []
    assert [(n.op, n.inputs, n.type) for n in formatted.graph().nodes] == \
        [(n.op, n.inputs, n.type) for n in program.graph().nodes]


# ---- colour -------------------------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_for_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert wanted(_Terminal()) and not wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wanted(_Terminal())


@pytest.mark.parametrize("out", sorted(GOLDEN.glob("*.out")), ids=lambda p: p.stem)
def test_paint_adds_colour_and_nothing_else(out: Path) -> None:
    text = out.read_text(encoding="utf-8")
    painted = paint(text)
    assert ANSI.sub("", painted) == text
    assert "\x1b[1;31merror[" in painted or "\x1b[1;33mwarning[" in painted


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run the command with standard error on a pseudo-terminal; what it wrote there."""
    main, child = os.openpty()
    done = subprocess.run([sys.executable, "-m", "archdsl.cli", *args], cwd=GOLDEN,
                          stdout=subprocess.DEVNULL, stderr=child, env={**os.environ, **env},
                          timeout=120)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert done.returncode == 1
    return b"".join(chunks).decode()


def test_the_command_colours_a_terminal_and_nothing_else() -> None:
    args = ["check", "E0302_residual_add.arch"]
    assert "\x1b[1;31merror[E0302]" in _on_a_terminal(args, {"TERM": "xterm"})
    assert "\x1b[" not in _on_a_terminal(args, {"TERM": "xterm", "NO_COLOR": "1"})
    piped = subprocess.run([sys.executable, "-m", "archdsl.cli", *args], cwd=GOLDEN,
                           capture_output=True, text=True, timeout=120)
    assert piped.returncode == 1 and "error[E0302]" in piped.stderr
    assert "\x1b[" not in piped.stderr
