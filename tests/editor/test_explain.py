"""`archdsl explain`: every code has an entry, and every entry's example really gets its code
(run through the entry's command), while its fix gets no diagnostic at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from archdsl.errors_catalog import CODES, EXPLANATIONS
from archdsl.explain import outcome

WITHOUT_EXAMPLE = {"E9999": "an internal error: a spec that gets it is a bug to fix"}
EXAMPLES = sorted(set(CODES) - set(WITHOUT_EXAMPLE))


def test_every_code_is_explained() -> None:
    assert sorted(EXPLANATIONS) == sorted(CODES)
    for code, entry in EXPLANATIONS.items():
        assert len(entry.text) > 80, code
        assert bool(entry.example) == (code not in WITHOUT_EXAMPLE), code


@pytest.mark.parametrize("code", EXAMPLES)
def test_the_example_gets_its_code_and_the_fix_nothing(code: str) -> None:
    entry = EXPLANATIONS[code]
    diagnostics, rendered = outcome(entry, entry.example, entry.encoding)
    assert code in [d.code for d in diagnostics], rendered
    assert f"[{code}]" in rendered and "example.arch" in rendered
    diagnostics, rendered = outcome(entry, entry.fix)
    assert diagnostics == [], rendered


def _explain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archdsl.cli", "explain", *args],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent)


def test_the_command_prints_the_entry_with_the_real_report() -> None:
    done = _explain("e0302")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"E0302: {CODES['E0302']}\n")
    assert "    error[E0302]: shapes do not match for `+`" in out
    assert "     --> example.arch:4:21" in out
    assert out.index("reports:") < out.index("Fixed:")


def test_the_command_lists_codes_and_refuses_unknown_ones() -> None:
    listing = _explain()
    assert listing.returncode == 0
    assert [line.split()[0] for line in listing.stdout.splitlines()] == list(CODES)
    unknown = _explain("E0399")
    assert unknown.returncode == 2 and "did you mean E0309?" in unknown.stderr
