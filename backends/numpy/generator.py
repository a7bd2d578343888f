"""`generate(graph)`: a readable Python module for the NumPy backend.

Python prepares every line (names, literals, wrapping, shape comments); the Jinja2 template
`templates/module.py.j2` only lays them out. A generated class is a `Module` like the
interpreter `runtime.Model`, with the same tables, kernels and order, so both compute the same
numbers.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from typing import Any

import jinja2

from archdsl.graph import FLOAT_DTYPES, GanGraph, Graph
from archdsl.symbolic import Sym, format_dim, format_shape

from .runtime import tables

WIDTH = 91  # 99 columns less the template's 8-space indent
_RESERVED = {"self", "t", "dims", "grads", "np", "Module", "build"}
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          undefined=jinja2.StrictUndefined, trim_blocks=True,
                          lstrip_blocks=True, keep_trailing_newline=True)


def _safe(name: str, taken: set[str]) -> str:
    """`name` as a Python identifier clear of keywords, our own names and `taken`."""
    while (keyword.iskeyword(name) or name in _RESERVED | taken
           or re.fullmatch(r"[vd]\d+|d_.*|_g\d+", name)):
        name = f"_{name}" if name.startswith("d_") else f"{name}_"  # `d_x_` is still `d_.*`
    return name


class _Names:
    """Python names: symbols and inputs keep theirs (made safe), node values are v<id>."""

    def __init__(self, graph: Graph):
        taken: set[str] = set()
        self.symbols = {s: _safe(s, taken) for s in graph.symbols}
        taken |= set(self.symbols.values())
        self.inputs: dict[int, str] = {}
        for i, name in zip(graph.inputs, graph.input_names, strict=True):
            self.inputs[i] = _safe(name, taken)
            taken.add(self.inputs[i])

    def value(self, i: int) -> str:
        return self.inputs.get(i, f"v{i}")

    def grad(self, i: int) -> str:
        return f"d_{self.inputs[i]}" if i in self.inputs else f"d{i}"

    def literal(self, v: Any) -> str:
        """Python source for a value; symbolic sizes become expressions over the symbols."""
        if isinstance(v, Sym):
            return format_dim(v.substitute({s: Sym.symbol(p) for s, p in self.symbols.items()}))
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k!r}: {self.literal(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(self.literal(x) for x in v) + "]"
        if isinstance(v, tuple):
            return "(" + ", ".join(self.literal(x) for x in v) + ("," if len(v) == 1 else "") + ")"
        return repr(v)


def _pack(head: str, items: list[str], tail: str) -> list[str]:
    """head + items + tail on one line, or, when that is too long, the items on lines of their
    own under a 4-space hanging indent (`head` ends with the opening bracket)."""
    one = head + ", ".join(items) + tail
    if len(one) <= WIDTH or not items:
        return [one]
    lines, line = [head.rstrip()], "    "
    for k, item in enumerate(items):
        last = k == len(items) - 1
        piece = item + ("" if last else ", ")
        if line.strip() and len(line) + len(piece.rstrip()) + (len(tail) if last else 0) > WIDTH:
            lines.append(line.rstrip())
            line = "    "
        line += piece
    return [*lines, line + tail]


def _entry(key: str, items: list[str], brackets: str) -> list[str]:
    return _pack(f"{key!r}: {brackets[0]}", items, f"{brackets[1]},")


def _source_lines(graph: Graph) -> dict[tuple[str, int], str]:
    """The spec's source lines, to head each group of nodes with the line they came from."""
    out: dict[tuple[str, int], str] = {}
    for node in graph.nodes:
        if node.loc and (node.loc.file, node.loc.line) not in out:
            try:
                text = Path(node.loc.file).read_text(encoding="utf-8").splitlines()
                out[(node.loc.file, node.loc.line)] = text[node.loc.line - 1].strip()
            except (OSError, IndexError):
                out[(node.loc.file, node.loc.line)] = ""
    return out


def _symbols_in(v: Any) -> set[str]:
    if isinstance(v, Sym):
        return v.symbols()
    if isinstance(v, dict):
        v = list(v.values())
    if isinstance(v, (list, tuple)):
        return set().union(*(_symbols_in(x) for x in v))
    return set()


def _forward(graph: Graph, names: _Names) -> list[str]:
    used = sorted(set().union(*(_symbols_in(n.args) for n in graph.nodes)))
    lines = [f"{names.symbols[s]} = dims[{s!r}]" for s in used]
    sources = _source_lines(graph)
    read = {i for n in graph.nodes for i in n.inputs} | set(graph.outputs)
    where = None
    for node in graph.nodes:
        if node.op == "input":
            continue
        if node.loc and (node.loc.file, node.loc.line) != where:
            where = (node.loc.file, node.loc.line)
            comment = f"# {Path(where[0]).name}:{where[1]}: {sources[where]}".rstrip(": ")
            lines.append(comment if len(comment) <= WIDTH else comment[:WIDTH - 3] + "...")
        layer = node.layer if node.layer and graph.layers[node.layer].params else None
        target = f"{names.value(node.id)} = " if node.id in read else ""  # else it only runs
        head = f"{target}self.call({node.id}, {node.op!r}, {layer!r}, {{"
        items = [f"{k!r}: {names.literal(v)}" for k, v in node.args.items()]
        ins = "".join(f", {names.value(i)}" for i in node.inputs)
        lines += _pack(head, items, f"}}{ins})  # {format_shape(node.type.shape)}")
    lines.append(f"return self.finish({', '.join(names.value(i) for i in graph.outputs)})")
    return lines


def _backward(graph: Graph, names: _Names) -> tuple[list[str], list[str]]:
    """Reverse-mode lines (d<i>: the gradient of value i once all its readers have run) and
    the names the output gradients arrive in."""
    lines: list[str] = []
    ready: set[int] = set()
    heads = []
    for k, i in enumerate(graph.outputs):
        if i in ready:  # the same value given as two outputs
            heads.append(f"_g{k}")
            lines.append(f"{names.grad(i)} = {names.grad(i)} + _g{k}")
        else:
            heads.append(names.grad(i))
            ready.add(i)
    for node in reversed(graph.nodes):
        if node.op == "input" or node.id not in ready:
            continue
        targets, sums = [], []
        for k, i in enumerate(node.inputs):
            if graph.node(i).type.dtype not in FLOAT_DTYPES:
                targets.append("_")
            elif i in ready:
                targets.append(f"_g{k}")
                sums.append(f"{names.grad(i)} = {names.grad(i)} + _g{k}")
            else:
                targets.append(names.grad(i))
                ready.add(i)
        call = f"self.back(t, {node.id}, {names.grad(node.id)})  # {node.op}"
        lines.append(f"[{', '.join(targets)}] = {call}" if targets else call)
        lines += sums
    grads = [names.grad(i) if i in ready else "None" for i in graph.inputs]
    lines.append(f"return ({', '.join(grads)}{',' if len(grads) == 1 else ''})")
    return lines, heads


def _class(graph: Graph, name: str) -> dict[str, Any]:
    t = tables(graph)
    names = _Names(graph)
    backward, heads = _backward(graph, names)
    outs = ", ".join(f"{n}: {format_shape(graph.node(i).type.shape)}"
                     for n, i in zip(graph.output_names, graph.outputs, strict=True))
    return {
        "name": name,
        "doc": f"The model `{graph.name}`: ({', '.join(graph.input_names)}) -> ({outs}).",
        "parameters": [line for k, v in t["PARAMETERS"].items()
                       for line in _entry(k, [names.literal(x) for x in v], "()")],
        "layers": [line for k, v in t["LAYERS"].items()
                   for line in _entry(k, [names.literal(x) for x in v], "[]")],
        "inputs": _pack("INPUTS = [", [names.literal(x) for x in t["INPUTS"]], "]"),
        "symbols": names.literal(t["SYMBOLS"]),
        "reach": None if t["REACH"] is None else
        _pack("REACH = [", [names.literal(x) for x in t["REACH"]], "]"),
        "args": ", ".join(names.value(i) for i in graph.inputs),
        "grads": ", ".join(heads),
        "forward": _forward(graph, names), "backward": backward,
    }


def generate(graph: Graph | GanGraph) -> str:
    """The source of a module whose `build(dtype, seed)` gives the model `runtime` builds."""
    if isinstance(graph, GanGraph):
        g = _safe(graph.generator.name, set())
        d = _safe(graph.discriminator.name, {g})
        classes = [_class(graph.generator, g), _class(graph.discriminator, d)]
        build_doc = "The generator and the discriminator, seeded as `archdsl.build` seeds them."
        build_expr = f"({g}(dtype, seed), {d}(dtype, seed + 1))"
    else:
        classes = [_class(graph, _safe(graph.name, set()))]
        build_doc = "The model, with the parameters `archdsl.build` draws for this seed."
        build_expr = f"{classes[0]['name']}(dtype, seed)"
    return _ENV.get_template("module.py.j2").render(
        title=f"{graph.name}: a NumPy model.", source=Path(graph.file).name or "a spec",
        classes=classes, build_doc=build_doc, build_expr=build_expr)
