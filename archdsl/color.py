"""Colour for rendered diagnostics on a terminal, in rustc's scheme: the severity and code in
red (yellow for a warning), the gutter and arrows in blue, the carets in the severity's colour
(a note's in blue). Only a terminal gets colour, and never when `NO_COLOR` is set
(https://no-color.org), so piped output, logs and goldens stay plain text."""

from __future__ import annotations

import os
import re
from typing import TextIO

RESET = "\x1b[0m"
BOLD = "\x1b[1m"
RED = "\x1b[1;31m"
YELLOW = "\x1b[1;33m"
BLUE = "\x1b[1;34m"
CYAN = "\x1b[1;36m"

_HEAD = re.compile(r"^(error|warning)(\[[A-Z]\d{4}\])(: .*)$")
_NOTE = re.compile(r"^(note)(: .*)$")
_ARROW = re.compile(r"^(\s*-->)(.*)$")
_SOURCE = re.compile(r"^(\d+ \|)(.*)$")
_CARETS = re.compile(r"^(\s+\|)( *)(\^+)(.*)$")
_BAR = re.compile(r"^(\s+\|)$")
_EQUALS = re.compile(r"^(\s*= )(hint:)?(.*)$")


def wanted(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str) -> str:
    """Rendered diagnostics (`SpecError.render()`, `Diagnostic.render()`) with colour."""
    out = []
    accent = RED
    for line in text.split("\n"):
        if m := _HEAD.match(line):
            accent = RED if m[1] == "error" else YELLOW
            line = f"{accent}{m[1]}{m[2]}{RESET}{BOLD}{m[3]}{RESET}"
        elif m := _NOTE.match(line):
            accent = BLUE
            line = f"{BOLD}{m[1]}{m[2]}{RESET}"
        elif m := _ARROW.match(line):
            line = f"{BLUE}{m[1]}{RESET}{m[2]}"
        elif m := _SOURCE.match(line):
            line = f"{BLUE}{m[1]}{RESET}{m[2]}"
        elif m := _CARETS.match(line):
            line = f"{BLUE}{m[1]}{RESET}{m[2]}{accent}{m[3]}{m[4]}{RESET}"
        elif m := _BAR.match(line):
            line = f"{BLUE}{m[1]}{RESET}"
        elif m := _EQUALS.match(line):
            line = f"{BLUE}{m[1]}{RESET}{CYAN}{m[2]}{RESET}{m[3]}" if m[2] else \
                f"{BLUE}{m[1]}{RESET}{m[3]}"
        out.append(line)
    return "\n".join(out)


def for_stream(text: str, stream: TextIO) -> str:
    return paint(text) if wanted(stream) else text
