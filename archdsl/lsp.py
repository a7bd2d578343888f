"""`archdsl lsp`: the language server (pygls, over standard input and output).

Diagnostics with their codes on open and on every change; hover (a name's type and shape, a
layer's parameters, FLOPs and output, per call of its block); go to definition; completion of
layers, functions and their arguments from the op registry; formatting by `archdsl fmt`. The
answers come from `archdsl.ide`; this module speaks the protocol.

Re-checking does only what it must: a change waits `DEBOUNCE` seconds for the next keystroke;
a text already checked is not checked again; one `ParseCache` for the session keeps unchanged
imports, parses again only the lines between the items an edit left alone, skips the check
while every definition is the same, and reuses block calls while only a model changed; open
documents are read from the editor, not the disk, and a change re-checks the open documents
that import the changed one.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from archdsl import __version__, ide
from archdsl import syntax as ast
from archdsl.diagnostics import Diagnostic, Loc, Problem
from archdsl.formatter import format_text
from archdsl.program import ParseCache

DEBOUNCE = 0.15  # seconds without a change before a document is checked again


def path_of(uri: str) -> str:
    """A `file:` URI's path; any other document is named as if it were a file here."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return os.path.normpath(unquote(parsed.path))
    name = os.path.basename(unquote(parsed.path)) or "untitled"
    return os.path.join(os.getcwd(), name if name.endswith(".arch") else name + ".arch")


def uri_of(path: str) -> str:
    from pathlib import Path
    return Path(os.path.abspath(path)).as_uri()


@dataclass
class _Checked:
    text: str
    analysis: ide.Analysis


class ArchServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("archdsl", __version__)
        self.cache = ParseCache()
        self.checked: dict[str, _Checked] = {}  # uri -> the last analysis
        self.published: dict[str, ide.Analysis] = {}  # uri -> what its diagnostics come from
        self.pending: dict[str, asyncio.Task[None]] = {}

    # -- checking -------------------------------------------------------------------------
    def overlay(self) -> dict[str, str]:
        return {os.path.realpath(path_of(uri)): doc.source
                for uri, doc in self.workspace.text_documents.items()}

    def analysis(self, uri: str) -> ide.Analysis:
        """The analysis of the document's current text, made now if it is not there yet."""
        doc = self.workspace.get_text_document(uri)
        done = self.checked.get(uri)
        if done is None or done.text != doc.source:
            analysis = ide.analyze(path_of(uri), doc.source, self.overlay(), self.cache)
            done = self.checked[uri] = _Checked(doc.source, analysis)
        return done.analysis

    def check(self, uri: str) -> None:
        if uri not in self.workspace.text_documents:
            return
        analysis = self.analysis(uri)
        if self.published.get(uri) is analysis:
            return  # the same text and imports: the published diagnostics stand
        self.published[uri] = analysis
        doc = self.workspace.get_text_document(uri)
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, version=doc.version,
            diagnostics=[self.diagnostic(analysis, d) for d in analysis.diagnostics]))

    def dependents(self, uri: str) -> list[str]:
        """Open documents whose last analysis read the file of `uri`."""
        path = os.path.realpath(path_of(uri))
        return [u for u, c in self.checked.items() if u != uri and
                path in {os.path.realpath(f) for f in c.analysis.files}]

    def schedule(self, uri: str, delay: float) -> None:
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()

        async def later() -> None:
            await asyncio.sleep(delay)
            self.pending.pop(uri, None)
            self.check(uri)
            for other in self.dependents(uri):
                self.checked.pop(other, None)
                self.check(other)

        self.pending[uri] = asyncio.ensure_future(later())

    # -- positions --------------------------------------------------------------------------
    def line_text(self, analysis: ide.Analysis, file: str, line: int) -> str:
        if file == analysis.file:
            lines = analysis.text.split("\n")
            return lines[line - 1] if 1 <= line <= len(lines) else ""
        sources = analysis.program.sources if analysis.program else None
        return (sources.line(file, line) if sources else None) or ""

    def position(self, analysis: ide.Analysis, file: str, line: int, col: int) -> lsp.Position:
        text = self.line_text(analysis, file, line)
        units = self.workspace.position_codec.client_num_units(text[:max(col - 1, 0)])
        return lsp.Position(line=max(line - 1, 0), character=units)

    def range(self, analysis: ide.Analysis, loc: Loc | None) -> lsp.Range:
        if loc is None:
            return lsp.Range(start=lsp.Position(line=0, character=0),
                             end=lsp.Position(line=0, character=0))
        return lsp.Range(start=self.position(analysis, loc.file, loc.line, loc.col),
                         end=self.position(analysis, loc.file, loc.end_line, loc.end_col))

    def where(self, uri: str, position: lsp.Position) -> tuple[ide.Analysis, ide.Pos]:
        analysis = self.analysis(uri)
        lines = analysis.text.split("\n")
        text = lines[position.line] if position.line < len(lines) else ""
        codec = self.workspace.position_codec
        col = next((i for i in range(len(text) + 1)
                    if codec.client_num_units(text[:i]) >= position.character), len(text))
        return analysis, (position.line + 1, col + 1)

    # -- conversions ------------------------------------------------------------------------
    def diagnostic(self, analysis: ide.Analysis, d: Diagnostic) -> lsp.Diagnostic:
        message = d.message + (f": {d.label}" if d.label else "") + \
            (f"\nhint: {d.hint}" if d.hint else "")
        loc = d.loc
        related = [lsp.DiagnosticRelatedInformation(
            location=lsp.Location(uri=uri_of(n.loc.file), range=self.range(analysis, n.loc)),
            message=n.message) for n in d.notes]
        if loc is not None and loc.file != analysis.file:  # in an imported file: at its import
            related.insert(0, lsp.DiagnosticRelatedInformation(
                location=lsp.Location(uri=uri_of(loc.file), range=self.range(analysis, loc)),
                message=d.message))
            message = f"in {loc.file}:{loc.line}:{loc.col}: {message}"
            loc = _import_of(analysis, loc.file)
        severity = lsp.DiagnosticSeverity.Warning if d.severity == "warning" else \
            lsp.DiagnosticSeverity.Error
        return lsp.Diagnostic(range=self.range(analysis, loc), message=message, code=d.code,
                              source="archdsl", severity=severity,
                              related_information=related or None)

    def location(self, analysis: ide.Analysis, loc: Loc) -> lsp.Location:
        return lsp.Location(uri=uri_of(loc.file), range=self.range(analysis, loc))


def _import_of(analysis: ide.Analysis, file: str) -> Loc | None:
    """The import statement of the document through which `file` was loaded, if any."""
    module = analysis.module
    if module is None:
        return None
    imports = [i for i in module.items if isinstance(i, ast.Import)]
    here = os.path.dirname(analysis.file)
    for item in imports:
        if os.path.normpath(os.path.join(here, item.path)) == os.path.normpath(file):
            return item.loc
    return imports[0].loc if imports else None


_KINDS = {"layer": lsp.CompletionItemKind.Class, "function": lsp.CompletionItemKind.Function,
          "definition": lsp.CompletionItemKind.Module,
          "constant": lsp.CompletionItemKind.Constant,
          "variable": lsp.CompletionItemKind.Variable,
          "keyword": lsp.CompletionItemKind.Keyword,
          "argument": lsp.CompletionItemKind.Property,
          "setting": lsp.CompletionItemKind.Property}


def make_server() -> ArchServer:
    server = ArchServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: ArchServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: ArchServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, DEBOUNCE)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: ArchServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: ArchServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        ls.checked.pop(uri, None)
        ls.published.pop(uri, None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri,
                                                                          diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: ArchServer, params: lsp.HoverParams) -> lsp.Hover | None:
        analysis, pos = ls.where(params.text_document.uri, params.position)
        found = ide.hover(analysis, pos)
        if found is None:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown,
                                                    value=found.markdown),
                         range=ls.range(analysis, found.span))

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: ArchServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        analysis, pos = ls.where(params.text_document.uri, params.position)
        loc = ide.definition(analysis, pos)
        return ls.location(analysis, loc) if loc is not None else None

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=[">", "(", ",", " "]))
    def completion(ls: ArchServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        analysis, pos = ls.where(params.text_document.uri, params.position)
        snippets = _snippets(ls)
        items = [lsp.CompletionItem(
            label=c.label, kind=_KINDS.get(c.kind), detail=c.detail or None,
            documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown,
                                            value=c.documentation) if c.documentation else None,
            insert_text=c.snippet if snippets and c.snippet else None,
            insert_text_format=lsp.InsertTextFormat.Snippet if snippets and c.snippet else None)
            for c in ide.completions(analysis, pos)]
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: ArchServer, params: lsp.DocumentFormattingParams
                   ) -> list[lsp.TextEdit] | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        try:
            new = format_text(doc.source, path_of(doc.uri))
        except (Problem, RecursionError):
            return None  # the diagnostics already say why it does not parse
        if new == doc.source:
            return []
        lines = doc.source.split("\n")
        end = lsp.Position(line=len(lines) - 1,
                           character=ls.workspace.position_codec.client_num_units(lines[-1]))
        return [lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=0, character=0), end=end),
                             new_text=new)]

    return server


def _snippets(ls: ArchServer) -> bool:
    caps: Any = ls.client_capabilities
    try:
        return bool(caps.text_document.completion.completion_item.snippet_support)
    except AttributeError:
        return False


def main() -> None:
    make_server().start_io()
