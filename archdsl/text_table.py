"""The plain text of `analyze`'s table, written directly: rich's layout, without its cost.

rich measures, styles and wraps every cell, which for a 10,000-row table takes seconds. When
every cell is plain ASCII that rich would print as it is (no markup, no emoji code) and the
table fits the console's width unwrapped, rich's output is fully determined: columns as wide
as their widest cell plus one space each side, its `HEAVY_HEAD` box, the title left-justified
and padded to the table's width. `lay_out` writes exactly that, and returns None for any other
table, which rich then lays out (wrapping a column, a title or a line).
"""

from __future__ import annotations

import re

# Text rich would change: a markup tag (`[b]`, `[#fff]`, `[/]`, `[@click]`), an escape, a pair
# of colons that may name an emoji, and anything outside printable ASCII.
_UNSAFE = re.compile(r"\[[a-z#/@]|\\|:.*:|[^ -~]")


def plain(text: str) -> bool:
    """Whether rich prints `text` exactly as it is given."""
    return _UNSAFE.search(text) is None


def lay_out(title: str, header: list[str], right: list[bool], body: list[list[str]],
            footer: list[str], width: int) -> str | None:
    """rich's rendering of a `Table(title=title, title_justify="left")` with one column per
    `header` entry (right-justified where `right` says), the rows of `body`, a section line,
    then `footer`, on a console `width` characters wide; None where rich could lay it out
    otherwise."""
    rows = [header, *body, footer]
    widths = [0] * len(header)
    for row in rows:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    table_width = sum(widths) + 3 * len(widths) + 1
    if table_width > width or len(title) > table_width:
        return None
    if not all(plain(cell) for row in rows for cell in row) or not plain(title):
        return None

    def line(left: str, fill: str, cross: str, end: str) -> str:
        return left + cross.join(fill * (w + 2) for w in widths) + end

    def cells(edge: str, row: list[str]) -> str:
        parts = [cell.rjust(w) if r else cell.ljust(w)
                 for cell, w, r in zip(row, widths, right, strict=True)]
        return f"{edge} " + f" {edge} ".join(parts) + f" {edge}"

    out = [title.ljust(table_width), line("┏", "━", "┳", "┓"), cells("┃", header),
           line("┡", "━", "╇", "┩")]
    out += [cells("│", row) for row in body]
    if body:
        out.append(line("├", "─", "┼", "┤"))
    out += [cells("│", footer), line("└", "─", "┴", "┘")]
    return "\n".join(out)
