"""What an editor asks about one open spec: its diagnostics, and what is under the cursor: the
type and shape of a name, a layer's parameters, FLOPs and output, where a name is defined, and
what may be typed next. Built on the public front end (`archdsl.load`, `Program`, the typed
graphs with their node locations and names), so it does not depend on how elaboration works
inside; `archdsl.lsp` speaks the protocol.

Positions are `(line, column)` from 1, in characters, as in `Loc`. A block's statements are
answered for every call of the block in the checked models: `h` in a ResNet bottleneck has one
shape per stage, and a hover lists them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from archdsl import syntax as ast
from archdsl.api import load
from archdsl.cost import human
from archdsl.diagnostics import Diagnostic, Loc, Problem, SpecError
from archdsl.graph import GanGraph, Graph, Layer, Node, Scope, TensorType
from archdsl.layer_args import call_text
from archdsl.limits import Limits
from archdsl.ops import REGISTRY
from archdsl.ops.registry import REQUIRED, OpDef, default_text, signature
from archdsl.parser import KEYWORDS
from archdsl.program import ParseCache, Program
from archdsl.symbolic import Dim, Sym, evaluate, format_dim

Pos = tuple[int, int]
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ---- one analysis of one text ---------------------------------------------------------------
@dataclass
class Analysis:
    file: str  # the name diagnostics and locations use: the document's path
    text: str
    module: ast.Module | None  # None when the text does not parse
    program: Program | None  # None when loading failed outright
    diagnostics: list[Diagnostic]
    graphs: list[Graph] = field(default_factory=list)  # every checked model (a gan's two)

    @property
    def files(self) -> set[str]:
        """Every file this analysis read: re-check it when one of them changes."""
        return set(self.program.scopes) if self.program else {self.file}


def analyze(file: str, text: str, overlay: Mapping[str, str] | None = None,
            cache: ParseCache | None = None, search_paths: tuple[str, ...] = ()) -> Analysis:
    """Load and check `text` as the file `file` (imports resolve next to it; `overlay` holds
    other unsaved files by real path)."""
    cache = cache or ParseCache()
    files = {**(overlay or {}), os.path.realpath(file): text}
    module = None
    try:
        module = cache.parse(text, file, Limits())
    except (Problem, RecursionError):
        pass
    try:
        program = load(file, check=False, overlay=files, parse_cache=cache,
                       search_paths=search_paths)
    except SpecError as err:
        return Analysis(file, text, module, None, err.diagnostics)
    diagnostics: list[Diagnostic] = []
    try:
        program.check()
    except SpecError as err:
        diagnostics = err.diagnostics
    except Exception as exc:  # noqa: BLE001 - a bug must reach the user as a diagnostic
        diagnostics = [Diagnostic(code="E9999", message=f"internal error: {exc!r}")]
    diagnostics += [w for w in program.warnings if w not in diagnostics]
    cache.forget_unused()
    graphs: list[Graph] = []
    for g in program.checked.values():
        graphs += [g.generator, g.discriminator] if isinstance(g, GanGraph) else [g]
    return Analysis(file, text, module, program, diagnostics, graphs)


# ---- where the cursor is --------------------------------------------------------------------
def _within(loc: Loc | None, pos: Pos) -> bool:
    return loc is not None and (loc.line, loc.col) <= pos <= (loc.end_line, loc.end_col)


def _name_locs(node: ast.Node) -> dict[str, Loc]:
    """The names a statement, item, parameter or keyword argument states, each with its span
    (a destructuring states several; a loop's variable has the loop's span)."""
    if isinstance(node, ast.Destructure):
        return dict(zip(node.names, node.name_locs, strict=True))
    if isinstance(node, (ast.Assign, ast.Output, ast.AssertShape, ast.Const, ast.Definition)):
        return {node.name: node.name_loc}
    if isinstance(node, (ast.Input, ast.Param, ast.Setting, ast.Keyword)):
        return {node.name: Loc(file=node.loc.file, line=node.loc.line, col=node.loc.col,
                               end_line=node.loc.line, end_col=node.loc.col + len(node.name))}
    if isinstance(node, ast.For):
        return {node.var: node.loc}
    return {}


def _on_name(node: ast.Node, pos: Pos) -> bool:
    return any(_within(loc, pos) for loc in _name_locs(node).values())


@dataclass
class Cursor:
    """The word under the cursor, the innermost node holding it, that node's ancestors, and
    the definition (or item) it is in."""

    word: str
    span: Loc
    node: ast.Node
    parents: tuple[ast.Node, ...]
    item: ast.Node

    @property
    def parent(self) -> ast.Node | None:
        return self.parents[-1] if self.parents else None

    @property
    def on_name(self) -> bool:
        """On the name a statement, parameter or item binds (not in its value)."""
        return _on_name(self.node, (self.span.line, self.span.col))


def cursor(a: Analysis, pos: Pos) -> Cursor | None:
    if a.module is None:
        return None
    lines = a.text.split("\n")
    if not 1 <= pos[0] <= len(lines):
        return None
    line = lines[pos[0] - 1]
    word = next((m for m in _WORD.finditer(line) if m.start() < pos[1] <= m.end() + 1), None)
    if word is None or word.group() in KEYWORDS - {"true", "false"}:
        return None
    at = (pos[0], word.start() + 1)
    span = Loc(file=a.file, line=pos[0], col=word.start() + 1, end_line=pos[0],
               end_col=word.end() + 1)
    best: tuple[ast.Node, tuple[ast.Node, ...]] | None = None
    stack: list[tuple[ast.Node, tuple[ast.Node, ...]]] = [(i, ()) for i in a.module.items]
    while stack:
        node, parents = stack.pop()
        inside = _within(node.loc, at) or _on_name(node, at)
        if inside and (best is None or len(parents) >= len(best[1])):
            best = (node, parents)
        stack.extend((c, (*parents, node)) for c in ast.children(node))
    if best is None:
        return None
    node, parents = best
    return Cursor(word.group(), span, node, parents, parents[0] if parents else node)


# ---- what a definition's statements are in the checked graphs --------------------------------
@dataclass
class Instance:
    """One elaboration of a definition: a checked model, or one call of a block."""

    graph: Graph
    path: str
    lo: int
    hi: int  # node ids [lo, hi)
    args: dict[str, Any]
    inputs: dict[str, int]  # input name -> node id

    def label(self) -> str:
        return f"`{self.path}`" if self.path else f"`{self.graph.name}`"


def instances(a: Analysis, defn: ast.Definition) -> list[Instance]:
    out = []
    for g in a.graphs:
        if g.name == defn.name and g.file == defn.file:
            out.append(Instance(g, "", 0, len(g.nodes), dict(g.params),
                                dict(zip(g.input_names, g.inputs, strict=True))))
        for s in g.scopes:
            if s.definition == defn.name:
                out.append(Instance(g, s.path, s.span[0], s.span[1], dict(s.args),
                                    dict(zip(s.input_names, s.inputs, strict=True))))
    return out


def _direct(inst: Instance) -> tuple[list[Node], list[Scope]]:
    """The nodes an instance made itself, and the calls it made (not theirs)."""
    g = inst.graph
    nodes = [n for n in g.nodes[inst.lo:inst.hi] if n.scope == inst.path]
    inner = [s for s in g.scopes if inst.lo <= s.span[0] and s.span[1] <= inst.hi
             and (s.path, s.span) != (inst.path, (inst.lo, inst.hi)) and s.span[1] > s.span[0]]
    calls = [s for s in inner if not any(o is not s and o.span[0] <= s.span[0]
                                         and s.span[1] <= o.span[1] and o.span != s.span
                                         for o in inner)]
    return nodes, calls


def _in(loc: Loc | None, outer: Loc) -> bool:
    return loc is not None and loc.file == outer.file and \
        (outer.line, outer.col) <= (loc.line, loc.col) and \
        (loc.end_line, loc.end_col) <= (outer.end_line, outer.end_col)


def _nested(a: Loc | None, b: Loc | None) -> bool:
    """One span holds the other: a call site and what the graph says it made."""
    return a is not None and b is not None and (_in(a, b) or _in(b, a))


# A value: its tensors (node ids), each with the name the spec bound it to. One tensor, or
# every part of a multi-output value (an op's parts, a call's outputs), in order.
Value = tuple[tuple[int, str | None], ...]


def values(inst: Instance, value: ast.Node) -> list[Value]:
    """What a statement's value evaluated to in one instance: one for each time it ran (a
    statement in a loop runs once per iteration). The value of a run is the last tensor it
    made, or all the parts of the multi-output value that tensor is part of; a run that made
    none (`shortcut = ... else x`) is not seen."""
    nodes, calls = _direct(inst)
    made: list[tuple[int, bool, Scope | None]] = sorted(
        [(n.id, _in(n.loc, value.loc), None) for n in nodes if n.op != "input"] +
        [(max(s.outputs), _in(s.loc, value.loc), s) for s in calls if s.outputs],
        key=lambda m: m[0])
    runs: list[tuple[int, Scope | None]] = []
    previous = False
    for node, mine, call in made:
        if mine and previous:
            runs[-1] = (node, call)
        elif mine:
            runs.append((node, call))
        previous = mine
    return [_value(inst.graph, node, call) for node, call in runs]


def _value(g: Graph, node: int, call: Scope | None) -> Value:
    if call is not None:
        names = call.caller_names or [None] * len(call.outputs)
        return tuple(zip(call.outputs, names, strict=True))
    n = g.nodes[node]
    if n.op != "part":
        return ((node, n.name),)
    whole = n.inputs[0]  # its parts follow it
    return tuple((p.id, p.name) for p in g.nodes[whole + 1:whole + 1 + len(g.nodes[whole].parts)])


def _given(stmt: ast.Node, name: str, value: Value) -> tuple[int, ...] | None:
    """What `name` got of a value: its part by position, in a destructuring; else the one
    part the spec gave that name (`y = split(x, 2)[0]`), else the whole value."""
    ids = tuple(i for i, _ in value)
    if isinstance(stmt, ast.Destructure):
        return (ids[stmt.names.index(name)],) if len(ids) == len(stmt.names) else None
    named = [i for i, bound in value if bound == name]
    return (named[-1],) if len(ids) > 1 and named else ids


def _bound(inst: Instance, defn: ast.Definition, stmt: ast.Node, name: str, depth: int = 0
           ) -> list[tuple[int, ...]]:
    """The value a binding statement gave `name` in one instance, once per run: a tensor, or
    the parts of a multi-output value. A statement that made no tensor passed one on
    (`else x`, `a, b = pair`): the binding before it, when the value or the branch not made
    is a bare name."""
    if isinstance(stmt, ast.Input):
        return [(inst.inputs[stmt.name],)] if stmt.name in inst.inputs else []
    value = getattr(stmt, "value", None)
    if value is None or depth > 8:
        return []
    made = values(inst, value)
    if not made:
        if isinstance(value, ast.IfElse):
            names = [b for b in (value.then, value.orelse) if isinstance(b, ast.Name)]
            value = names[0] if len(names) == 1 else value
        if isinstance(value, ast.Name):
            before = binding(defn, value.id, (stmt.loc.line, stmt.loc.col))
            if before is not None and before is not stmt:
                made = [tuple((i, None) for i in ids)
                        for ids in _bound(inst, defn, before, value.id, depth + 1)]
    return [ids for ids in (_given(stmt, name, v) for v in made) if ids]


def _statements(body: tuple[ast.Node, ...]) -> Iterator[ast.Node]:
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.For):
            yield from _statements(stmt.body)


def binding(defn: ast.Definition, name: str, at: Pos) -> ast.Node | None:
    """The statement, parameter or loop whose `name` is the one visible at `at`."""
    found: ast.Node | None = next((p for p in defn.params if p.name == name), None)
    for stmt in _statements(defn.body):
        loc = _name_locs(stmt).get(name)
        if loc is None or isinstance(stmt, ast.AssertShape):
            continue
        if _within(loc, at):
            return stmt
        end = (stmt.loc.end_line, stmt.loc.end_col) if not isinstance(stmt, ast.For) else \
            (loc.line, loc.col)
        if end <= at:
            found = stmt
    return found


# ---- what to show -----------------------------------------------------------------------------
def tensor_type(t: TensorType) -> str:
    return f"{t.dtype}{t}"


def _result_type(n: Node) -> str:
    """A node's result: its tensor's type, or a multi-output op's parts, `(f32[B, H], ...)`."""
    if len(n.parts) > 1:
        return f"({', '.join(map(tensor_type, n.parts))})"
    return tensor_type(n.type)


def _grouped(rows: list[tuple[str, str]], what: str, limit: int = 6) -> list[str]:
    """`(value, where)` pairs as lines, one per distinct value with where it occurs."""
    order: dict[str, list[str]] = {}
    for value, where in rows:
        order.setdefault(value, []).append(where)
    if len(order) == 1:
        (value, wheres), = order.items()
        tail = f" (all {len(wheres)} {what})" if len(wheres) > 1 else ""
        return [f"{value}{tail}"]
    out = []
    for value, wheres in list(order.items())[:limit]:
        shown = ", ".join(wheres[:3]) + (f" and {len(wheres) - 3} more" if len(wheres) > 3
                                         else "")
        out.append(f"- {value} in {shown}")
    if len(order) > limit:
        out.append(f"- and {len(order) - limit} more")
    return out


def _flops(g: Graph, node: Node) -> Dim:
    op = REGISTRY[node.op]
    if op.flops is None:
        return 0
    try:
        return op.flops(node.args, [g.nodes[i].type for i in node.inputs], node.type).flops
    except Exception:  # noqa: BLE001 - a rule that wants concrete sizes: no figure shown
        return 0


def flops_text(total: Dim) -> str:
    """`236,027,904·B (236 MFLOP at B=1)`, or a plain count when no symbol is left."""
    if isinstance(total, int):
        return f"{total:,} ({human(total, 'FLOP')})" if total else "0"
    text = re.sub(r"\d{4,}", lambda m: f"{int(m.group()):,}", format_dim(total)).replace("*", "·")
    symbols = sorted(set(re.findall(r"[A-Za-z_]\w*", text)))
    if symbols == ["B"]:
        return f"{text} ({human(evaluate(total, {'B': 1}), 'FLOP')} at B=1)"
    return text


def parameter_count(layer: Layer) -> int:
    return sum(math.prod(p.shape) for p in layer.params if p.kind == "param")


@dataclass
class Hover:
    markdown: str
    span: Loc


def hover(a: Analysis, pos: Pos) -> Hover | None:
    c = cursor(a, pos)
    if c is None:
        return None
    text = _describe(a, c)
    return Hover(text, c.span) if text else None


def _describe(a: Analysis, c: Cursor) -> str | None:
    node, parent = c.node, c.parent
    if isinstance(node, ast.Import):
        return f"`import {node.path}`: {_imported(a, node)}"
    if isinstance(node, (ast.Definition, ast.Const)) and c.on_name:
        return _definition_text(a, c.word)
    if isinstance(node, ast.Keyword) and c.on_name and isinstance(parent, ast.Call):
        return _argument_text(a, parent, node.name)
    defn = c.item if isinstance(c.item, ast.Definition) else None
    if isinstance(node, ast.Attribute) and c.word == node.name:
        return _attribute_text(a, node)
    if defn is not None:
        stmt = binding(defn, c.word, (c.span.line, c.span.col))
        if stmt is not None and (c.on_name or isinstance(node, ast.Name)):
            return _binding_text(a, defn, stmt, c.word)
    if isinstance(node, ast.Name) or c.on_name:
        site = parent if isinstance(parent, ast.Call) and parent.func is node else node
        return _callable_text(a, c.word, site) or (
            _symbol_text(a, defn, c.word) if defn is not None else None)
    return None


def _imported(a: Analysis, node: ast.Import) -> str:
    target = os.path.normpath(os.path.join(os.path.dirname(node.loc.file), node.path))
    scope = a.program.scopes.get(target) if a.program else None
    if scope is None:
        return "not loaded"
    return f"`{target}`, defining " + (", ".join(f"`{n}`" for n in scope.own) or "nothing")


def _lookup(a: Analysis, name: str) -> ast.Definition | ast.Const | None:
    if a.program is None:
        return None
    scope = a.program.scopes[a.program.entry]
    return scope.definitions.get(name) or scope.consts.get(name)


def _definition_text(a: Analysis, name: str) -> str | None:
    item = _lookup(a, name)
    if isinstance(item, ast.Const):
        value = _source_text(a.program.sources, item.value.loc) if a.program else "..."
        return f"```arch\nconst {name} = {value}\n```\n\na constant of `{item.loc.file}`"
    if not isinstance(item, ast.Definition):
        return None
    params = ", ".join(map(_param_text, item.params))
    lines = [f"```arch\n{item.kind} {item.name}({params})\n```"]
    ins = [s for s in item.body if isinstance(s, ast.Input)]
    outs = [s.name for s in item.body if isinstance(s, ast.Output)]
    if ins or outs:
        lines.append("inputs " + (", ".join(f"`{s.name}`" for s in ins) or "none") +
                     "; outputs " + (", ".join(f"`{o}`" for o in outs) or "none"))
    for g in a.graphs:
        if g.name == item.name and g.file == item.file:
            total = sum(parameter_count(layer) for layer in g.layers.values())
            flops: Dim = 0
            for n in g.nodes:
                flops = flops + _flops(g, n)
            lines.append(f"{total:,} parameters ({human(total)}); FLOPs {flops_text(flops)}")
    calls = instances(a, item)
    if calls and item.kind == "block":
        lines.append(f"called {len(calls)} time{'s' if len(calls) != 1 else ''} in the checked "
                     "models")
    return "\n\n".join(lines)


def _argument_text(a: Analysis, call: ast.Call, name: str) -> str | None:
    if not isinstance(call.func, ast.Name):
        return None
    op = REGISTRY.get(call.func.id)
    if op is not None:
        arg = next((x for x in op.args if x.name == name), None)
        if arg is None:
            return None
        default = "" if arg.default is REQUIRED else f" = {default_text(arg.default)}"
        return f"`{name}: {arg.kind}{default}`, an argument of `{op.name}`" + \
            (f"\n\n{arg.doc}" if arg.doc else "")
    item = _lookup(a, call.func.id)
    if isinstance(item, ast.Definition):
        p = next((x for x in item.params if x.name == name), None)
        if p is not None:
            return f"`{name}: {p.type}`, a parameter of {item.kind} `{item.name}`"
    return None


def _attribute_text(a: Analysis, node: ast.Attribute) -> str | None:
    rows = []
    for g in a.graphs:
        for n in g.nodes:
            if n.op == "param" and n.loc == node.loc:
                rows.append((f"`{n.args['name']}: {tensor_type(n.type)}`", f"`{n.layer}`"))
    if not rows:
        return None
    return "\n".join(["a parameter, read from its layer", "", *_grouped(rows, "reads")])


def _binding_text(a: Analysis, defn: ast.Definition, stmt: ast.Node, name: str) -> str:
    calls = instances(a, defn)
    if isinstance(stmt, ast.Param):
        head = f"`{name}: {stmt.type}`, a parameter of `{defn.name}`"
        rows = [(f"`{name} = {_show(i.args.get(name))}`", i.label()) for i in calls
                if name in i.args]
        return "\n\n".join([head, *(["\n".join(_grouped(rows, "calls"))] if rows else [])])
    if isinstance(stmt, ast.For):
        return f"`{name}: int`, a loop variable (each iteration is checked)"
    rows = []
    layers = []
    for inst in calls:
        for ids in _bound(inst, defn, stmt, name):
            types = [tensor_type(inst.graph.nodes[i].type) for i in ids]
            shown = types[0] if len(types) == 1 else f"({', '.join(types)})"
            rows.append((f"`{name}: {shown}`", inst.label()))
        bound = inst.graph.layers.get(f"{inst.path}.{name}" if inst.path else name)
        if bound is not None:
            layers.append(bound)
    if rows:
        return "\n".join(_grouped(rows, "calls"))
    if layers:
        return _layers_text(a, layers)
    if not calls:
        return f"`{name}`: no shapes, `{defn.name}` is not in a checked model" + (
            " (the spec has errors)" if any(d.severity == "error" for d in a.diagnostics)
            else "")
    value = getattr(stmt, "value", None)
    source = a.program.sources if a.program else None
    shown = _source_text(source, value.loc) if value is not None and source else "..."
    return f"`{name} = {shown}`, not a tensor"


def _source_text(sources: Any, loc: Loc) -> str:
    if loc.line != loc.end_line:
        return "..."
    line = sources.line(loc.file, loc.line) or ""
    return line[loc.col - 1:loc.end_col - 1]


def _callable_text(a: Analysis, name: str, site: ast.Node) -> str | None:
    item = _lookup(a, name)
    if isinstance(item, ast.Definition):
        rows = [_scope_row(g, s) for g in a.graphs for s in g.scopes if s.definition == name
                and _nested(site.loc, s.loc)]
        head = _definition_text(a, name) or ""
        return head + ("\n\nhere:\n\n" + "\n".join(_grouped(rows, "calls")) if rows else "")
    if isinstance(item, ast.Const):
        return _definition_text(a, name)
    op = REGISTRY.get(name)
    if op is None or op.meta.get("internal"):
        return None
    layers = [layer for g in a.graphs for layer in g.layers.values() if layer.op == name
              and _nested(site.loc, layer.loc)]
    head = f"```arch\n{signature(op)}\n```" + (f"\n\n{op.doc}" if op.doc else "")
    if layers:
        return head + "\n\n" + _layers_text(a, layers)
    nodes = [(g, n) for g in a.graphs for n in g.nodes if n.op == name and n.loc is not None
             and _in(n.loc, site.loc)]
    if nodes:
        rows = [(f"output `{_result_type(n)}`", f"`{n.scope or g.name}`") for g, n in nodes]
        return head + "\n\n" + "\n".join(_grouped(rows, "uses"))
    return head


def _layers_text(a: Analysis, layers: list[Layer]) -> str:
    rows = []
    by_path = {id(layer): g for g in a.graphs for layer in g.layers.values()}
    for layer in layers:
        g = by_path[id(layer)]
        used = [n for n in g.nodes if n.layer == layer.path and n.op != "param"]
        flops: Dim = 0
        for n in used:
            flops = flops + _flops(g, n)
        ins = [tensor_type(g.nodes[i].type) for n in used[:1] for i in n.inputs
               if g.nodes[i].op != "param"]
        out = _result_type(used[-1]) if used else "?"
        weights = ", ".join(f"{p.name or 'value'} {list(p.shape)}" for p in layer.params
                            if p.kind == "param")
        count = parameter_count(layer)
        rows.append((f"`{call_text(layer.op, layer.args)}`: {' '.join(ins)} → `{out}`"
                     + (f"; {count:,} parameters ({weights})" if count else "")
                     + (f"; FLOPs {flops_text(flops)}" if flops else ""), f"`{layer.path}`"))
    return "\n".join(_grouped(rows, "calls"))


def _scope_row(g: Graph, s: Scope) -> tuple[str, str]:
    prefix = s.path + "."
    params = sum(parameter_count(layer) for path, layer in g.layers.items()
                 if path.startswith(prefix))
    flops: Dim = 0
    for n in g.nodes[s.span[0]:s.span[1]]:
        flops = flops + _flops(g, n)
    ins = ", ".join(tensor_type(g.nodes[i].type) for i in s.inputs)
    outs = ", ".join(tensor_type(g.nodes[i].type) for i in s.outputs)
    return (f"{ins} → {outs}; {params:,} parameters; FLOPs {flops_text(flops)}", f"`{s.path}`")


def _symbol_text(a: Analysis, defn: ast.Definition, name: str) -> str | None:
    for stmt in defn.body:
        if isinstance(stmt, ast.Input):
            for axis, d in enumerate(stmt.type.dims):
                if isinstance(d, ast.Name) and d.id == name:
                    rows = []
                    for inst in instances(a, defn):
                        node = inst.inputs.get(stmt.name)
                        if node is not None:
                            size = format_dim(inst.graph.nodes[node].type.shape[axis])
                            rows.append((f"`{name} = {size}`" if size != name else
                                         f"`{name}` stays symbolic: any size when it runs",
                                         inst.label()))
                    head = (f"`{name}`: a dimension, taken from `{stmt.name}` (axis {axis})")
                    return "\n\n".join([head, *(["\n".join(_grouped(rows, "calls"))]
                                                if rows else [])])
    return None


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, Sym):
        return format_dim(v)
    return str(v)


# ---- go to definition -----------------------------------------------------------------------
def definition(a: Analysis, pos: Pos) -> Loc | None:
    c = cursor(a, pos)
    if c is None:
        return None
    if isinstance(c.node, ast.Import):
        target = os.path.normpath(os.path.join(os.path.dirname(c.node.loc.file), c.node.path))
        return Loc(file=target, line=1, col=1, end_line=1, end_col=1)
    if isinstance(c.node, ast.Keyword) and c.on_name and isinstance(c.parent, ast.Call) and \
            isinstance(c.parent.func, ast.Name):
        item = _lookup(a, c.parent.func.id)
        if isinstance(item, ast.Definition):
            p = next((x for x in item.params if x.name == c.word), None)
            return _name_locs(p)[p.name] if p else None
        return None
    if isinstance(c.item, ast.Definition) and not (isinstance(c.node, ast.Definition)
                                                   and c.on_name):
        stmt = binding(c.item, c.word, (c.span.line, c.span.col))
        if stmt is not None:
            return _name_locs(stmt).get(c.word)
    item = _lookup(a, c.word)
    return item.name_loc if item is not None else None


# ---- completion -------------------------------------------------------------------------------
@dataclass
class Completion:
    label: str
    kind: str  # layer, function, definition, constant, variable, keyword, argument
    detail: str = ""
    documentation: str = ""
    snippet: str = ""  # with ${1:placeholders}; empty: insert the label


_STATEMENT_WORDS = ("input", "output", "assert", "for", "train")
_TOP_WORDS = ("model", "block", "gan", "const", "import")
_TRAIN_SETTINGS = ("loss", "optimizer", "batch", "epochs", "data", "clip", "n_critic",
                   "g_optimizer", "d_optimizer")


def completions(a: Analysis, pos: Pos) -> list[Completion]:
    lines = a.text.split("\n")
    line = lines[pos[0] - 1] if 1 <= pos[0] <= len(lines) else ""
    before = "\n".join(lines[:pos[0] - 1] + [line[:pos[1] - 1]])
    call = _open_call(before)
    out: list[Completion] = []
    if call is not None and call in REGISTRY:
        out += [_argument_completion(call, arg.name, arg.kind, arg.default)
                for arg in REGISTRY[call].args]
    elif call is not None:
        header = re.search(rf"^[ \t]*(?:block|model|gan)\s+{call}\s*\(([^)]*)\)", a.text, re.M)
        params = _PARAM.findall(header.group(1)) if header else []
        out += [Completion(f"{name}=", "argument", f"{name}: {kind}",
                           f"a parameter of `{call}`", snippet=f"{name}=")
                for name, kind in params]
    depth = _brace_depth(before)
    start_of_statement = not line[:pos[1] - 1].strip() or \
        _WORD.fullmatch(line[:pos[1] - 1].strip()) is not None and "=" not in line
    if depth == 0 and start_of_statement:
        return [Completion(w, "keyword") for w in _TOP_WORDS]
    if _in_train(before):
        return [Completion(s, "setting") for s in _TRAIN_SETTINGS]
    if start_of_statement and call is None:
        out += [Completion(w, "keyword") for w in _STATEMENT_WORDS]
    out += [_op_completion(op) for op in REGISTRY.values() if not op.meta.get("internal")
            and op.name not in ("input", "param")]
    if a.program is not None:
        scope = a.program.scopes[a.program.entry]
        out += [_definition_completion(d) for d in scope.definitions.values()]
        out += [Completion(n, "constant", "const") for n in scope.consts]
    known = {c.label for c in out}
    out += [Completion(m.group(2), "definition", f"{m.group(1)} {m.group(2)}")
            for m in _DEFINES.finditer(a.text) if m.group(2) not in known]
    out += [Completion(n, "variable", d) for n, d in _local_names(before).items()]
    return out


_DEFINES = re.compile(r"^[ \t]*(block|model|gan|const)\s+([A-Za-z_]\w*)", re.M)
_HEADER = re.compile(r"^\s*(?:block|model|gan)\s+[A-Za-z_]\w*")
_BINDS = re.compile(r"^\s*(?:(input|output)\s+)?([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)|"
                    r"^\s*(input)\s+([A-Za-z_]\w*)\s*:|^\s*for\s+([A-Za-z_]\w*)\s+in\b")
_DESTRUCTURES = re.compile(r"^\s*([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)+)\s*=(?!=)")
_PARAM = re.compile(r"([A-Za-z_]\w*)\s*:\s*(int|float|bool|str)\b")


def _local_names(before: str) -> dict[str, str]:
    """The names bound before the cursor in the definition it is in, read from the text
    (which rarely parses while it is being typed): parameters, inputs, assignments, the parts
    of a destructuring, loops."""
    lines = before.split("\n")
    start = next((i for i in range(len(lines) - 1, -1, -1) if _HEADER.match(lines[i])), None)
    if start is None:
        return {}
    names = {m.group(1): f"{m.group(2)} parameter" for m in _PARAM.finditer(lines[start])}
    for line in lines[start + 1:-1]:
        parts = _DESTRUCTURES.match(line)
        if parts is not None:
            for name in re.split(r"\s*,\s*", parts.group(1)):
                names.setdefault(name, "part")
            continue
        m = _BINDS.match(line)
        if m is None:
            continue
        name = m.group(2) or m.group(4) or m.group(5)
        if name in KEYWORDS:
            continue
        kind = "input" if (m.group(1) or m.group(3)) == "input" else \
            "loop variable" if m.group(5) else ""
        names.setdefault(name, kind)
    return names


def _open_call(before: str) -> str | None:
    """The name called by the innermost `(` still open before the cursor."""
    from archdsl.delimiters import brackets
    stack: list[int] = []
    for b in brackets(before):
        if b.char in "([{":
            stack.append(b.offset)
        elif stack:
            stack.pop()
    if not stack or before[stack[-1]] != "(":
        return None
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", before[:stack[-1]])
    return m.group(1) if m else None


def _brace_depth(before: str) -> int:
    from archdsl.delimiters import brackets
    depth = 0
    for b in brackets(before):
        depth += 1 if b.char == "{" else -1 if b.char == "}" else 0
    return depth


def _in_train(before: str) -> bool:
    from archdsl.delimiters import brackets
    stack: list[int] = []
    for b in brackets(before):
        if b.char == "{":
            stack.append(b.offset)
        elif b.char == "}" and stack:
            stack.pop()
    return bool(stack) and before[:stack[-1]].rstrip().endswith("train")


def _argument_completion(op: str, name: str, kind: str, default: Any) -> Completion:
    detail = f"{name}: {kind}" + ("" if default is REQUIRED else f" = {default_text(default)}")
    shown = name if default is REQUIRED or default is None else default_text(default)
    return Completion(f"{name}=", "argument", detail, f"an argument of `{op}`",
                      snippet=f"{name}=${{1:{shown}}}")


def _op_completion(op: OpDef) -> Completion:
    """A layer's snippet asks for its required arguments (`Conv2d(out, kernel)`), a bare one
    for none (`ReLU`); a function's for its tensors too (`concat(x, dim)`)."""
    required = [x.name for x in op.args if x.default is REQUIRED]
    fields = [*op.inputs, *required] if op.kind == "function" else required
    snippet = f"{op.name}({', '.join(f'${{{i}:{n}}}' for i, n in enumerate(fields, 1))})" \
        if fields else op.name
    return Completion(op.name, op.kind, signature(op), op.doc, snippet)


def _param_text(p: ast.Param) -> str:
    """`stride: int = 1`; a default that is not a literal shows as `...`."""
    if p.default is None:
        return f"{p.name}: {p.type}"
    shown = _show(p.default.value) if isinstance(p.default, ast.Literal) else "..."
    return f"{p.name}: {p.type} = {shown}"


def _definition_completion(d: ast.Definition) -> Completion:
    params = ", ".join(map(_param_text, d.params))
    required = [p.name for p in d.params if p.default is None]
    snippet = d.name + (f"({', '.join(f'${{{i}:{n}}}' for i, n in enumerate(required, 1))})"
                        if required else "")
    return Completion(d.name, "definition", f"{d.kind} {d.name}({params})",
                      f"from `{d.file}`", snippet)
