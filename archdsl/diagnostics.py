"""Located diagnostics: the one error type a user of archdsl ever sees for a bad spec.

Every stage reports through `Diagnostic`; `SpecError` carries all of them at once. The rendered
form follows LANGUAGE.md section 9:

    error[E0302]: shapes do not match for `+`
      --> specs/resnet.arch:14:21
       |
    14 |     output y = relu(h + x)
       |                     ^^^^^ left is [B, 128, 28, 28], right is [B, 64, 56, 56]
       = hint: a shortcut needs a projection when the stride or the channel count changes
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from archdsl.errors_catalog import CODES
from archdsl.records import Record


class Loc(Record):
    """A span in a source file; lines and columns count from 1, `end_col` is exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Note(Record):
    """A secondary location (the earlier definition, the other model of a gan)."""

    message: str
    loc: Loc


class Diagnostic(Record):
    code: str
    message: str
    loc: Loc | None = None
    label: str = ""
    hint: str | None = None
    severity: str = "error"
    notes: list[Note] = []

    def key(self) -> tuple:
        """What makes two diagnostics the same, as a hashable value (for de-duplication)."""
        return (self.code, self.message, self.severity, self.label, self.hint, _loc_key(self.loc),
                tuple((n.message, _loc_key(n.loc)) for n in self.notes))

    @property
    def file(self) -> str | None:
        return self.loc.file if self.loc else None

    @property
    def line(self) -> int | None:
        return self.loc.line if self.loc else None

    @property
    def col(self) -> int | None:
        return self.loc.col if self.loc else None

    @property
    def end(self) -> tuple[int, int] | None:
        return (self.loc.end_line, self.loc.end_col) if self.loc else None

    def render(self, sources: SourceMap | None = None) -> str:
        head = f"{self.severity}[{self.code}]: {self.message}"
        lines = [head]
        if self.loc is not None:
            lines += _excerpt(self.loc, self.label, sources)
        elif self.label:
            lines.append(f"  = {self.label}")
        for note in self.notes:
            lines.append(f"note: {note.message}")
            lines += _excerpt(note.loc, "", sources)
        if self.hint:
            gutter = " " * (len(str(self.loc.line)) + 1 if self.loc else 2)
            lines.append(f"{gutter}= hint: {self.hint}")
        return "\n".join(lines)


def _loc_key(loc: Loc | None) -> tuple | None:
    return None if loc is None else (loc.file, loc.line, loc.col, loc.end_line, loc.end_col)


class SourceMap:
    """File name -> text, so diagnostics can quote the offending line."""

    def __init__(self) -> None:
        self._texts: dict[str, list[str]] = {}

    def add(self, name: str, text: str) -> None:
        self._texts[name] = text.split("\n")

    def line(self, name: str, number: int) -> str | None:
        lines = self._texts.get(name)
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1].rstrip("\r")


def _printable(text: str) -> str:
    """Show control and bidi characters as escapes so an excerpt cannot reorder or hide text."""
    out = []
    for ch in text:
        if ch == "\t":
            out.append(" ")
        elif not ch.isprintable():  # control, bidi, zero-width and line-separator characters
            out.append("?")
        else:
            out.append(ch)
    return "".join(out)


def _width(text: str) -> int:
    """Terminal columns: wide (CJK, fullwidth) characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _excerpt(loc: Loc, label: str, sources: SourceMap | None) -> list[str]:
    width = len(str(loc.line))
    pad = " " * width
    out = [f"{pad}--> {loc}"]
    text = sources.line(loc.file, loc.line) if sources else None
    if text is None:
        if label:
            out.append(f"{pad} = {label}")
        return out
    start = 0
    if len(text) > 200:  # keep enormous one-line specs readable
        start = max(0, loc.col - 60)
        text = text[start : start + 160]
    text = _printable(text)
    col = loc.col - start
    end = loc.end_col - start if loc.end_line == loc.line else len(text) + 1
    span = max(1, min(end, len(text) + 1) - col)
    out.append(f"{pad} |")
    out.append(f"{loc.line} | {text}")
    carets = " " * _width(text[:col - 1]) + "^" * max(1, _width(text[col - 1:col - 1 + span]))
    out.append(f"{pad} | {carets}" + (f" {label}" if label else ""))
    return out


class SpecError(Exception):
    """Raised for any problem in a spec; `diagnostics` holds every independent error found."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: SourceMap | None = None):
        self.diagnostics = list(diagnostics)
        self.sources = sources
        super().__init__(self.render())

    def render(self) -> str:
        return "\n\n".join(d.render(self.sources) for d in self.diagnostics)

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]


class Reporter:
    """Collects diagnostics for one run; `raise_if_errors` ends the run with all of them."""

    def __init__(self, sources: SourceMap) -> None:
        self.sources = sources
        self.diagnostics: list[Diagnostic] = []
        self._seen: set[tuple] = set()

    def add(self, diag: Diagnostic) -> None:
        assert diag.code in CODES, diag.code
        key = diag.key()
        if key not in self._seen:
            self._seen.add(key)
            self.diagnostics.append(diag)

    def error(self, code: str, message: str, loc: Loc | None, label: str = "",
              hint: str | None = None, notes: list[Note] | None = None) -> None:
        self.add(Diagnostic(code=code, message=message, loc=loc, label=label, hint=hint,
                            notes=notes or []))

    def warning(self, code: str, message: str, loc: Loc | None, label: str = "",
                hint: str | None = None) -> None:
        self.add(Diagnostic(code=code, message=message, loc=loc, label=label, hint=hint,
                            severity="warning"))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise SpecError(self.errors, self.sources)


class Problem(Exception):
    """Raised inside a rule (shape, argument, scalar) and located by whoever applied the rule."""

    def __init__(self, code: str, message: str, label: str = "", hint: str | None = None,
                 loc: Loc | None = None, notes: list[Note] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.label = label
        self.hint = hint
        self.loc = loc
        self.notes = notes or []

    def at(self, loc: Loc | None) -> Diagnostic:
        return Diagnostic(code=self.code, message=self.message, loc=self.loc or loc,
                          label=self.label, hint=self.hint, notes=self.notes)


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate by edit distance, if it is close enough to be a likely typo."""
    best, best_d = None, None
    within = max(1, len(name) // 3)
    for cand in candidates:
        if abs(len(cand) - len(name)) > within:  # the distance is at least this
            continue
        d = _distance(name.lower(), cand.lower())
        if best_d is None or d < best_d:
            best, best_d = cand, d
    if best is None or best_d is None:
        return None
    return best if best_d <= max(1, len(name) // 3) else None


def _distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
