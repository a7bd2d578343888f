"""What every refusal of a spec holds, whatever the spec: diagnostics, none of them internal,
each located inside its file (shared by the property, corpus and payload tests)."""

from __future__ import annotations

import archdsl
from archdsl.diagnostics import Loc


def assert_located(err: archdsl.SpecError, source: str | bytes) -> None:
    """`err` refused `source` (text or bytes): no E9999, every span inside its file."""
    assert err.diagnostics, "a SpecError without diagnostics"
    assert "E9999" not in err.codes, f"internal error for {source!r}:\n{err}"
    for d in err.diagnostics:
        for loc in [d.loc, *(n.loc for n in d.notes)]:
            if loc is None:
                continue
            if d.code == "E0001":
                _assert_inside_bytes(loc, source)
            else:
                assert_inside(err, loc)


def assert_inside(err: archdsl.SpecError, loc: Loc) -> None:
    assert err.sources is not None
    first = err.sources.line(loc.file, loc.line)
    assert first is not None, f"line {loc.line} is outside {loc.file}:\n{err}"
    # SourceMap strips one trailing \r; a column may point just past the line's text
    assert 1 <= loc.col <= len(first) + 2, f"column {loc.col} outside line {loc.line}:\n{err}"
    last = err.sources.line(loc.file, loc.end_line)
    assert last is not None, f"end line {loc.end_line} is outside {loc.file}:\n{err}"
    assert (loc.end_line, loc.end_col) >= (loc.line, loc.col), str(err)
    assert loc.end_col <= len(last) + 2, f"end column {loc.end_col} outside:\n{err}"


def _assert_inside_bytes(loc: Loc, source: str | bytes) -> None:
    """E0001 points at a byte of text that never decoded, so it is checked against the bytes
    (only when they are the spec itself, not a file they import)."""
    if not isinstance(source, bytes) or loc.file != "<spec>":
        return
    raw = source.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    assert 1 <= loc.line <= len(raw)
    assert 1 <= loc.col <= len(raw[loc.line - 1]) + 1


def compile_or_refuse(program: archdsl.Program, backend: str, source: str | bytes
                      ) -> str | None:
    """The module `backend` generates for the program's model, or None when it is refused
    with a located SpecError; any other exception escapes and fails the test."""
    try:
        return archdsl.compile(program, backend=backend)
    except archdsl.SpecError as err:  # a backend's refusal quotes no source: give it the spec's
        assert_located(archdsl.SpecError(err.diagnostics, err.sources or program.sources),
                       source)
        return None
