"""Golden diagnostics: every error code's full rendered text, checked character for character.

A case is `golden/<CODE>_<slug>.arch` (one file) or `golden/<CODE>_<slug>/` (several files; the
entry is the `main.arch` inside it), next to `golden/<CODE>_<slug>.out`: what `archdsl.load`
raises, rendered. Loads run with the golden folder as the working directory, so the paths in
the text are the same on every machine. A first line `# golden: graph [NAME]` also elaborates
`program.graph(NAME)`: the one way to reach the codes about choosing a model.

    ARCHDSL_BLESS=1 python -m pytest tests/frontend/test_frontend_golden.py   # rewrite .out files

Blessed files are for review, not for trust: read every diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import archdsl
from archdsl.errors_catalog import CODES

GOLDEN = Path(__file__).parent / "golden"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
BLESS = os.environ.get("ARCHDSL_BLESS") == "1"

# Codes no `.arch` file can reach through `archdsl.load`, and why.
NOT_FROM_A_SPEC = {
    "E0901": "raised by a backend while compiling a checked graph, not by the front end",
    "E9999": "an internal error: a spec that triggers it is a bug, tested by the property tests",
}

CASE_NAME = re.compile(r"^(E\d{4})_[a-z0-9_]+$")


def _cases() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.suffix == ".arch" or p.is_dir())


def _code(case: Path) -> str:
    match = CASE_NAME.match(case.stem)
    assert match, f"{case.name}: golden names are <CODE>_<slug>"
    return match.group(1)


def _entry(case: Path) -> Path:
    if case.is_file():
        return case
    entries = sorted(case.rglob("main.arch"))
    assert len(entries) == 1, f"{case.name}: a multi-file case holds exactly one main.arch"
    return entries[0]


def _directive(entry: Path) -> list[str] | None:
    first = entry.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
    if first.startswith("# golden:"):
        return first.removeprefix("# golden:").split()
    return None


def _run(case: Path) -> archdsl.SpecError:
    entry = _entry(case).relative_to(GOLDEN).as_posix()
    directive = _directive(GOLDEN / entry)
    try:
        program = archdsl.load(entry)
        if directive is not None:
            assert directive[0] == "graph", directive
            program.graph(directive[1] if len(directive) > 1 else None)
    except archdsl.SpecError as err:
        return err
    pytest.fail(f"{case.name} loads without an error")


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.stem)
def test_golden(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    err = _run(case)
    text = err.render() + "\n"
    assert str(err) + "\n" == text
    assert _code(case) in err.codes
    assert "E9999" not in err.codes
    out = case.with_suffix(".out")
    if BLESS:
        out.write_text(text, encoding="utf-8")
    assert out.exists(), f"no {out.name}: run with ARCHDSL_BLESS=1 and review it"
    assert text == out.read_text(encoding="utf-8")


def test_every_out_has_its_case() -> None:
    stems = {c.stem for c in _cases()}
    stale = [p.name for p in GOLDEN.glob("*.out") if p.stem not in stems]
    assert not stale


def test_symlink_case_is_a_symlink() -> None:
    """Checkouts that flatten symlinks would turn the symlink case into a plain file."""
    assert (GOLDEN / "E0503_symlink" / "spec" / "lib.arch").is_symlink()


def test_every_code_has_a_golden() -> None:
    covered = {_code(c) for c in _cases()}
    assert set(NOT_FROM_A_SPEC) <= set(CODES)
    missing = sorted(set(CODES) - covered - set(NOT_FROM_A_SPEC))
    assert not missing, f"codes without a golden case: {missing}"
    unknown = sorted(covered - set(CODES))
    assert not unknown, f"goldens for codes that do not exist: {unknown}"


def test_docs_list_every_code() -> None:
    assert DOCS.exists(), "docs/errors.md documents every diagnostic code"
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"\bE\d{4}\b", text))
    assert sorted(set(CODES) - documented) == []
    assert sorted(documented - set(CODES)) == []
