"""How a `Program` and an analysis `Report` show in a notebook: a table each, as HTML
(`_repr_html_`) or Markdown (`_repr_markdown_`), Jupyter choosing the richer one.

A program lists its definitions, and for each model it checked the types of its inputs and
outputs, its parameters and its FLOPs (at B = 1, when B is its only symbolic dimension). A report
is `archdsl analyze`'s table, blocks collapsed to one row, with its totals.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from archdsl.cost import analyze_graph, collapse, human, render, row_args, summary_lines
from archdsl.diagnostics import SpecError
from archdsl.graph import GanGraph, Graph

if TYPE_CHECKING:
    from archdsl.cost import Report
    from archdsl.program import Program


def _table(header: list[str], rows: list[list[str]], fmt: str, code: tuple[int, ...] = ()
           ) -> str:
    """An HTML or Markdown table; the columns in `code` set as code."""
    if fmt == "markdown":
        def cell(i: int, c: str) -> str:
            c = c.replace("|", "\\|")
            return f"`{c}`" if i in code and c else c
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(cell(i, c) for i, c in enumerate(r)) + " |"
                                  for r in rows])

    def td(i: int, c: str) -> str:
        c = html.escape(c)
        return f"<td><code>{c}</code></td>" if i in code and c else f"<td>{c}</td>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(td(i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report(rep: Report, fmt: str) -> str:
    if fmt == "markdown":
        return render(rep, "markdown", 1)
    total = rep.total.flops or 1
    rows = [[r.path, r.op, row_args(r),
             " ".join(str(s) for s in r.input_shapes), str(r.output_shape), human(r.params),
             human(r.flops, "FLOP"), f"{100 * r.flops / total:.1f}%"]
            for r in collapse(rep, 1)]
    bind = ", ".join(f"{k}={v}" for k, v in rep.bind.items())
    return (f"<p><b>{html.escape(rep.model)}</b> ({html.escape(bind)})</p>"
            + _table(["layer", "op", "args", "input", "output", "params", "FLOPs", "share"],
                     rows, "html", code=(0,))
            + _table(["total", ""], [list(kv) for kv in summary_lines(rep)], "html"))


def _cost(g: Graph) -> tuple[str, str]:
    try:
        rep = analyze_graph(g)
    except SpecError:  # symbolic sizes other than B: parameters only
        params = sum(math.prod(p.shape) for p in g.parameters().values())
        return f"{params:,}", "needs --bind"
    return f"{rep.total.params:,}", human(rep.total.flops, "FLOP")


def _types(g: Graph, ids: list[int], names: list[str]) -> str:
    return ", ".join(f"{n}: {g.nodes[i].type.dtype}{g.nodes[i].type}"
                     for n, i in zip(names, ids, strict=True))


def program(prog: Program, fmt: str) -> str:
    rows = []
    for d in prog.definitions:
        params = ", ".join(p.name + ("" if p.has_default else " (required)") for p in d.params)
        row = [d.kind, d.name, params, "", "", "", ""]
        g = prog.checked.get(d.name)
        sides = [g.generator, g.discriminator] if isinstance(g, GanGraph) else \
            [g] if isinstance(g, Graph) else []
        if sides:
            row[3] = _types(sides[0], sides[0].inputs, sides[0].input_names)
            row[4] = _types(sides[-1], sides[-1].outputs, sides[-1].output_names)
            costs = [_cost(side) for side in sides]
            row[5] = " + ".join(c[0] for c in costs)
            row[6] = " + ".join(c[1] for c in costs)
        rows.append(row)
    title = f"`{prog.entry}`" if fmt == "markdown" else f"<p><code>{html.escape(prog.entry)}" \
        "</code></p>"
    header = ["kind", "name", "parameters", "inputs", "outputs", "params", "FLOPs (B=1)"]
    return title + ("\n\n" if fmt == "markdown" else "") + _table(header, rows, fmt,
                                                                   code=(1, 3, 4))
