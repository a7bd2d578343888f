"""Golden diagnostics: every error code's full rendered text, checked character for character.

The cases live in `golden/` (at least one per code); the mechanism, shared with the hostile
input corpus (tests/hostile/corpus), is described in tests/golden_cases.py.

    ARCHDSL_BLESS=1 python -m pytest tests/frontend/test_frontend_golden.py   # rewrite .out files
"""

from __future__ import annotations

import re
from pathlib import Path

import golden_cases
import pytest

from archdsl.errors_catalog import CODES

GOLDEN = Path(__file__).parent / "golden"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "errors.md"

# Codes no `.arch` file can reach through `archdsl.load`, and why.
NOT_FROM_A_SPEC = {
    "E0901": "raised by a backend while compiling a checked graph, not by the front end",
    "E9999": "an internal error: a spec that triggers it is a bug, tested by the property tests",
}


@pytest.mark.parametrize("case", golden_cases.cases(GOLDEN), ids=lambda p: p.stem)
def test_golden(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    golden_cases.check(case, monkeypatch)


def test_every_out_has_its_case() -> None:
    assert not golden_cases.stale_outs(GOLDEN)


def test_symlink_case_is_a_symlink() -> None:
    """Checkouts that flatten symlinks would turn the symlink case into a plain file."""
    assert (GOLDEN / "E0503_symlink" / "spec" / "lib.arch").is_symlink()


def test_every_code_has_a_golden() -> None:
    covered = {golden_cases.code(c) for c in golden_cases.cases(GOLDEN)}
    assert set(NOT_FROM_A_SPEC) <= set(CODES)
    missing = sorted(set(CODES) - covered - set(NOT_FROM_A_SPEC))
    assert not missing, f"codes without a golden case: {missing}"
    unknown = sorted(covered - set(CODES))
    assert not unknown, f"goldens for codes that do not exist: {unknown}"


def test_docs_list_every_code() -> None:
    assert DOCS.exists(), "docs/errors.md documents every diagnostic code"
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"\b[EW]\d{4}\b", text))
    assert sorted(set(CODES) - documented) == []
    assert sorted(documented - set(CODES)) == []
