"""The VS Code extension (editors/vscode) fits the server and the grammar it names, and the
TextMate grammar it ships highlights every spec: through `archdsl.highlight`, the Pygments
lexer built from it, which lexes every spec, example and parseable golden without an error
token and gives each kind of word its class."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from contract import EXAMPLE_FILES
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String

from archdsl.diagnostics import Problem
from archdsl.highlight import ArchLexer, grammar
from archdsl.limits import Limits
from archdsl.parser import KEYWORDS, decode, parse

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "editors" / "vscode"
GRAMMAR = ROOT / "grammars" / "arch.tmLanguage.json"


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_extension_names_its_language_grammar_and_server() -> None:
    package = _json(EXTENSION / "package.json")
    (language,) = package["contributes"]["languages"]
    (contributed,) = package["contributes"]["grammars"]
    assert language["id"] == contributed["language"] == "arch"
    assert language["extensions"] == [".arch"]
    assert package["activationEvents"] == ["onLanguage:arch"]
    shipped = EXTENSION / contributed["path"]
    assert shipped.resolve() == GRAMMAR.resolve()  # the one grammar, linked
    assert contributed["scopeName"] == _json(shipped)["scopeName"] == "source.arch"
    _json(EXTENSION / language["configuration"])
    source = (EXTENSION / package["main"]).read_text(encoding="utf-8")
    assert 'require("vscode-languageclient/node")' in source
    assert "vscode-languageclient" in package["dependencies"]
    assert package["contributes"]["configuration"]["properties"]["archdsl.server.command"][
        "default"] == ["archdsl", "lsp"]


def test_the_server_command_takes_what_the_client_passes() -> None:
    """vscode-languageclient starts a stdio server with `--stdio` after its arguments."""
    done = subprocess.run([sys.executable, "-m", "archdsl.cli", "lsp", "--stdio", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--stdio" in done.stdout


def test_the_language_configuration_knows_comments_and_brackets() -> None:
    config = _json(EXTENSION / "language-configuration.json")
    assert config["comments"]["lineComment"] == "#"
    assert sorted(map(tuple, config["brackets"])) == [("(", ")"), ("[", "]"), ("{", "}")]
    increase = re.compile(config["indentationRules"]["increaseIndentPattern"])
    assert increase.match("model Net {") and increase.match("    for i in range(3) {  # loop")
    assert not increase.match("    x = 1  # {")
    assert re.match(config["indentationRules"]["decreaseIndentPattern"], "    }")


def _patterns(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node[k] for k in ("match", "begin", "end") if k in node]
        return found + [p for v in node.values() for p in _patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


def test_every_grammar_pattern_is_a_python_regex() -> None:
    patterns = _patterns(grammar())
    assert len(patterns) > 20
    for p in patterns:
        re.compile(p)


def _parseable(path: Path) -> str | None:
    try:
        text = decode(path.read_bytes(), path.name)
        parse(text, path.name, Limits())
    except Problem:
        return None
    return text


FILES = sorted((ROOT / "specs").glob("*.arch")) + EXAMPLE_FILES + sorted(
    (ROOT / "tests" / "frontend" / "golden").glob("*.arch"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_spec_lexes_without_an_error_token(path: Path) -> None:
    text = _parseable(path)
    if text is None:
        return  # a refused spec may hold what no grammar knows (`$`, `;`)
    tokens = list(ArchLexer().get_tokens(text))
    assert "".join(t for _, t in tokens) == text + ("" if text.endswith("\n") else "\n")
    assert not [t for t in tokens if t[0] in Error], path


def _kinds(text: str) -> dict[str, object]:
    """Each word's token, runs of one token (a string's quotes and body) joined."""
    runs: list[list] = []
    for kind, value in ArchLexer().get_tokens(text):
        if runs and runs[-1][0] is kind:
            runs[-1][1] += value
        else:
            runs.append([kind, value])
    return {value: kind for kind, value in runs if value.strip()}


def test_each_kind_of_word_has_its_class() -> None:
    kinds = _kinds('import "lib.arch"  # note\nconst D = 1_000\n'
                   'model Net(c: int = 10, p: float = 1e-3) {\n'
                   '    input x: f32[B, 4]\n'
                   '    h = if c > 1 then x else x\n'
                   '    output y = h |> Linear(c, bias=true) |> relu\n}\n')
    assert kinds["import"] in Keyword and kinds['"lib.arch"'] in String
    assert kinds["# note"] in Comment
    assert kinds["model"] in Keyword.Declaration and kinds["Net"] in Name.Class
    assert kinds["1_000"] in Number and kinds["1e-3"] in Number
    assert kinds["int"] in Keyword.Type and kinds["f32"] in Keyword.Type
    assert kinds["Linear"] in Name.Class and kinds["bias"] in Name.Attribute
    assert kinds["|>"] in Operator and kinds["true"] in Keyword.Constant


def test_every_keyword_is_highlighted_as_one() -> None:
    for word in KEYWORDS:
        kind = _kinds(f"x {word} y")[word]
        assert kind in Keyword or kind in Operator.Word, word
