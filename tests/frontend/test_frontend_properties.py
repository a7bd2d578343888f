"""Whatever text or bytes `archdsl.load` gets, the only exception that escapes is `SpecError`;
no diagnostic is an internal error (E9999); every diagnostic's span lies inside its file. What
loads also compiles in every backend, or is refused with a SpecError; and the command line
never shows a traceback.

Inputs: sentences of the project's own grammar (`hypothesis.extra.lark.from_lark`), random
text and bytes, mutations of the example specs (tokens deleted, duplicated, swapped or
replaced, characters inserted) and every prefix of a spec's bytes (the prefixes of the text
are tests/hostile/test_corpus.py's goldens). Seeds are fixed (`derandomize`), so a failure
reproduces; the budget is about a minute and a half in all.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from importlib import resources
from pathlib import Path

import pytest
from contract import EXAMPLES as CONTRACT_EXAMPLES
from diagnostic_checks import assert_located, compile_or_refuse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark
from lark.lexer import PatternStr
from typer.testing import CliRunner

import archdsl
from archdsl.api import BACKENDS
from archdsl.cli import app
from archdsl.limits import Limits
from archdsl.ops import REGISTRY

EXAMPLES = CONTRACT_EXAMPLES
ROOT = Path(__file__).resolve().parents[2]
CORPUS_FILES = sorted(EXAMPLES.glob("*.arch")) + sorted((ROOT / "specs").glob("*.arch"))
CORPUS = [p.read_text(encoding="utf-8") for p in CORPUS_FILES]

COMMON = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.filter_too_much])


@pytest.fixture(scope="module", autouse=True)
def _workdir(tmp_path_factory: pytest.TempPathFactory):
    """Text specs import relative to the working directory: make it a folder holding copies
    of the corpus, so mutated imports still find their files, and nothing else."""
    folder = tmp_path_factory.mktemp("props")
    for p in CORPUS_FILES:
        shutil.copy(p, folder / p.name)
    with contextlib.chdir(folder):
        yield


# Mutations of the 1.1B-parameter Llama would export gigabytes to ONNX: past this many
# parameters a compile is refused (located, as any refusal), and that is what is checked
LIMITS = Limits(max_params=200_000_000)


def check(source: str | bytes) -> None:
    """Load, and hold every property of a failed load; compile what loads in every backend."""
    try:
        program = archdsl.load(source, limits=LIMITS)
    except archdsl.SpecError as err:
        assert_located(err, source)
        return
    for backend in BACKENDS:
        compile_or_refuse(program, backend, source)


# ---- sentences of the grammar ----------------------------------------------------------------
def _grammar() -> Lark:
    text = resources.files("archdsl.grammars").joinpath("arch.lark").read_text(encoding="utf-8")
    return Lark(text, parser="lalr", lexer="contextual")


GRAMMAR = _grammar()
WORDS = sorted({*REGISTRY, "x", "y", "h", "B", "T", "C", "H", "W", "Net", "Block", "min", "max",
                "SGD", "Adam", "AdamW", "int", "float", "str", "bool", "f32", "f16", "i64",
                "loss", "optimizer", "batch", "epochs", "generator", "discriminator", "weight",
                "dim", "kernel", "stride", "padding", "heads", "out", "bias"})
_PATTERN = {t.name: t.pattern for t in GRAMMAR.terminals}


def _terminal(name: str) -> st.SearchStrategy[str]:
    pattern = _PATTERN[name]
    if isinstance(pattern, PatternStr):
        base = st.just(pattern.value)
    else:
        # printable ASCII: random Unicode and control characters are the random-text tests' job
        base = st.from_regex(pattern.to_regexp(), fullmatch=True, alphabet=st.characters(
            min_codepoint=32, max_codepoint=126))
    if name == "NAME":
        base = st.sampled_from(WORDS) | base
    elif name == "INT":
        base = st.integers(0, 40).map(str) | base
    elif name == "STRING":
        base = st.sampled_from(['"same"', '"valid"', '"mse"', '"cnn_digits.arch"',
                                '"text_transformer.arch"', '"a\\"b"']) | base
    return base


def spaced(name: str) -> st.SearchStrategy[str]:
    """The terminal followed by a separator, so neighbours never fuse (`model` `Net`)."""
    if name == "WS":
        return st.sampled_from([" ", "\n", "\t", "\r\n"])
    return _terminal(name).map(lambda s: s + ("\n" if name == "COMMENT" else " "))


SENTENCES = from_lark(GRAMMAR, start="start",
                      explicit={t.name: spaced(t.name) for t in GRAMMAR.terminals})
RAW_SENTENCES = from_lark(GRAMMAR, start="start")


@settings(COMMON, max_examples=300)
@given(SENTENCES)
def test_sentences_of_the_grammar(text: str) -> None:
    check(text)


@settings(COMMON, max_examples=50)
@given(RAW_SENTENCES)
def test_sentences_of_the_grammar_without_separators(text: str) -> None:
    check(text)


# ---- every op called with odd arguments -------------------------------------------------------
USER_OPS = sorted(n for n, op in REGISTRY.items() if not op.meta.get("internal"))
VALUES = st.sampled_from(["0", "1", "-1", "3", "2.5", "1e-3", "true", "false", '"same"', '"a"',
                          "(2, 2)", "(1, 2, 3)", "()", "[1, -1]", "[B, -1]", "[]", "B", "T",
                          "x", "[x, x]", "ReLU", "Linear(2)", "1 // 0", "2 ** 70", "-x"])


@st.composite
def calls(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(USER_OPS))
    op = REGISTRY[name]
    names = [a.name for a in op.args] + ["bogus"]
    args = draw(st.lists(VALUES, max_size=4))
    kwargs = draw(st.dictionaries(st.sampled_from(names), VALUES, max_size=3))
    inside = ", ".join([*args, *(f"{k}={v}" for k, v in kwargs.items())])
    shape = draw(st.sampled_from(["[B, 4]", "[B, 3, 8, 8]", "[B, T, 8]", "i64[B, T]", "[4]",
                                  "[B, 2, 9]"]))
    if op.kind == "function":
        if op.tensor_list_input:
            call = f"{name}([x, x]{', ' + inside if inside else ''})"
        else:
            call = f"{name}(x{', ' + inside if inside else ''})"
    elif not op.inputs:
        call = f"x + {name}({inside})"
    else:
        apply = draw(st.sampled_from(["x |> {}", "{}(x)", "{}(x, x)", "{}(x, x, x)"]))
        call = apply.format(f"{name}({inside})" if inside or draw(st.booleans()) else name)
    loop = draw(st.sampled_from(["", "    for i in range({}) {{\n        x = x\n    }}\n"]))
    return (f"model Net {{\n    input x: {shape}\n" + loop.format(inside)
            + f"    output y = {call}\n}}\n")


@settings(COMMON, max_examples=600)
@given(calls())
def test_calls_with_odd_arguments(text: str) -> None:
    check(text)


# ---- random text and bytes ------------------------------------------------------------------
SYMBOLS = list('{}()[]:,=|>-+*/%@.#"\\\'\n\t ;$`') + ["|>", "**", "//", "\r\n", "\u202e", "\x00",
                                                     "\ufeff", "é", "😀"]
TEXT = st.lists(st.sampled_from(SYMBOLS) | st.characters(), max_size=120).map("".join)
WORDY = st.lists(st.sampled_from(WORDS + ["model", "block", "gan", "input", "output", "assert",
                                          "for", "in", "range", "if", "then", "else", "train",
                                          "const", "import", "1", "0", "2.5", "1e-3", "-1"])
                 | st.sampled_from(SYMBOLS), max_size=60).map(" ".join)


@settings(COMMON, max_examples=200)
@given(TEXT | WORDY)
def test_random_text(text: str) -> None:
    check(text)


@settings(COMMON, max_examples=150)
@given(st.binary(max_size=200) | TEXT.map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_random_bytes(data: bytes) -> None:
    check(data)


# ---- mutations of valid specs ---------------------------------------------------------------
TOKEN = re.compile(r'"[^"\n]*"?|#[^\n]*|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?|[A-Za-z_]\w*'
                   r"|\|>|\*\*|//|[=!<>]=|\s+|.", re.S)
TOKENS = [TOKEN.findall(text) for text in CORPUS]
NUMBERS = st.sampled_from(["0", "1", "-1", "3", "7", "1000", "2**40", "1.5", "B", "T"])


@st.composite
def mutated(draw: st.DrawFn) -> str:
    i = draw(st.integers(0, len(TOKENS) - 1))
    toks = list(TOKENS[i])
    vocabulary = sorted(set(toks))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(toks) - 1))
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "replace",
                                     "number"]))
        if kind == "delete":
            del toks[at]
        elif kind == "duplicate":
            toks.insert(at, toks[at])
        elif kind == "swap":
            other = draw(st.integers(0, len(toks) - 1))
            toks[at], toks[other] = toks[other], toks[at]
        elif kind == "insert":
            toks.insert(at, draw(st.sampled_from(SYMBOLS) | st.characters()))
        elif kind == "replace":
            toks[at] = draw(st.sampled_from(vocabulary))
        else:
            numbers = [k for k, t in enumerate(toks) if t[:1].isdigit()]
            if numbers:
                toks[draw(st.sampled_from(numbers))] = draw(NUMBERS)
    return "".join(toks)


@settings(COMMON, max_examples=500)
@given(mutated())
def test_mutated_specs(text: str) -> None:
    check(text)


def test_every_prefix_as_bytes() -> None:
    data = (EXAMPLES / "resnet_block.arch").read_text(encoding="utf-8").encode()
    data = "é ".encode() + data  # a multi-byte character to cut in half
    for end in range(0, len(data) + 1, 3):
        check(data[:end])


def test_corpus_loads() -> None:
    """The mutations start from specs that load."""
    for text in CORPUS:
        archdsl.load(text)


# ---- the command line ----------------------------------------------------------------------
CLI = CliRunner()


@settings(COMMON, max_examples=40)
@given(st.sampled_from(["check", "compile"]), mutated() | TEXT | WORDY)
def test_command_line_never_shows_a_traceback(command: str, text: str) -> None:
    Path("cli.arch").write_text(text, encoding="utf-8", errors="surrogatepass")
    result = CLI.invoke(app, [command, "cli.arch"])
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
