"""`archdsl graph`: a model as a diagram, blocks collapsed below `depth`, shapes on the edges.

DOT and Mermaid are plain text and need nothing; SVG and PNG are rendered by Graphviz's `dot`
when it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from archdsl.graph import Graph
from archdsl.symbolic import format_shape

_SKIP = {"param"}


@dataclass(frozen=True)
class Box:
    id: str
    label: str
    kind: str  # input | output | op | block


def _owner(path: str, scopes: list[str], depth: int) -> str | None:
    """The block drawn as one box that contains a node at scope `path`: blocks at nesting
    level `depth` are closed (depth 1: every top-level block is a single box)."""
    chain = [s for s in scopes if path == s or path.startswith(s + ".")]
    return chain[depth - 1] if len(chain) >= depth else None


def boxes_and_edges(graph: Graph, depth: int) -> tuple[list[Box], list[tuple[str, str, str]]]:
    scopes = sorted({s.path for s in graph.scopes}, key=lambda p: (p.count("."), p))
    by_scope = {s.path: s.definition for s in graph.scopes}
    box_of: dict[int, str] = {}
    boxes: dict[str, Box] = {}
    for node in graph.nodes:
        if node.op in _SKIP:
            continue
        owner = _owner(node.scope, scopes, depth) if node.scope else None
        if owner is not None:
            bid = "b_" + owner.replace(".", "_")
            boxes.setdefault(bid, Box(bid, f"{owner}: {by_scope[owner]}", "block"))
        else:
            bid = f"n{node.id}"
            if node.op == "input":
                label = f"{node.args['name']}: {node.type.dtype}{format_shape(node.type.shape)}"
                boxes[bid] = Box(bid, label, "input")
            else:
                boxes[bid] = Box(bid, f"{node.layer}: {node.op}" if node.layer else node.op, "op")
        box_of[node.id] = bid
    edges: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for node in graph.nodes:
        if node.id not in box_of:
            continue
        for i in node.inputs:
            src, dst = box_of.get(i), box_of[node.id]
            if src is None or src == dst or (src, dst) in seen:
                continue
            seen.add((src, dst))
            read = node if node.op == "part" else graph.nodes[i]  # a part reads one output
            edges.append((src, dst, format_shape(read.type.shape)))
    for name, o in zip(graph.output_names, graph.outputs, strict=True):
        oid = f"out_{name}"
        boxes[oid] = Box(oid, f"output {name}", "output")
        edges.append((box_of[o], oid, format_shape(graph.nodes[o].type.shape)))
    return list(boxes.values()), edges


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: Graph, depth: int = 1) -> str:
    boxes, edges = boxes_and_edges(graph, depth)
    style = {"input": "shape=oval, style=filled, fillcolor=\"#dbeafe\"",
             "output": "shape=oval, style=filled, fillcolor=\"#dcfce7\"",
             "block": "shape=box3d, style=filled, fillcolor=\"#fef3c7\"",
             "op": "shape=box, style=rounded"}
    lines = [f"digraph {_quote(graph.name)} {{", "  rankdir=TB;",
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9];']
    lines += [f"  {b.id} [label={_quote(b.label)}, {style[b.kind]}];" for b in boxes]
    lines += [f"  {a} -> {b} [label={_quote(shape)}];" for a, b, shape in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: Graph, depth: int = 1) -> str:
    boxes, edges = boxes_and_edges(graph, depth)
    shape = {"input": ("([", "])"), "output": ("([", "])"), "block": ("[[", "]]"),
             "op": ("[", "]")}

    def text(s: str) -> str:
        return '"' + s.replace('"', "#quot;") + '"'

    lines = ["flowchart TB"]
    lines += [f"  {b.id}{shape[b.kind][0]}{text(b.label)}{shape[b.kind][1]}" for b in boxes]
    lines += [f"  {a} -->|{text(s)}| {b}" for a, b, s in edges]
    return "\n".join(lines) + "\n"


class GraphvizMissing(RuntimeError):
    pass


def render(graph: Graph, fmt: str, depth: int) -> bytes | str:
    if fmt == "dot":
        return to_dot(graph, depth)
    if fmt == "mmd":
        return to_mermaid(graph, depth)
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing(f"rendering {fmt.upper()} needs Graphviz's `dot` program, which is "
                              "not installed (e.g. `apt-get install graphviz`); write .dot or "
                              ".mmd instead, which need nothing")
    done = subprocess.run([dot, f"-T{fmt}"], input=to_dot(graph, depth).encode(),
                          capture_output=True, check=False, timeout=120)
    if done.returncode != 0:
        raise GraphvizMissing(f"`dot` failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
