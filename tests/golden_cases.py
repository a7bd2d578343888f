"""Golden diagnostics: a spec that must be refused, next to the full text of its refusal.

A case is `<CODE>_<slug>.arch` (one file) or `<CODE>_<slug>/` (several files; the entry is the
`main.arch` inside it), next to `<CODE>_<slug>.out`: what `archdsl.load` raises, rendered,
checked character for character; a warning's case (`W<CODE>_<slug>`) loads, and its `.out`
holds the warnings. Loads run with the case's folder as the working directory, so the paths in
the text are the same on every machine. A first line `# golden: graph [NAME]`
also elaborates `program.graph(NAME)`: the one way to reach the codes about choosing a model.

    ARCHDSL_BLESS=1 python -m pytest tests/...   # rewrite the .out files

Blessed files are for review, not for trust: read every diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import archdsl

BLESS = os.environ.get("ARCHDSL_BLESS") == "1"
CASE_NAME = re.compile(r"^([EW]\d{4})_[a-z0-9_]+$")


def cases(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".arch" or p.is_dir())


def code(case: Path) -> str:
    match = CASE_NAME.match(case.stem)
    assert match, f"{case.name}: golden names are <CODE>_<slug>"
    return match.group(1)


def entry(case: Path) -> Path:
    if case.is_file():
        return case
    entries = sorted(case.rglob("main.arch"))
    assert len(entries) == 1, f"{case.name}: a multi-file case holds exactly one main.arch"
    return entries[0]


def _directive(path: Path) -> list[str] | None:
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
    if first.startswith("# golden:"):
        return first.removeprefix("# golden:").split()
    return None


def refusal(case: Path) -> archdsl.SpecError:
    """Load the case (from its folder, the working directory) and return its SpecError."""
    path = entry(case).relative_to(case.parent).as_posix()
    directive = _directive(case.parent / path)
    try:
        program = archdsl.load(path)
        if directive is not None:
            assert directive[0] == "graph", directive
            program.graph(directive[1] if len(directive) > 1 else None)
    except archdsl.SpecError as err:
        return err
    pytest.fail(f"{case.name} loads without an error")


def warned(case: Path) -> str:
    """Load a warning's case (`W...`): it loads, and warns with its code; the warnings rendered."""
    path = entry(case).relative_to(case.parent).as_posix()
    program = archdsl.load(path)
    assert code(case) in [w.code for w in program.warnings], program.warnings
    return "\n\n".join(w.render(program.sources) for w in program.warnings) + "\n"


def check(case: Path, monkeypatch: pytest.MonkeyPatch) -> archdsl.SpecError | None:
    """The case is refused with its code, never an internal error, rendered as its `.out`;
    a warning's case loads and warns, rendered as its `.out`."""
    monkeypatch.chdir(case.parent)
    if code(case).startswith("W"):
        compare(case.with_suffix(".out"), warned(case))
        return None
    err = refusal(case)
    text = err.render() + "\n"
    assert str(err) + "\n" == text
    assert code(case) in err.codes
    assert "E9999" not in err.codes
    compare(case.with_suffix(".out"), text)
    return err


def compare(out: Path, text: str) -> None:
    """`text` is what `out` holds (written first when blessing)."""
    if BLESS:
        out.write_text(text, encoding="utf-8")
    assert out.exists(), f"no {out.name}: run with ARCHDSL_BLESS=1 and review it"
    assert text == out.read_text(encoding="utf-8")


def stale_outs(folder: Path) -> list[str]:
    """`.out` files whose case is gone."""
    stems = {c.stem for c in cases(folder)}
    return [p.name for p in folder.glob("*.out") if p.stem not in stems]
