"""The Keras target: a spec's definitions as functions of Keras's functional API, as
`keras.applications` writes them.

The core (`backends/core`) writes each definition's statements once; here they become one
function per block definition, `def basic_block(x, channels, stride=1, name="basic_block")`,
taking input tensors and the block's parameters, reading the sizes it needs from its inputs,
and making its layers where it first applies them, each named by its path in the model
(`name=f"{name}.conv1"`), which is its state-dict prefix. A model is a function that makes its
`keras.Input`s and returns `keras.Model(inputs, outputs, name=name)`. A layer applied twice is
made once, into a variable; a block applied twice is one `Shared` model. The layout pass
(`layout.py`) writes each op and decides where tensors travel channels-last.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from pathlib import PurePath
from typing import Any

from archdsl import syntax as ast
from archdsl.diagnostics import Loc
from archdsl.graph import GanGraph, Graph
from archdsl.sites import snake

from ..core.assemble import Method, constructor_params, late_defaults, tokens_of
from ..core.classes import ClassCode, For, If, Line, Local, Module, Stmt
from ..core.docs import docstring, module_docstring
from ..core.generator import Generator, Output, Target, environment, identifier
from ..core.generator import generate as generate_with
from ..core.helpers import needed, sources
from ..core.lowering import TOKEN, OpSite, Refused
from ..core.pycode import INDENT, Call, Chain, Comp, Expr, Index, Seq, flat, layout
from . import target
from .layout import Callee, Made, Value, Walk, axis_in, held, module_ref
from .steps import FIRST, LAST, Op, Repeat, Stages

HELPERS = (  # copied into the modules that use them
    "layers.py", "layers_spatial.py", "layers_elementwise.py")
# Names the generated module defines or imports, or its functions use.
GLOBALS = frozenset({"keras", "tf", "math", "name", "range", "float"})


def helper_sources() -> dict[str, str]:
    """The classes and functions of every helper file, by name."""
    return {name: code for f in HELPERS for name, code in sources(__package__, f).items()}


class Keras(Target):
    name = "Keras"
    CONSTRUCT = target.CONSTRUCT  # type: ignore[assignment]
    FORWARD = target.FORWARD  # type: ignore[assignment]

    def __init__(self, reserved: frozenset[str]) -> None:
        self.GLOBALS = reserved

    def module_ref(self, attr: str) -> str:
        return module_ref(attr)

    def as_module(self, site: OpSite) -> Expr | None:
        return None  # every stage of a chain is applied on its own line, in its own layout

    def sequential(self, makes: list[Expr]) -> Expr:
        return Stages("stages", tuple(makes), makes=tuple(makes))

    def repeat(self, first: Expr, rest: Expr | None, count: str, rest_count: str) -> Expr:
        return Repeat("repeat", (first, *([rest] if rest is not None else []), count),
                      first=first, rest=rest, count=count, rest_count=rest_count)

    def container(self, kind: str) -> Expr:
        return "[]"  # functions make no containers: a loop's layers are named by its index

    def render(self, gen: Generator, graph: Graph | GanGraph) -> str:
        functions = Functions(gen)
        blocks = functions.write()
        if isinstance(graph, GanGraph):
            blocks.append(_gan_source(graph, [functions.names[id(r)] for r in gen.roots]))  # type: ignore[attr-defined]
        gen.raise_errors()
        code = "\n\n\n".join(blocks)
        helpers = needed(code, __package__, HELPERS[0], helper_sources())
        text = "\n".join([*helpers, code])
        return environment(__package__).get_template("module.py.j2").render(
            docstring="\n".join(module_docstring(graph, "Keras", LAYOUT_NOTE)),
            math=re.search(r"\bmath\.", text) is not None,
            tf=re.search(r"\btf\.", text) is not None,
            helpers=helpers,
            functions=blocks,
        )


LAYOUT_NOTE = ("Inside the model, tensors that convolutions, pooling or batch norm compute "
               "travel channels-last (the shape comments say which); inputs and outputs are "
               "channels-first, as in the spec.")


class Functions:
    """The functions of one module, dependencies first, each with its signature of layouts."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.order: list[ClassCode] = gen.order  # type: ignore[attr-defined]
        self.roots: list[ClassCode] = gen.roots  # type: ignore[attr-defined]
        self.callees: dict[int, Callee] = {}
        self.names: dict[int, str] = {}
        taken = set(GLOBALS) | set(helper_sources())
        for cls in self.order:
            name = cls.name if cls in self.roots else identifier(snake(cls.name))
            while name in taken:
                name += "_"
            taken.add(name)
            self.names[id(cls)] = name

    def write(self) -> list[str]:
        out = []
        failed: set[int] = set()
        for cls in self.order:
            if any(id(u) in failed for u in cls.uses):  # refused already, where it failed
                failed.add(id(cls))
                continue
            try:
                out.append(self.function(cls))
            except Refused as r:
                self.gen.refuse(str(r), r.loc or cls.definition.name_loc, r.label)
                failed.add(id(cls))
        return out

    # -- one function ---------------------------------------------------------------------------
    def function(self, cls: ClassCode) -> str:
        model = cls in self.roots
        dynamic = self.dynamic(cls)
        taken = _variables(cls.body) | set(cls.input_vars) | {p.name for p in cls.params} | \
            set(cls.size_reads) | set(cls.runtime) | set(self.gen.reserved)
        ranks = [t.rank for _, t in cls.inputs]
        # a model takes the spec's layout; a block, for each tensor input of rank 3 or more,
        # the layout that needs the fewest transposes (all tried, up to 4 such inputs)
        choices = [[FIRST, LAST] if r >= 3 and not model else [FIRST] for r in ranks]
        if sum(len(c) > 1 for c in choices) > 4:
            choices = [[FIRST] for _ in ranks]
        best: tuple[int, Walk, list[Stmt]] | None = None
        for layouts in itertools.product(*choices):
            walk = Walk(cls, self.plan(cls, taken), self.callees, dynamic,
                        None if model else "name", taken, list(layouts))
            body = walk.stmts(cls.body)
            if best is None or walk.transposes < best[0]:
                best = (walk.transposes, walk, body)
        assert best is not None
        _, walk, body = best
        decided = _decisions(body) & dynamic
        if decided:
            size = sorted(decided)[0]
            raise Refused(f"`{cls.definition.name}` decides by the size `{size}`, which differs "
                          "between its calls: Keras builds a shared block once",
                          _where_read(cls.definition, size) or cls.definition.name_loc,
                          "give each call its own block")
        inputs = walk.start
        outputs = [walk.layout.get(r, FIRST) for r in cls.returns]
        if model:
            outputs = [FIRST] * len(cls.returns)
        free = tuple(sorted((index, axis_in(inputs[index], axis, cls.inputs[index][1].rank))
                            for size, (index, axis) in cls.size_reads.items()
                            if size in dynamic and axis))
        self.callees[id(cls)] = Callee(cls, self.names[id(cls)], inputs, outputs, free)
        return self.text(cls, walk, body, inputs, outputs, model)

    def plan(self, cls: ClassCode, taken: set[str]) -> dict[str, Made]:
        """Each layer and block the function makes, and a variable for those it uses more
        than once."""
        modules: dict[str, Module] = {}
        for s in _statements(cls.body):
            if isinstance(s, Module):
                modules.setdefault(s.attr, s)
        counts: dict[str, int] = {}
        for s in _statements(cls.body):
            if isinstance(s, Line):
                _count_refs(s.code, counts)
        made: dict[str, Made] = {}
        names = set(taken)
        for attr, module in modules.items():
            refs = counts.get(attr, 0)
            var = None
            if refs > 1:
                base = re.split(r"[\[.]", attr)[0]
                var = base if base not in names else f"{base}_"
                while var in names:
                    var += "_"
                names.add(var)
            made[attr] = Made(module, refs, var)
        return made

    def dynamic(self, cls: ClassCode) -> set[str]:
        """The sizes a function cannot know when the model is built: symbolic in some
        instance, different between the calls of one shared instance, or given as an
        argument (a size the caller reads)."""
        instances = self.gen.staging.instances
        paths = {log.path for log in instances if self.gen.by_log.get(id(log)) is cls}
        logs = [log for log in instances if log.definition is cls.definition and
                log.path in paths]
        out = set(cls.runtime)
        for size, (index, axis) in cls.size_reads.items():
            seen: dict[str, set[Any]] = {}
            for log in logs:
                seen.setdefault(log.path, set()).add(log.inputs[index][1].type.shape[axis])
            if any(not isinstance(v, int) for values in seen.values() for v in values) or \
                    any(len(values) > 1 for values in seen.values()):
                out.add(size)
        return out

    # -- its text -------------------------------------------------------------------------------
    def text(self, cls: ClassCode, walk: Walk, body: list[Stmt], inputs: list[str],
             outputs: list[str], model: bool) -> str:
        """The function: a block takes its input tensors, then its parameters; a model makes
        its `keras.Input`s and returns its `keras.Model`. Sizes are read from the inputs."""
        params = constructor_params(replace(cls, sizes=[]))
        default = f'name: str = "{cls.definition.name if model else snake(cls.definition.name)}"'
        signature = Call("", (*params, default) if model else
                         (*cls.input_vars, *cls.runtime, *params, default))
        lines = [*layout(f"def {self.names[id(cls)]}", signature,
                         " -> keras.Model:" if model else ":"),
                 *self.doc(cls, inputs, outputs, model), *late_defaults(cls.params, 1)]
        ins: Expr = cls.input_vars[0] if len(cls.input_vars) == 1 else \
            Seq(tuple(cls.input_vars))
        if model:
            lines += [_model_input(cls, k) for k in range(len(cls.inputs))]
            if set(cls.input_vars) & _variables(body):  # the body rebinds an input's name
                held_inputs = walk.fresh("inputs")
                lines += layout(f"{held_inputs} = ", ins, "", 1)
                ins = held_inputs
        lines += _size_reads(cls, body, inputs, walk.dynamic)
        classes = {str(k): c.name for k, c in self.callees.items()}
        lines += Method(lambda kind, n: n, classes, lambda attr: attr).lines(body, 1)
        returns = [walk.convert(Value(r, walk.layout.get(r, FIRST), walk.rank.get(r, 0)),
                                want).code for r, want in zip(cls.returns, outputs, strict=True)]
        if not model:
            return "\n".join([*lines, *layout("return ", ", ".join(map(flat, returns)), "", 1)])
        outs = returns[0] if len(returns) == 1 else Seq(tuple(returns))
        made = Call("MultiInputModel" if len(cls.input_vars) > 1 else "keras.Model",
                    (ins, outs, "name=name"))
        return "\n".join([*lines, *layout("return ", made, "", 1)])

    def doc(self, cls: ClassCode, inputs: list[str], outputs: list[str], model: bool
            ) -> list[str]:
        """What the function maps, and which of its tensors travel channels-last."""
        tensors = [*zip(cls.inputs, inputs, strict=True), *zip(cls.outputs, outputs, strict=True)]
        ins = "; ".join(f"{n} {cls.shapes[n]}" for n, _ in cls.inputs)
        outs = "; ".join(f"{n} {cls.shapes[n]}" for n, _ in cls.outputs)
        where = f" of {PurePath(cls.file).name}" if cls.file else ""
        text = f"The `{cls.definition.name}` {cls.kind}{where}: {ins} -> {outs}."
        last = dict.fromkeys(f"{n} {held(cls.shapes[n], LAST, t.rank)}"
                             for (n, t), layout_ in tensors if layout_ == LAST)
        if last and not model:
            text += f" Channels-last here: {'; '.join(last)}."
        return docstring([text])


def _model_input(cls: ClassCode, k: int) -> str:
    """`image = keras.Input((3, 32, 32), name="image")`: sizes read when it runs are None."""
    var = cls.input_vars[k]
    name, t = cls.inputs[k]
    dims = _dims(cls.shapes[name])
    params = {p.name for p in cls.params}  # known when the model is built; the rest is not
    shape = ["None" if set(re.findall(r"[A-Za-z_]\w*", d)) - params else d for d in dims[1:]]
    items = f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(shape)})"
    extra = [] if t.dtype == "f32" else [f'dtype="{target.DTYPES[t.dtype]}"']
    batch = [] if set(re.findall(r"[A-Za-z_]\w*", dims[0])) - params else \
        [f"batch_size={dims[0]}"]
    return "\n".join(layout(f"{var} = ", Call("keras.Input", (items, *batch, *extra,
                                                              f'name="{name}"')), "", 1))


def _dims(shape: str) -> list[str]:
    """`(B, C, (H - 1) // 2 + 1)` -> its dimensions' texts."""
    depth, start, dims = 0, 1, []
    for i, ch in enumerate(shape):
        depth += ch in "(["
        depth -= ch in ")]"
        if (ch == "," and depth == 1) or depth == 0:
            dims.append(shape[start:i].strip())
            start = i + 1
        if depth == 0:
            break
    return [d for d in dims if d]


def _size_reads(cls: ClassCode, body: list[Stmt], layouts: list[str], dynamic: set[str]
                ) -> list[str]:
    """`_, H, W, C = x.shape` for the sizes known when the model is built, `T = Size(1)(x)`
    for those read when it runs."""
    used = {n for k, n in (t.split(":", 1) for t in tokens_of(body)) if k == "s"}
    static: dict[int, dict[int, str]] = {}
    lines = []
    for name, (index, axis) in sorted(cls.size_reads.items(), key=lambda kv: kv[1]):
        if name not in used:
            continue
        rank = cls.inputs[index][1].rank
        where = axis_in(layouts[index], axis, rank)
        if name in dynamic:
            lines.append(f"{INDENT}{name} = Size({where})({cls.input_vars[index]})")
        else:
            static.setdefault(index, {})[where] = name
    out = []
    for index, axes in sorted(static.items()):
        var = cls.input_vars[index]
        rank = cls.inputs[index][1].rank
        if len(axes) == 1:
            (axis, name), = axes.items()
            last = layouts[index] == LAST and axis == rank - 1
            out.append(f"{INDENT}{name} = {var}.shape[{-1 if last else axis}]")
            continue
        last = max(axes)
        targets = [axes.get(a, "_") for a in range(last + 1)]
        star = ", *_" if last + 1 < rank else ""
        out.append(f"{INDENT}{', '.join(targets)}{star} = {var}.shape")
    return out + lines


def _decisions(body: list[Stmt]) -> set[str]:
    """The names that `if` conditions and loop bounds read: Python decides them when the
    model is built."""
    out: set[str] = set()
    for s in _statements(body):
        if isinstance(s, (If, For)):
            out |= {n for k, n in TOKEN.findall(s.cond if isinstance(s, If) else s.iterable)}
    return out


def _where_read(defn: ast.Definition, name: str) -> Loc | None:
    """Where an `if` of the definition reads `name`."""
    stack: list[Any] = list(defn.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.IfElse) and name in _names(node.cond):
            return node.loc
        if isinstance(node, ast.Node):
            for attr in node.__slots__:
                child = getattr(node, attr, None)
                stack.extend(child if isinstance(child, tuple) else [child])
    return None


def _names(node: Any) -> set[str]:
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Node):
        out: set[str] = set()
        for attr in node.__slots__:
            child = getattr(node, attr, None)
            for c in child if isinstance(child, tuple) else [child]:
                out |= _names(c)
        return out
    return set()


def _statements(body: list[Stmt]) -> list[Stmt]:
    out: list[Stmt] = []
    for s in body:
        out.append(s)
        if isinstance(s, If):
            out += _statements(s.then) + _statements(s.orelse)
        elif isinstance(s, For):
            out += _statements(s.body)
    return out


def _variables(body: list[Stmt]) -> set[str]:
    out: set[str] = set()
    for s in _statements(body):
        if isinstance(s, Line):
            out |= {t.strip() for t in s.target.split(",")}
        elif isinstance(s, Local):
            out.add(s.name)
        elif isinstance(s, For):
            out.add(s.var)
    return out


def _count_refs(e: Expr, counts: dict[str, int]) -> None:
    if isinstance(e, str):
        for attr in re.findall("\0m:([^\0]*)\0", e):
            counts[attr] = counts.get(attr, 0) + 1
        return
    if isinstance(e, Op) and e.module is not None:
        _count_refs(e.module, counts)
    if isinstance(e, Call):
        _count_refs(e.func, counts)
        for a in e.args:
            _count_refs(a, counts)
    elif isinstance(e, Seq):
        for a in e.items:
            _count_refs(a, counts)
    elif isinstance(e, Chain):
        for a in e.operands:
            _count_refs(a, counts)
    elif isinstance(e, Comp):
        _count_refs(e.element, counts)
    elif isinstance(e, Index):
        _count_refs(e.value, counts)


def _gan_source(graph: GanGraph, names: list[str]) -> str:
    doc = docstring([f"The `{graph.name}` gan: `generator` and `discriminator`, trained with "
                     f"the {graph.loss} loss."])
    generator, discriminator = names
    return "\n".join([
        f"def {graph.name}() -> Gan:", *doc,
        f'{INDENT}return Gan({generator}(name="generator"), '
        f'{discriminator}(name="discriminator"))',
    ])


def reserved(graph: Graph | GanGraph) -> frozenset[str]:
    """Every name the module defines at the top: imports, helpers, one function per
    definition."""
    g = graph.generator if isinstance(graph, GanGraph) else graph
    staging = g.staging
    assert staging is not None
    # block functions are snake case; CamelCase names stay free for the core to name classes
    functions = {snake(name) for scope in staging.scopes.values()
                 for name, d in scope.definitions.items()
                 if isinstance(d, ast.Definition) and snake(name) != name}
    return GLOBALS | set(helper_sources()) | functions


def generate(graph: Graph | GanGraph) -> str:
    """The source of one standalone module: a function per block definition and one per
    model, on the functional API."""
    return render(graph)[0]


def render(graph: Graph | GanGraph) -> tuple[str, str]:
    """The source and the name of the function that builds the model (or the gan's pair)."""
    graph = graph.traced()
    out: Output = generate_with(Keras(reserved(graph)), graph)
    return out.source, out.name
