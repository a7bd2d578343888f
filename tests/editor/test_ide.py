"""`archdsl.ide`, the editor's answers, without the protocol: hover, definitions and completion
on the specs and examples, on text that does not parse, and never an exception anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from contract import EXAMPLE_FILES

import archdsl
from archdsl.diagnostics import SpecError
from archdsl.ide import analyze, completions, definition, hover
from archdsl.limits import Limits
from archdsl.program import ParseCache

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.arch"))
GOLDEN = sorted((ROOT / "tests" / "frontend" / "golden").glob("*.arch"))


def _position(path: Path, line: int, word: str, nth: int = 0) -> tuple[int, int]:
    row = path.read_text().split("\n")[line - 1]
    col = -1
    for _ in range(nth + 1):
        col = row.index(word, col + 1)
    return line, col + 1


# (spec, line, word, n-th on the line, what the hover holds)
HOVERS = [
    ("resnet50.arch", 21, "x", 0, "`x: f32[B, 64, 112, 112]`"),
    ("resnet50.arch", 11, "shortcut", 0, "`shortcut: f32[B, 2048, 7, 7]`"),
    ("resnet50.arch", 5, "C", 0, "`C = 1024`"),
    ("resnet50.arch", 6, "out", 0, "`out = width * expansion`, not a tensor"),
    ("resnet50.arch", 22, "MaxPool2d", 0, "→ `f32[B, 64, 56, 56]`"),
    ("resnet50.arch", 25, "Bottleneck", 0, "f32[B, 64, 56, 56] → f32[B, 256, 56, 56]"),
    ("resnet50.arch", 4, "Bottleneck", 0, "called 16 times"),
    ("resnet50.arch", 18, "ResNet50", 0, "25,557,032 parameters"),
    ("gpt2_small.arch", 18, "wte", 0, "`Embedding(50257, dim=768)`"),
    ("gpt2_small.arch", 23, "weight", 0, "`weight: f32[50257, 768]`"),
    ("gpt2_small.arch", 16, "T", 0, "`T` stays symbolic"),
    ("gpt2_small.arch", 8, "MultiHeadAttention", 0, "FLOPs 3,072·B·T·T + 4,718,592·B·T"),
    ("gpt2_small.arch", 8, "causal", 0, "`causal: bool = false`, an argument of"),
    ("seq2seq_transformer.arch", 2, "text_transformer", 0, "defining `EncoderLayer`"),
    ("seq2seq_transformer.arch", 22, "i", 0, "a loop variable"),
    ("digits_gan.arch", 25, "Generator", 0, "model Generator("),
    ("char_lstm.arch", 5, "LSTM", 0, "→ `f32[B, T, 128]`"),
]


@pytest.mark.parametrize(("spec", "line", "word", "nth", "shows"), HOVERS,
                         ids=lambda v: str(v))
def test_hover(spec: str, line: int, word: str, nth: int, shows: str) -> None:
    path = ROOT / "specs" / spec
    a = analyze(str(path), path.read_text())
    found = hover(a, _position(path, line, word, nth))
    assert found is not None and shows in found.markdown, found and found.markdown


def test_definition_across_files_and_of_locals() -> None:
    path = ROOT / "specs" / "seq2seq_transformer.arch"
    a = analyze(str(path), path.read_text())
    loc = definition(a, _position(path, 19, "EncoderLayer"))
    assert loc is not None and Path(loc.file).name == "text_transformer.arch"
    assert (loc.line, loc.col) == (2, 7)
    loc = definition(a, _position(path, 23, "memory"))  # the model's `memory`
    assert loc is not None and (loc.line, loc.col) == (19, 5)
    loc = definition(a, _position(path, 2, "text_transformer"))
    assert loc is not None and Path(loc.file).name == "text_transformer.arch"


def test_definition_and_hover_of_a_constant(tmp_path: Path) -> None:
    (tmp_path / "sizes.arch").write_text("const WIDTH = 64\n")
    main = tmp_path / "main.arch"
    main.write_text('import "sizes.arch"\n\nmodel Net {\n    input x: [B, 4]\n'
                    '    output y = x |> Linear(WIDTH)\n}\n')
    a = analyze(str(main), main.read_text())
    loc = definition(a, _position(main, 5, "WIDTH"))
    assert loc is not None and Path(loc.file).name == "sizes.arch" and (loc.line, loc.col) == (1, 7)
    found = hover(a, _position(main, 5, "WIDTH"))
    assert found is not None and "const WIDTH = 64" in found.markdown


MULTI = """\
block Halves(d: int) {
    input x: [B, T, D]
    lo, hi = chunk(x, 2, dim=2)
    output a = lo |> Linear(d)
    output b = hi
}

model Net {
    input x: [B, 8, 16]
    p, q = split(x, [4, 12], dim=2)
    h, c = LSTMCell(32)(p[:, 0])
    first, second = Halves(6)(x)
    pair = split(q, [5, 7], dim=2)
    u, v = pair
    w = split(q, [5, 7], dim=2)[1]
    for i in range(2) {
        left, right = chunk(first, 2, dim=2)
        first = concat([right, left], dim=2)
    }
    output y = concat([p, q, second, u, v, w, first], dim=2)
    output state = h + c
}
"""

# (line, word, n-th on the line, what the hover holds, (line, column) of the definition)
DESTRUCTURED = [
    (3, "hi", 0, "`hi: f32[B, 8, 8]`", (3, 9)),
    (5, "hi", 0, "`hi: f32[B, 8, 8]`", (3, 9)),
    (10, "q", 0, "`q: f32[B, 8, 12]`", (10, 8)),
    (11, "c", 0, "`c: f32[B, 32]`", (11, 8)),
    (21, "c", 0, "`c: f32[B, 32]`", (11, 8)),
    (12, "second", 0, "`second: f32[B, 8, 8]`", (12, 12)),
    (20, "second", 0, "`second: f32[B, 8, 8]`", (12, 12)),
    (13, "pair", 0, "`pair: (f32[B, 8, 5], f32[B, 8, 7])`", (13, 5)),
    (14, "v", 0, "`v: f32[B, 8, 7]`", (14, 8)),
    (15, "w", 0, "`w: f32[B, 8, 7]`", (15, 5)),
    (17, "right", 0, "`right: f32[B, 8, 3]` (all 2 calls)", (17, 15)),
    (18, "left", 0, "`left: f32[B, 8, 3]` (all 2 calls)", (17, 9)),
    (20, "first", 0, "`first: f32[B, 8, 6]`", (18, 9)),
]


@pytest.mark.parametrize(("line", "word", "nth", "shows", "defined"), DESTRUCTURED,
                         ids=lambda v: str(v))
def test_hover_and_definition_of_destructured_names(line: int, word: str, nth: int, shows: str,
                                                    defined: tuple[int, int],
                                                    tmp_path: Path) -> None:
    path = tmp_path / "multi.arch"
    path.write_text(MULTI)
    a = analyze(str(path), MULTI)
    assert a.diagnostics == []
    found = hover(a, _position(path, line, word, nth))
    assert found is not None and shows in found.markdown, found and found.markdown
    loc = definition(a, _position(path, line, word, nth))
    assert loc is not None and (loc.line, loc.col) == defined
    assert MULTI.split("\n")[loc.line - 1][loc.col - 1:loc.end_col - 1] == word


def test_hover_on_a_multi_output_op_shows_every_part(tmp_path: Path) -> None:
    path = tmp_path / "multi.arch"
    path.write_text(MULTI)
    a = analyze(str(path), MULTI)
    cell = hover(a, _position(path, 11, "LSTMCell"))
    assert cell is not None and "→ `(f32[B, 32], f32[B, 32])`" in cell.markdown
    split = hover(a, _position(path, 10, "split"))
    assert split is not None and "output `(f32[B, 8, 4], f32[B, 8, 12])`" in split.markdown


def test_completion_by_context() -> None:
    def labels(text: str, line: int, col: int) -> set[str]:
        return {c.label for c in completions(analyze("/tmp/doc.arch", text), (line, col))}

    assert {"model", "block", "import"} <= labels("mo", 1, 3)
    body = "block Head(n: int, p: float = 0.1) {\n    input x: [B, F]\n    h = x |> \n"
    inside = labels(body, 3, 14)
    assert {"Linear", "relu", "Head", "x", "n", "p"} <= inside and "model" not in inside
    assert {"loss", "optimizer", "batch"} <= labels("model M {\n    train {\n        \n", 3, 9)
    assert {"n=", "p="} <= labels(body.replace("x |> ", "x |> Head("), 3, 19)
    parts = "model M {\n    input x: [B, 8]\n    a, b = split(x, 4, dim=1)\n    y = \n"
    assert {"a", "b", "x"} <= labels(parts, 4, 9)


def test_an_argument_absent_by_default_is_offered_without_a_value() -> None:
    """`MaxPool2d`'s `stride` defaults to its kernel: completion never writes `None`."""
    text = "model M {\n    input x: [B, 3, 8, 8]\n    y = x |> MaxPool2d(2, \n"
    items = {c.label: c for c in completions(analyze("/tmp/doc.arch", text), (3, 27))}
    assert items["stride="].detail == "stride: ints = …"
    assert items["stride="].snippet == "stride=${1:stride}"
    assert items["padding="].snippet == "padding=${1:0}"


def test_an_unchanged_import_is_not_parsed_again(tmp_path: Path) -> None:
    (tmp_path / "lib.arch").write_text("block Lib {\n    input x: [B, 4]\n    output y = x\n}\n")
    main = tmp_path / "main.arch"
    text = 'import "lib.arch"\n\nmodel Net {\n    input x: [B, 4]\n    output y = x |> Lib\n}\n'
    cache = ParseCache()
    first = analyze(str(main), text, cache=cache)
    second = analyze(str(main), text.replace("y = x", "y = x  # edited"), cache=cache)
    lib = str(tmp_path / "lib.arch")
    assert first.program and second.program
    assert second.program.scopes[lib].definitions["Lib"] is \
        first.program.scopes[lib].definitions["Lib"]
    assert second.program.scopes[str(main)].definitions["Net"] is not \
        first.program.scopes[str(main)].definitions["Net"]


# (spec, what the edit replaces, with what): typing in one item, around items, a new item, and
# words a split between items would read differently (`modelZ` is a name after an item)
EDITS = [
    ("resnet50.arch", "Linear(classes)", "Linear(classes + 1)"),
    ("resnet50.arch", "x = x |> Bottleneck(64) * 3", "y = x |> Bottleneck(64) * 3\n    x = y"),
    ("resnet50.arch", "\nmodel ResNet50", "\n# a comment\nmodel ResNet50"),
    ("resnet50.arch", "    output y = relu", "    output y = rel"),
    ("resnet50.arch", "}\n\nmodel", "}\nconst k = 3\nmodel"),
    ("resnet50.arch", "}\n\nmodel ResNet50", "}\n\nmodelResNet50"),
    ("digits_gan.arch", "model Discriminator", "model Critic"),
    ("digits_gan.arch", "gan ", "block Extra {\n    input x: [B, 1]\n    output y = x\n}\n\ngan "),
    ("gpt2_small.arch", "heads: int = 12,", "heads: int = 5,"),
]


@pytest.mark.parametrize(("spec", "old", "new"), EDITS)
def test_a_reparse_after_an_edit_finds_what_a_parse_from_scratch_finds(spec: str, old: str,
                                                                      new: str) -> None:
    """The cache parses again only the lines between items the edit left alone, and checks
    again only when a definition changed; every answer equals a fresh analysis's."""
    path = ROOT / "specs" / spec
    text = path.read_text()
    assert old in text
    cache = ParseCache()
    before = analyze(str(path), text, cache=cache)
    edited = text.replace(old, new, 1)
    after, fresh = analyze(str(path), edited, cache=cache), analyze(str(path), edited)
    assert (after.module and after.module.items) == (fresh.module and fresh.module.items)
    assert [d.render() for d in after.diagnostics] == [d.render() for d in fresh.diagnostics]
    assert [g.model_dump_json() for g in after.graphs] == \
        [g.model_dump_json() for g in fresh.graphs]
    assert before.module is not None
    if after.module is not None:  # the items that end above the edit are the same objects
        line = text[:text.index(old)].count("\n") + 1
        items = before.module.items
        above = [a for a, b in zip(items, items[1:], strict=False) if b.loc.line < line]
        assert all(a is b for a, b in zip(above, after.module.items, strict=False))


def test_an_edit_outside_every_definition_is_not_checked_again() -> None:
    path = ROOT / "specs" / "resnet50.arch"
    text = path.read_text()
    cache = ParseCache()
    first = analyze(str(path), text, cache=cache)
    second = analyze(str(path), f"{text}# a comment at the end\n", cache=cache)
    assert second.module is not None and first.module is not None
    assert all(a is b for a, b in zip(first.module.items, second.module.items, strict=True))
    assert second.graphs[0] is first.graphs[0]
    assert second.graphs[0]._origin[0] is second.program  # graph.traced() uses the new text
    third = analyze(str(path), text.replace("= 1000", "= 10"), cache=cache)
    assert third.graphs[0] is not first.graphs[0] and third.graphs[0].params["classes"] == 10


def test_block_calls_are_reused_while_only_the_model_changes() -> None:
    """An edit in the model stamps out the block calls the last check recorded; an edit in
    the block records them again."""
    path = ROOT / "specs" / "resnet50.arch"
    text = path.read_text()
    cache = ParseCache()
    first = analyze(str(path), text, cache=cache).program
    in_model = analyze(str(path), text.replace("= 1000", "= 10"), cache=cache).program
    in_block = analyze(str(path), text.replace("out = width", "out = 1 * width"),
                       cache=cache).program
    assert first and in_model and in_block and first.calls
    assert in_model.calls is first.calls
    assert in_block.calls is not first.calls


def test_a_check_is_reused_only_under_the_same_limits() -> None:
    path = str(ROOT / "specs" / "resnet50.arch")
    cache = ParseCache()
    assert archdsl.load(path, parse_cache=cache).checked
    with pytest.raises(SpecError) as err:
        archdsl.load(path, parse_cache=cache, limits=Limits(max_nodes=50))
    assert [d.code for d in err.value.diagnostics] == ["E0801"]


def test_text_that_does_not_parse_still_gets_diagnostics_and_completion() -> None:
    text = "model Net {\n    input x: [B, 4]\n    h = x |> Lin\n"
    a = analyze("/tmp/broken.arch", text)
    assert a.module is None and [d.code for d in a.diagnostics] == ["E0104"]
    assert hover(a, (3, 5)) is None
    assert "Linear" in {c.label for c in completions(a, (3, 17))}


@pytest.mark.parametrize("path", SPECS + EXAMPLE_FILES + GOLDEN, ids=lambda p: p.stem)
def test_no_question_fails_anywhere(path: Path) -> None:
    """Hover, definition and completion at the start and end of every word of the file."""
    text = path.read_bytes().decode("utf-8", "replace")
    a = analyze(str(path), text)
    for number, line in enumerate(text.split("\n"), 1):
        for col in range(1, len(line) + 2):
            if col == 1 or (line[col - 2:col - 1].isalnum() != line[col - 1:col].isalnum()):
                hover(a, (number, col))
                definition(a, (number, col))
                completions(a, (number, col))
