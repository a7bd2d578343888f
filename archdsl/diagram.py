"""`archdsl graph`: a model as a diagram, blocks collapsed below `depth`, shapes on the edges.

Each box names its layer and the arguments the spec gave it (`Conv2d(64, kernel=7,
stride=2)`) with its parameter count; a block drawn as one box shows its arguments and the
parameters of everything in it. A multi-output op is one box; each part read from it is an
edge with that part's shape. Blocks opened by `depth` frame their insides, so a deep view
keeps its structure; a graph wider than it is deep is laid out left to right. A gan is drawn
as its two models, the generator's sample feeding the discriminator.

DOT and Mermaid are plain text and need nothing; SVG and PNG are rendered by Graphviz's `dot`
when it is installed.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass, field

from archdsl.cost import human
from archdsl.graph import GanGraph, Graph, Scope
from archdsl.layer_args import call_text
from archdsl.ops.registry import show_value
from archdsl.symbolic import format_shape

_SKIP = {"param"}


@dataclass(frozen=True)
class Box:
    id: str
    label: str
    kind: str  # input | output | op | block
    frame: str | None = None  # the frame (an opened block, a gan's side) it is drawn in


@dataclass
class Frame:
    id: str
    label: str
    parent: str | None


@dataclass
class Picture:
    boxes: list[Box] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)


def _params(graph: Graph, prefix: str) -> int:
    return sum(math.prod(p.shape) for path, layer in graph.layers.items()
               if path == prefix or path.startswith(prefix + ".")
               for p in layer.params if p.kind == "param")


def _with_params(label: str, n: int) -> str:
    return f"{label}\n{human(n)} params" if n else label


def _block_label(graph: Graph, scope: Scope) -> str:
    args = ", ".join(f"{k}={show_value(v)}" for k, v in scope.args.items())
    return f"{scope.path}: {scope.definition}({args})"


def picture(graph: Graph, depth: int, prefix: str = "", frame: str | None = None) -> Picture:
    """Boxes, edges and frames of one model; ids start with `prefix`, and everything sits in
    `frame` (a gan draws each model in its own)."""
    scopes = sorted({s.path for s in graph.scopes}, key=lambda p: (p.count("."), p))
    first = {}
    for s in graph.scopes:
        first.setdefault(s.path, s)
    out = Picture()
    framed: dict[str, str] = {}

    def frame_of(chain: list[str]) -> str | None:
        """The frame of the innermost opened block in `chain` (outer ones made first)."""
        parent = frame
        for path in chain:
            fid = framed.get(path)
            if fid is None:
                fid = framed[path] = f"{prefix}f_{path.replace('.', '_')}"
                out.frames.append(Frame(fid, _block_label(graph, first[path]), parent))
            parent = fid
        return parent

    box_of: dict[int, str] = {}
    boxes: dict[str, Box] = {}
    for node in graph.nodes:
        if node.op in _SKIP:
            continue
        if node.op == "part":  # one output of the box before: drawn as that box's edge
            box_of[node.id] = box_of[node.inputs[0]]
            continue
        chain = [s for s in scopes if node.scope == s or node.scope.startswith(s + ".")]
        if len(chain) >= depth:
            owner = chain[depth - 1]
            bid = f"{prefix}b_{owner.replace('.', '_')}"
            if bid not in boxes:
                label = _with_params(_block_label(graph, first[owner]), _params(graph, owner))
                boxes[bid] = Box(bid, label, "block", frame_of(chain[:depth - 1]))
        else:
            bid = f"{prefix}n{node.id}"
            where = frame_of(chain)
            if node.op == "input":
                label = f"{node.args['name']}: {node.type.dtype}{format_shape(node.type.shape)}"
                boxes[bid] = Box(bid, label, "input", where)
            else:
                layer = graph.layers.get(node.layer) if node.layer else None
                text = call_text(node.op, node.args)
                name = node.layer.removeprefix(chain[-1] + ".") if node.layer and chain else \
                    node.layer  # inside its block's frame, the name within the block
                label = f"{name}: {text}" if name else text
                boxes[bid] = Box(bid, _with_params(label, _params(graph, layer.path)
                                                   if layer else 0), "op", where)
        box_of[node.id] = bid
    seen: set[tuple[str, str, int]] = set()  # one edge per tensor a box reads from another
    for node in graph.nodes:
        if node.id not in box_of:
            continue
        for i in node.inputs:
            src, dst = box_of.get(i), box_of[node.id]
            if src is None or src == dst or (src, dst, i) in seen:
                continue
            seen.add((src, dst, i))
            out.edges.append((src, dst, format_shape(graph.nodes[i].type.shape)))
    for name, o in zip(graph.output_names, graph.outputs, strict=True):
        oid = f"{prefix}out_{name}"
        boxes[oid] = Box(oid, f"output {name}", "output", frame)
        out.edges.append((box_of[o], oid, format_shape(graph.nodes[o].type.shape)))
    out.boxes = list(boxes.values())
    return out


def gan_picture(gan: GanGraph, depth: int) -> Picture:
    """The generator and the discriminator side by side, the sample going from one to the
    other."""
    out = Picture()
    for side, g, prefix in (("generator", gan.generator, "g_"),
                            ("discriminator", gan.discriminator, "d_")):
        frame = f"{prefix}side"
        out.frames.append(Frame(frame, f"{side}: {g.name}", None))
        part = picture(g, depth, prefix, frame)
        out.boxes += part.boxes
        out.edges += part.edges
        out.frames += part.frames
    sample = gan.generator.output_names[0]
    fed = gan.discriminator.inputs[0]
    shape = format_shape(gan.discriminator.nodes[fed].type.shape)
    out.edges.append((f"g_out_{sample}", f"d_n{fed}", f"generated {shape}"))
    return out


def _draw(graph: Graph | GanGraph, depth: int) -> Picture:
    return gan_picture(graph, depth) if isinstance(graph, GanGraph) else picture(graph, depth)


def wide(pic: Picture) -> bool:
    """More boxes side by side than one above the other (longest path from the inputs)."""
    rank: dict[str, int] = {}
    for src, dst, _ in pic.edges:  # edges come in graph order: sources ranked first
        rank[dst] = max(rank.get(dst, 0), rank.get(src, 0) + 1)
    per_rank: dict[int, int] = {}
    for box in pic.boxes:
        r = rank.get(box.id, 0)
        per_rank[r] = per_rank.get(r, 0) + 1
    return max(per_rank.values(), default=0) > len(per_rank)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph | GanGraph, depth: int = 1) -> str:
    pic = _draw(graph, depth)
    style = {"input": "shape=oval, style=filled, fillcolor=\"#dbeafe\"",
             "output": "shape=oval, style=filled, fillcolor=\"#dcfce7\"",
             "block": "shape=box3d, style=filled, fillcolor=\"#fef3c7\"",
             "op": "shape=box, style=rounded"}
    lines = [f"digraph {_quote(graph.name)} {{", f"  rankdir={'LR' if wide(pic) else 'TB'};",
             "  newrank=true; nodesep=0.3; ranksep=0.4;",
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9];']

    def emit(frame: str | None, indent: str) -> None:
        for f in (f for f in pic.frames if f.parent == frame):
            lines.append(f"{indent}subgraph cluster_{f.id} {{")
            lines.append(f'{indent}  label={_quote(f.label)}; style="rounded,dashed"; '
                         'fontname="Helvetica"; fontsize=10;')
            emit(f.id, indent + "  ")
            lines.append(f"{indent}}}")
        lines.extend(f"{indent}{b.id} [label={_quote(b.label)}, {style[b.kind]}];"
                     for b in pic.boxes if b.frame == frame)

    emit(None, "  ")
    lines += [f"  {a} -> {b} [label={_quote(shape)}];" for a, b, shape in pic.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: Graph | GanGraph, depth: int = 1) -> str:
    pic = _draw(graph, depth)
    shape = {"input": ("([", "])"), "output": ("([", "])"), "block": ("[[", "]]"),
             "op": ("[", "]")}

    def text(s: str) -> str:
        return '"' + s.replace('"', "#quot;").replace("\n", "<br/>") + '"'

    lines = [f"flowchart {'LR' if wide(pic) else 'TB'}"]

    def emit(frame: str | None, indent: str) -> None:
        for f in (f for f in pic.frames if f.parent == frame):
            lines.append(f"{indent}subgraph {f.id}[{text(f.label)}]")
            emit(f.id, indent + "  ")
            lines.append(f"{indent}end")
        lines.extend(f"{indent}{b.id}{shape[b.kind][0]}{text(b.label)}{shape[b.kind][1]}"
                     for b in pic.boxes if b.frame == frame)

    emit(None, "  ")
    lines += [f"  {a} -->|{text(s)}| {b}" for a, b, s in pic.edges]
    return "\n".join(lines) + "\n"


class GraphvizMissing(RuntimeError):
    pass


def render(graph: Graph | GanGraph, fmt: str, depth: int) -> bytes | str:
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
