"""`archdsl lsp` end to end: a real server process driven over stdio by pytest-lsp's client.

Diagnostics with their codes appear on open and clear when the text is fixed; hover, go to
definition, completion and formatting answer on the contract's examples. Expected shapes and
figures are the language's (a ResNet block's output, a convolution's weight); layer paths are
never written here, since their naming may change.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import pytest_lsp
from contract import EXAMPLES
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

import archdsl
from archdsl.formatter import format_text
from archdsl.ops import REGISTRY
from archdsl.ops.registry import REQUIRED

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the contract's examples, so that tests may edit files beside them."""
    out = tmp_path_factory.mktemp("examples")
    for p in EXAMPLES.glob("*.arch"):
        shutil.copy(p, out / p.name)
    return out


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "archdsl.cli", "lsp"]))
async def client(lsp_client: LanguageClient, folder: Path):
    await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=pytest_lsp.client_capabilities("visual-studio-code"),
        root_uri=folder.as_uri()))
    yield
    await lsp_client.shutdown_session()


_version = iter(range(1, 10**6))


def open_doc(client: LanguageClient, path: Path, text: str | None = None) -> str:
    uri = path.as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=uri, language_id="arch", version=next(_version),
        text=path.read_text(encoding="utf-8") if text is None else text)))
    return uri


def change(client: LanguageClient, uri: str, text: str) -> None:
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=next(_version)),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))


async def diagnostics(client: LanguageClient, uri: str,
                      until: Callable[[Sequence[lsp.Diagnostic]], bool]
                      ) -> Sequence[lsp.Diagnostic]:
    for _ in range(1500):
        found = client.diagnostics.get(uri)
        if found is not None and until(found):
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"diagnostics of {uri}: {client.diagnostics.get(uri)}")


def at(text: str, line: int, word: str, nth: int = 0) -> lsp.Position:
    """The position of the `nth` `word` on 1-based `line` of `text`."""
    row = text.split("\n")[line - 1]
    col = -1
    for _ in range(nth + 1):
        col = row.index(word, col + 1)
    return lsp.Position(line=line - 1, character=col)


async def hover_text(client: LanguageClient, uri: str, position: lsp.Position) -> str:
    result = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=position))
    assert result is not None
    assert isinstance(result.contents, lsp.MarkupContent)
    return result.contents.value


# ---- diagnostics ---------------------------------------------------------------------------------
RESIDUAL = """block Residual(width: int, stride: int = 1) {
    input x: [B, C, H, W]
    h = x |> Conv2d(width, 3, stride=stride, padding=1)
    output y = relu(h + x)
}

model Net {
    input image: [B, 64, 56, 56]
    output y = image |> Residual(128, stride=2)
}
"""


async def test_a_diagnostic_with_its_code_at_its_range_then_cleared(client: LanguageClient,
                                                                    folder: Path) -> None:
    uri = open_doc(client, folder / "residual.arch", RESIDUAL)
    (d,) = await diagnostics(client, uri, lambda ds: bool(ds))
    assert d.code == "E0302" and d.source == "archdsl"
    assert d.severity == lsp.DiagnosticSeverity.Error
    assert (d.range.start.line, d.range.start.character) == (3, 20)  # `h + x`, line 4
    assert (d.range.end.line, d.range.end.character) == (3, 25)
    assert "[B, 128, 28, 28]" in d.message and "hint:" in d.message
    assert d.related_information and d.related_information[0].location.range.start.line == 8
    fixed = RESIDUAL.replace("relu(h + x)", "relu(h + (x |> Conv2d(width, 1, stride=stride)))")
    change(client, uri, fixed)
    assert await diagnostics(client, uri, lambda ds: not ds) == ()


async def test_syntax_errors_and_warnings_are_published(client: LanguageClient,
                                                        folder: Path) -> None:
    uri = open_doc(client, folder / "broken.arch",
                   "model Net {\n    input x: [B, 4]\n    h = x |> Linear(4\n    output y = h\n}\n")
    (d,) = await diagnostics(client, uri, lambda ds: bool(ds))
    assert d.code == "E0104" and (d.range.start.line, d.range.start.character) == (2, 19)
    change(client, uri, "model Net(pre: bool = false) {\n    input x: [B, 4]\n"
                        "    output y = if pre then x else x * 2.0 |> ReLU\n}\n")
    (w,) = await diagnostics(client, uri, lambda ds: bool(ds) and ds[0].code == "W0001")
    assert w.severity == lsp.DiagnosticSeverity.Warning


async def test_an_unsaved_import_is_read_from_the_editor(client: LanguageClient,
                                                         folder: Path) -> None:
    """The seq2seq example imports text_transformer.arch: breaking the imported file in the
    editor, unsaved, re-checks the example against the broken text, shown at its import."""
    main = open_doc(client, folder / "seq2seq_transformer.arch")
    assert await diagnostics(client, main, lambda ds: not ds) == ()
    lib_path = folder / "text_transformer.arch"
    lib = open_doc(client, lib_path)
    broken = lib_path.read_text().replace("input x: [B, T, d_model]", "input x: [B, T, 7]")
    change(client, lib, broken)
    found = await diagnostics(client, main, lambda ds: bool(ds))
    assert {d.code for d in found} <= {"E0303", "E0301", "E0302"}
    assert all(d.range.start.line == 1 for d in found)  # the import statement
    assert lib_path.read_text() != broken  # nothing was saved
    change(client, lib, lib_path.read_text())
    assert await diagnostics(client, main, lambda ds: not ds) == ()


# ---- hover ---------------------------------------------------------------------------------------
async def test_hover_shows_types_and_shapes(client: LanguageClient, folder: Path) -> None:
    path = folder / "resnet_block.arch"
    text = path.read_text()
    uri = open_doc(client, path)
    assert "`x: f32[B, 64, 8, 8]`" in await hover_text(client, uri, at(text, 21, "x"))
    assert "`image: f32[B, 3, 32, 32]`" in await hover_text(client, uri, at(text, 17, "image"))
    # `h` in the block: one shape per width, with the calls that have it
    shown = await hover_text(client, uri, at(text, 6, "h"))
    for width, size in ((16, 32), (32, 16), (64, 8)):
        assert f"`h: f32[B, {width}, {size}, {size}]`" in shown
    # a parameter: its values in the calls
    shown = await hover_text(client, uri, at(text, 2, "channels"))
    assert "`channels = 16`" in shown and "`channels = 64`" in shown


async def test_hover_on_a_layer_shows_parameters_flops_and_output(client: LanguageClient,
                                                                  folder: Path) -> None:
    path = folder / "resnet_block.arch"
    text = path.read_text()
    uri = open_doc(client, path)
    shown = await hover_text(client, uri, at(text, 17, "Conv2d"))
    g = archdsl.load(path).graph()
    (stem,) = [layer for layer in g.layers.values() if layer.loc and layer.loc.line == 17
               and layer.op == "Conv2d"]
    params = sum(math.prod(p.shape) for p in stem.params)
    assert "Conv2d(out, kernel, stride=1" in shown  # the signature, from the registry
    assert f"{params:,} parameters" in shown and "[16, 3, 3, 3]" in shown
    assert "→ `f32[B, 16, 32, 32]`" in shown
    assert "FLOPs 884,736·B" in shown  # 2 · 16·32·32 · 3·3·3 per example


# ---- definition, completion, formatting ---------------------------------------------------------
async def test_go_to_definition(client: LanguageClient, folder: Path) -> None:
    path = folder / "seq2seq_transformer.arch"
    text = path.read_text()
    uri = open_doc(client, path)
    line = next(i for i, row in enumerate(text.split("\n"), 1) if "EncoderLayer(" in row)
    found = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        position=at(text, line, "EncoderLayer")))
    assert isinstance(found, lsp.Location)
    assert found.uri == (folder / "text_transformer.arch").as_uri()
    target = (folder / "text_transformer.arch").read_text().split("\n")[found.range.start.line]
    assert target.startswith("block EncoderLayer(")
    # a local name: its binding
    line = next(i for i, row in enumerate(text.split("\n"), 1) if "y |> Linear" in row)
    found = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=at(text, line, "y")))
    assert found.range.start.line + 1 < line and "y = " in text.split("\n")[found.range.start.line]


SPLIT = """model Net {
    input x: [B, 8, 16]
    q, k = split(x, [4, 12], dim=2)
    output y = concat([k, q], dim=2)
}
"""


async def test_hover_and_definition_of_a_destructured_name(client: LanguageClient,
                                                           folder: Path) -> None:
    uri = open_doc(client, folder / "split.arch", SPLIT)
    assert await diagnostics(client, uri, lambda ds: not ds) == ()
    assert "`k: f32[B, 8, 12]`" in await hover_text(client, uri, at(SPLIT, 4, "k"))
    assert "`q: f32[B, 8, 4]`" in await hover_text(client, uri, at(SPLIT, 3, "q"))
    found = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=at(SPLIT, 4, "k")))
    bound = at(SPLIT, 3, "k")  # the `k` of `q, k = ...`
    assert isinstance(found, lsp.Location) and found.range == lsp.Range(
        start=bound, end=lsp.Position(line=bound.line, character=bound.character + 1))


async def _complete(client: LanguageClient, uri: str, position: lsp.Position
                    ) -> dict[str, lsp.CompletionItem]:
    result = await client.text_document_completion_async(lsp.CompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=position))
    assert isinstance(result, lsp.CompletionList)
    return {item.label: item for item in result.items}


async def test_completion_of_layers_and_their_arguments(client: LanguageClient,
                                                        folder: Path) -> None:
    text = "model Net {\n    input x: [B, 3, 32, 32]\n    h = x |> Conv2d(16, \n}\n"
    uri = open_doc(client, folder / "typing.arch", text)
    items = await _complete(client, uri, lsp.Position(line=2, character=9))
    assert items["Conv2d"].detail == _signature("Conv2d")
    assert 'padding_mode="zeros")' in items["Conv2d"].detail  # LANGUAGE.md 10.3
    assert items["Conv2d"].insert_text == "Conv2d(${1:out}, ${2:kernel})"
    assert items["relu"].kind == lsp.CompletionItemKind.Function
    assert items["x"].kind == lsp.CompletionItemKind.Variable
    items = await _complete(client, uri, lsp.Position(line=2, character=24))
    assert items["stride="].detail == "stride: ints = 1"
    assert items["padding="].detail == "padding: padding = 0"
    assert items["padding_mode="].insert_text == 'padding_mode=${1:"zeros"}'


def _signature(name: str) -> str:
    """An op's signature as its declaration says: a function's tensors, then the required
    arguments, then the others with their defaults as a spec writes them (`…`: none)."""
    def literal(v: object) -> str:
        if v is None:
            return "…"
        if isinstance(v, bool):
            return "true" if v else "false"
        return f'"{v}"' if isinstance(v, str) else repr(v)

    op = REGISTRY[name]
    args = [a.name if a.default is REQUIRED else f"{a.name}={literal(a.default)}"
            for a in op.args]
    variadic = [f"{op.variadic}..."] if op.variadic else []
    tensors = list(op.inputs) if op.kind == "function" else []
    return f"{name}({', '.join(tensors + variadic + args)})"


async def test_completion_offers_every_layer_and_function(client: LanguageClient,
                                                          folder: Path) -> None:
    """Section 10's layers and functions among them, each with its declared signature; a
    function's snippet asks for its tensors, a layer's for its required arguments."""
    text = "model Net {\n    input x: [B, 8, 16]\n    h = x |> \n}\n"
    uri = open_doc(client, folder / "every_op.arch", text)
    items = await _complete(client, uri, lsp.Position(line=2, character=13))
    kinds = {"layer": lsp.CompletionItemKind.Class, "function": lsp.CompletionItemKind.Function}
    public = [op for op in REGISTRY.values()
              if not op.meta.get("internal") and op.name not in ("input", "param")]
    assert {"RMSNorm", "Attention", "LSTMCell", "GroupNorm", "where", "split", "chunk",
            "masked_fill", "randn_like"} <= {op.name for op in public}
    for op in public:
        assert items[op.name].kind == kinds[op.kind], op.name
        assert items[op.name].detail == _signature(op.name), op.name
    assert items["where"].insert_text == "where(${1:cond}, ${2:a}, ${3:b})"
    assert items["Attention"].insert_text == "Attention(${1:heads})"
    assert "None" not in items["Attention"].detail  # kv_heads=… (its heads), not None


async def test_completion_in_an_example(client: LanguageClient, folder: Path) -> None:
    path = folder / "resnet_block.arch"
    text = path.read_text()
    uri = open_doc(client, path)
    line = next(i for i, row in enumerate(text.split("\n")) if "BasicBlock(32, stride=2)" in row)
    row = text.split("\n")[line]
    items = await _complete(client, uri, lsp.Position(line=line, character=row.index("32")))
    assert items["channels="].detail == "channels: int" and "stride=" in items
    items = await _complete(client, uri, lsp.Position(line=line, character=row.index("|>") + 3))
    assert items["BasicBlock"].kind == lsp.CompletionItemKind.Module
    assert items["BasicBlock"].detail == "block BasicBlock(channels: int, stride: int = 1)"
    assert items["GlobalAvgPool"].kind == lsp.CompletionItemKind.Class


async def test_formatting_is_fmt(client: LanguageClient, folder: Path) -> None:
    text = "model Net{\n  input x:[B,4]\n  output y=x|>Linear( 2 )\n}\n"
    uri = open_doc(client, folder / "messy.arch", text)
    edits = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)))
    assert edits is not None and len(edits) == 1
    assert edits[0].new_text == format_text(text)
    assert edits[0].range.start == lsp.Position(line=0, character=0)
    path = folder / "cnn_digits.arch"
    uri = open_doc(client, path)
    assert not await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)))
