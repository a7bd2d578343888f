"""`archdsl fmt`: the canonical layout (cases in `fmt/`: `X.arch` formats to `X.expected`),
idempotent, comments kept, and never a change of meaning: every spec, every contract example and
every parseable file of the golden and hostile corpora elaborates to the same typed graph (or
the same diagnostics) before and after formatting."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import golden_cases
import pytest
from contract import EXAMPLE_FILES
from frontend.test_frontend_properties import COMMON, SENTENCES
from hypothesis import given, settings

import archdsl
from archdsl import syntax as ast
from archdsl.diagnostics import Problem
from archdsl.formatter import format_text
from archdsl.limits import Limits
from archdsl.parser import decode, parse

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted((Path(__file__).parent / "fmt").glob("*.arch"))
SPECS = sorted((ROOT / "specs").rglob("*.arch"))
GOLDEN = ROOT / "tests" / "frontend" / "golden"
HOSTILE = ROOT / "tests" / "hostile" / "corpus"
COMMAND_LINES = HOSTILE / "cli"


def _parses(path: Path) -> str | None:
    try:
        text = decode(path.read_bytes(), path.name)
        parse(text, path.name, Limits())
    except Problem:
        return None
    return text


@dataclass(frozen=True)
class CorpusSpec:
    """A spec of a corpus: `entry`, loaded from the folder that holds `case` (one file, or
    the folder of files it needs)."""

    case: Path
    entry: Path

    @property
    def id(self) -> str:
        return self.entry.relative_to(self.case.parent.parent).with_suffix("").as_posix()


def _spec_cases(folder: Path) -> list[CorpusSpec]:
    """A folder of spec cases (the golden one, a hostile category): a spec, or a folder whose
    entry is its `main.arch`."""
    return [CorpusSpec(c, golden_cases.entry(c)) for c in golden_cases.cases(folder)]


def _command_line_specs() -> list[CorpusSpec]:
    """The command-line corpus: a case is a command line, not a spec. Its specs are the
    `.arch` files in its folder and in `_shared` (which cases copy in): each one is loaded
    on its own, beside the files of its folder."""
    return [CorpusSpec(f.parent, f) for d in sorted(COMMAND_LINES.iterdir()) if d.is_dir()
            for f in sorted(d.glob("*.arch")) if not f.is_symlink()]


def _spec_files(case: Path) -> list[Path]:
    return [case] if case.is_file() else sorted(
        f for f in case.rglob("*.arch") if not f.is_symlink())


def _corpus() -> list[CorpusSpec]:
    folders = [GOLDEN, *sorted(p for p in HOSTILE.iterdir() if p.is_dir() and p != COMMAND_LINES)]
    specs = [s for folder in folders for s in _spec_cases(folder)] + _command_line_specs()
    # fmt refuses a file that does not parse, so only specs with a parseable file can change
    return [s for s in specs if any(_parses(f) is not None for f in _spec_files(s.case))]


CORPUS = _corpus()
# every parseable file of the corpora, entries or not (an imported `lib.arch`)
CORPUS_FILES = sorted({f for spec in CORPUS for f in _spec_files(spec.case)
                       if _parses(f) is not None})


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_layout(case: Path) -> None:
    expected = case.with_suffix(".expected").read_text(encoding="utf-8")
    assert format_text(case.read_text(encoding="utf-8")) == expected
    assert format_text(expected) == expected


def test_a_formatted_spec_never_warns_about_pipe_after_if() -> None:
    text = (Path(__file__).parent / "fmt" / "if_source.arch").read_text(encoding="utf-8")
    assert [w.code for w in archdsl.load(text).warnings] == ["W0001"]
    assert archdsl.load(format_text(text)).warnings == []


def test_every_comment_is_kept() -> None:
    text = (Path(__file__).parent / "fmt" / "comments.arch").read_text(encoding="utf-8")
    comments = [line[line.index("#"):].strip() for line in text.splitlines() if "#" in line]
    out = format_text(text)
    for c in comments:
        assert c in out


# ---- meaning unchanged ------------------------------------------------------------------------
def _strip_locs(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_locs(v) for k, v in value.items() if k != "loc"}
    if isinstance(value, list):
        return [_strip_locs(v) for v in value]
    return value


def _meaning(entry: Path) -> Any:
    """Every checkable target's typed graph without source locations, or the diagnostics
    without theirs; and the warnings, but W0001, which fmt answers by bracketing the `if`."""
    try:
        program = archdsl.load(str(entry))
    except archdsl.SpecError as err:
        return [(d.code, d.message, d.label, d.hint) for d in err.diagnostics]
    graphs = {}
    for d in program.definitions:
        if d.kind in ("model", "gan") and all(p.has_default for p in d.params):
            graphs[d.name] = _strip_locs(program.graph(d.name).model_dump(mode="json"))
    return graphs, [(w.code, w.message) for w in program.warnings if w.code != "W0001"]


def _formatted_copy(case: Path, into: Path) -> None:
    """A copy of the case in `into` with every parseable `.arch` file in it formatted."""
    if case.is_dir():
        shutil.copytree(case, into / case.name, symlinks=True)
    else:
        shutil.copy(case, into / case.name)
    for f in _spec_files(into / case.name):
        text = _parses(f)
        if text is not None:
            f.write_text(format_text(text), encoding="utf-8")


@pytest.mark.parametrize("spec", SPECS + EXAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_formatting_keeps_the_typed_graph(spec: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # the examples import each other: format the folder, compare the one spec
    folder = tmp_path / "before"
    shutil.copytree(spec.parent, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.chdir(folder)
    before = _meaning(Path(spec.name))
    for f in folder.glob("*.arch"):
        f.write_text(format_text(f.read_text(encoding="utf-8")), encoding="utf-8")
    graphs, _ = _meaning(Path(spec.name))
    assert graphs and (graphs, before[1]) == before


@pytest.mark.parametrize("spec", CORPUS, ids=lambda s: s.id)
def test_formatting_keeps_the_corpus_meaning(spec: CorpusSpec, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    entry = spec.entry.relative_to(spec.case.parent)
    monkeypatch.chdir(spec.case.parent)
    before = _meaning(entry)
    _formatted_copy(spec.case, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _meaning(entry) == before


def test_most_of_the_corpus_is_covered() -> None:
    folders = {s.entry.relative_to(ROOT).parts[:4] for s in CORPUS}
    assert len(CORPUS) > 100 and len(CORPUS_FILES) > len(CORPUS)
    assert ("tests", "hostile", "corpus", "cli") in folders  # the command lines' specs too


# ---- idempotent, and every sentence of the grammar keeps its tree -----------------------------
def _tree(node: Any) -> Any:
    if isinstance(node, ast.Module):
        return [_tree(i) for i in node.items]
    if isinstance(node, ast.Node):
        return (type(node).__name__, *((s, _tree(getattr(node, s))) for s in node.__slots__
                                       if not s.endswith(("loc", "locs")) and s != "file"))
    if isinstance(node, tuple):
        return tuple(_tree(x) for x in node)
    return node


@pytest.mark.parametrize("spec", SPECS + EXAMPLE_FILES + CASES + CORPUS_FILES,
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_idempotent_and_the_same_tree(spec: Path) -> None:
    text = _parses(spec)
    if text is None:
        return
    out = format_text(text)
    assert format_text(out) == out
    assert _tree(parse(out, "x", Limits())) == _tree(parse(text, "x", Limits()))


@settings(COMMON, max_examples=300)
@given(SENTENCES)
def test_sentences_of_the_grammar_keep_their_tree(text: str) -> None:
    """Random sentences of the grammar, comments anywhere between tokens."""
    try:
        before = parse(text, "x", Limits())
    except Problem:
        return
    out = format_text(text)
    assert _tree(parse(out, "x", Limits())) == _tree(before)
    assert format_text(out) == out


# ---- the command --------------------------------------------------------------------------------
def _fmt(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archdsl.cli", "fmt", *args], cwd=cwd,
                          capture_output=True, text=True, input=stdin, timeout=120)


def test_check_passes_on_every_spec_and_example(tmp_path: Path) -> None:
    done = _fmt("--check", str(ROOT / "specs"), *map(str, EXAMPLE_FILES), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_rewrites_in_place_and_check_reports(tmp_path: Path) -> None:
    case = CASES[0]
    spec = tmp_path / "a.arch"
    shutil.copy(case, spec)
    done = _fmt("--check", "a.arch", cwd=tmp_path)
    assert done.returncode == 1 and "would reformat a.arch" in done.stderr
    assert spec.read_text() == case.read_text()
    diff = _fmt("--diff", "a.arch", cwd=tmp_path)
    assert diff.returncode == 1 and diff.stdout.startswith("--- a.arch\n+++ a.arch\n")
    done = _fmt(".", cwd=tmp_path)  # a folder: every spec under it
    assert done.returncode == 0 and "reformatted a.arch" in done.stderr
    assert spec.read_text() == case.with_suffix(".expected").read_text()
    assert _fmt("--check", "a.arch", cwd=tmp_path).returncode == 0


def test_standard_input_to_standard_output(tmp_path: Path) -> None:
    done = _fmt("-", cwd=tmp_path, stdin=CASES[0].read_text())
    assert done.returncode == 0 and done.stdout == CASES[0].with_suffix(".expected").read_text()


def test_a_spec_that_does_not_parse_is_left_alone(tmp_path: Path) -> None:
    spec = tmp_path / "bad.arch"
    spec.write_text("model Net {\n    output y = x |> Linear(4\n")
    done = _fmt("bad.arch", cwd=tmp_path)
    assert done.returncode == 1 and "error[E01" in done.stderr and "Traceback" not in done.stderr
    assert spec.read_text() == "model Net {\n    output y = x |> Linear(4\n"
    assert _fmt("missing.arch", cwd=tmp_path).returncode == 2
