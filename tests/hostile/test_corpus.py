"""The hostile-input corpus: broken and malicious specs, each refused with its golden diagnostic.

`corpus/<category>/` holds the cases (lexical, syntax, names, values, shapes, graph, limits,
imports, injection), run by the golden mechanism of tests/golden_cases.py. `prefixes/` holds,
for a few valid specs, the first diagnostic of every prefix of the text (the spec cut after
each character): code and location, or `ok` when the prefix is itself a valid spec.

    ARCHDSL_BLESS=1 python -m pytest tests/hostile/test_corpus.py   # rewrite the goldens
"""

from __future__ import annotations

from pathlib import Path

import golden_cases
import pytest
from diagnostic_checks import assert_located

import archdsl

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
CATEGORIES = ["lexical", "syntax", "names", "values", "shapes", "graph", "limits", "imports",
              "injection"]
CASES = [case for c in CATEGORIES for case in golden_cases.cases(CORPUS / c)]
# Copies of three of the contract's examples (../shared/examples), kept here so that their
# goldens do not depend on what lies beside the checkout.
PREFIXED = ["cnn_digits.arch", "digits_gan.arch", "resnet_block.arch"]


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_case(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    err = golden_cases.check(case, monkeypatch)
    assert_located(err, golden_cases.entry(case).read_bytes())


def test_categories_are_the_folders() -> None:
    """Spec cases by category, plus the command-line cases (test_cli_corpus.py) and the
    specs that must compile (test_compile_corpus.py)."""
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted([*CATEGORIES, "cli", "compile"])
    for c in CATEGORIES:
        assert len(golden_cases.cases(CORPUS / c)) >= 4, f"{c}: too few cases to show coverage"
        assert not golden_cases.stale_outs(CORPUS / c)


def test_symlink_out_of_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A symlink made at test time (a checkout may flatten a committed one) that leads out of
    the spec's folder is refused like the path it leads to, with the same golden text."""
    case = tmp_path / "E0503_symlink_out"
    (case / "spec").mkdir(parents=True)
    (tmp_path / "secret.arch").write_text("const K = 1\n", encoding="utf-8")
    (case / "spec" / "lib.arch").symlink_to(tmp_path / "secret.arch")
    (case / "spec" / "main.arch").write_text(
        'import "lib.arch"\n\nmodel Net {\n    input x: [B, 4]\n    output y = x\n}\n',
        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    err = golden_cases.refusal(case)
    golden_cases.compare(HERE / "symlink_out.out", err.render() + "\n")


def _first_line(text: str) -> str:
    try:
        archdsl.load(text)
    except archdsl.SpecError as err:
        assert_located(err, text)
        d = err.diagnostics[0]
        return f"{d.code} {d.loc.line}:{d.loc.col}" if d.loc else d.code
    return "ok"


@pytest.mark.parametrize("name", PREFIXED)
def test_every_prefix(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every truncation of a valid spec is refused with a located error (or is valid)."""
    monkeypatch.chdir(HERE / "prefixes")
    text = (HERE / "prefixes" / name).read_text(encoding="utf-8")
    lines = [f"{end:>5} {_first_line(text[:end])}" for end in range(len(text) + 1)]
    assert lines[-1].endswith(" ok")
    golden_cases.compare(HERE / "prefixes" / f"{Path(name).stem}.out", "\n".join(lines) + "\n")
