"""`archdsl explain CODE`: a diagnostic code's catalogue entry, as `rustc --explain` prints one:
what it means, a spec that gets it with what archdsl reports for it (run now, so the text is
the real one), and the spec fixed."""

from __future__ import annotations

import contextlib
import tempfile
import textwrap
from pathlib import Path

from archdsl.api import backend, graph, load, located
from archdsl.color import paint
from archdsl.diagnostics import Diagnostic, SpecError, suggest
from archdsl.errors_catalog import CODES, EXPLANATIONS, Explanation

EXAMPLE = "example.arch"


def normalize(code: str) -> str | None:
    """`e0302`, `0302` and `E0302` name E0302; None for a code that does not exist."""
    code = code.strip().upper()
    if code.isdigit():
        code = "E" + code.zfill(4)
    return code if code in CODES else None


def near(code: str) -> str | None:
    return suggest(code.strip().upper(), CODES)


def outcome(entry: Explanation, spec: str, encoding: str = "utf-8"
            ) -> tuple[list[Diagnostic], str]:
    """What `entry.command` reports for `spec` saved as `example.arch` in an empty folder: its
    diagnostics (or warnings) and their rendered text."""
    args = entry.command.split()[1:]
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        Path(EXAMPLE).write_bytes(spec.encode(encoding))
        try:
            if args[0] == "check":
                program = load(EXAMPLE)
            else:
                program = load(EXAMPLE, check=False)
                model = args[args.index("--model") + 1] if "--model" in args else None
                name = args[args.index("--backend") + 1] if "--backend" in args else "torch"
                g = graph(program, model)
                with located(program):
                    backend(name).generate(g)
        except SpecError as err:
            return err.diagnostics, err.render()
        return program.warnings, "\n\n".join(w.render(program.sources)
                                            for w in program.warnings)


def explain(code: str, color: bool = False) -> str:
    """The entry of a code that exists (see `normalize`): plain text, or with the specs
    highlighted and the report coloured for a terminal."""
    entry = EXPLANATIONS[code]
    spec, report = (_highlighted, paint) if color else (str, str)
    paragraphs = [textwrap.fill(p, 88) for p in entry.text.split("\n\n")]
    out = [f"{code}: {CODES[code]}", "", *"\n\n".join(paragraphs).split("\n")]
    if entry.example:
        _, reported = outcome(entry, entry.example, entry.encoding)
        saved = f" (saved as {entry.encoding})" if entry.encoding != "utf-8" else ""
        out += ["", f"For example, `{entry.command}` with this {EXAMPLE}{saved}:", "",
                _indent(spec(entry.example)), "", "reports:", "", _indent(report(reported))]
    if entry.fix and entry.fix != entry.example:
        out += ["", "Fixed:", "", _indent(spec(entry.fix))]
    return "\n".join(out).rstrip() + "\n"


def catalogue() -> str:
    return "".join(f"{code}  {meaning}\n" for code, meaning in CODES.items())


def _highlighted(spec: str) -> str:
    from archdsl.highlight import terminal
    return terminal(spec)


def _indent(text: str) -> str:
    return textwrap.indent(text.rstrip("\n"), "    ", lambda line: bool(line.strip()))
