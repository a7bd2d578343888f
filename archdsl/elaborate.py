"""Elaboration: a definition's statements, with concrete parameters, become a typed `Graph`.

Every shape rule runs here (through the op registry), every `assert` and declared shape is
proved or reported, and `if`/`for` are decided and unrolled. A failing statement reports once
and poisons the names it binds, so later statements that use them stay quiet while
independent statements are still checked: one run reports every independent error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from archdsl import schedules
from archdsl import syntax as ast
from archdsl.diagnostics import Diagnostic, Loc, Note, Problem, Reporter, suggest
from archdsl.expr import Traced, Var, expr_of, retrace
from archdsl.expr import names as expr_names
from archdsl.graph import (
    DTYPES,
    FLOAT_DTYPES,
    GAN_LOSSES,
    TRAIN_LOSSES,
    Graph,
    Layer,
    Node,
    Optimizer,
    ParamSpec,
    Schedule,
    Scope,
    SymbolSource,
    TensorType,
    TrainConfig,
)
from archdsl.limits import Limits, raise_hint
from archdsl.names import check_name
from archdsl.ops import REGISTRY
from archdsl.ops.registry import OpDef, bind_args
from archdsl.schedules import SCHEDULES
from archdsl.sites import site_names, snake
from archdsl.staging import InstanceLog, Record, Staging, retyped
from archdsl.symbolic import (
    Dim,
    Sym,
    SymbolicError,
    SymbolicLimit,
    format_dim,
    format_shape,
    symbol_name,
)
from archdsl.values import (
    POISON,
    Function,
    LayerClass,
    LayerValue,
    OptimizerClass,
    OptimizerValue,
    ParamRef,
    Poison,
    ScalarFunction,
    ScheduleClass,
    Skip,
    Tensor,
    a_kind,
    kind_of,
    with_article,
)

PARAM_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
MAX_INT = 2**63


# ---- the file-level environment ----------------------------------------------------------
@dataclass
class FileScope:
    """The names visible at the top of one file: its own definitions and imported ones."""

    file: str
    definitions: dict[str, ast.Definition] = field(default_factory=dict)
    consts: dict[str, ast.Const] = field(default_factory=dict)
    const_scopes: dict[str, FileScope] = field(default_factory=dict)
    own: list[str] = field(default_factory=list)
    const_values: dict[str, Any] = field(default_factory=dict)
    evaluating: list[str] = field(default_factory=list)


def check_string_limit(length: int, limits: Limits) -> None:
    if length > limits.max_string_chars:
        raise Problem("E0801", "a string longer than the limit",
                      label=f"{length:,} characters > {limits.max_string_chars:,}",
                      hint=raise_hint("max_string_chars"))


def range_length(r: range) -> int:
    """`len(r)` for any bounds: `len` itself fails beyond 2**63 items."""
    step = r.step
    span = r.stop - r.start if step > 0 else r.start - r.stop
    return max(0, (span + abs(step) - 1) // abs(step))


def check_dim_limit(d: Dim, limits: Limits, loc: Loc | None = None) -> None:
    """A size above `max_dim`; a symbolic one is refused when a coefficient is above it, as
    every symbol stands for at least 1."""
    if isinstance(d, int):
        if d > limits.max_dim:
            raise Problem("E0801", "a dimension larger than the limit", loc=loc,
                          label=f"{d:,} > {limits.max_dim:,}",
                          hint=raise_hint("max_dim"))
    elif any(abs(c) > limits.max_dim for _, c in d.terms):
        raise Problem("E0801", "a dimension larger than the limit", loc=loc,
                      label=f"`{format_dim(d)}` exceeds {limits.max_dim:,} for every value of "
                            f"its symbols", hint=raise_hint("max_dim"))


# ---- the graph under construction ------------------------------------------------------------
class GraphBuilder:
    def __init__(self, name: str, file: str, limits: Limits, counter: list[int]):
        self.graph = Graph(name=name, file=file)
        self.limits = limits
        self.steps = counter  # shared across the whole elaboration: bounds total work

    def add(self, op: str, inputs: list[Tensor], args: dict, type_: TensorType, loc: Loc | None,
            scope: str, layer: str | None = None) -> Tensor:
        nodes = self.graph.nodes
        if len(nodes) >= self.limits.max_nodes:
            raise Problem("E0801", "the model has too many operations",
                          label=f"the limit is {self.limits.max_nodes:,}",
                          hint=raise_hint("max_nodes"))
        if type_.rank > self.limits.max_rank:
            raise Problem("E0801", f"a tensor of rank {type_.rank}",
                          label=f"the limit is {self.limits.max_rank}",
                          hint=raise_hint("max_rank"))
        for d in type_.shape:
            check_dim_limit(d, self.limits)
        node = Node.model_construct(id=len(nodes), op=op, inputs=[t.node for t in inputs],
                                    args=args, type=type_, layer=layer, scope=scope, name=None,
                                    loc=loc)
        nodes.append(node)
        return Tensor(node.id, type_)


# ---- a frame: one definition instance being elaborated ---------------------------------------
@dataclass
class Frame:
    scope: FileScope
    definition: ast.Definition
    builder: GraphBuilder
    path: str
    env: dict[str, Any] = field(default_factory=dict)
    loop: tuple[int, ...] = ()  # the enclosing loops' variables
    iteration: tuple[int, ...] = ()  # the same loops' iterations, from 0
    unroll: int = 1  # iterations of the enclosing loops: bounds nested loops before they run
    reuse: bool = False
    sites: dict[int, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    outputs: list[tuple[str, Tensor | Poison, Loc]] = field(default_factory=list)
    inputs: list[tuple[str, Tensor]] = field(default_factory=list)
    used_inputs: set[str] = field(default_factory=set)
    train: TrainConfig | None = None
    train_loc: Loc | None = None
    depth: int = 0
    call_note: Note | None = None
    stack: tuple[str, ...] = ()
    taken: set[str] = field(default_factory=set)
    unnamed_params: set[int] = field(default_factory=set)  # Parameter nodes not yet bound
    input_locs: dict[str, Loc] = field(default_factory=dict)
    block_outputs: dict[int, tuple[Scope, int]] = field(default_factory=dict)  # of its calls
    names: dict[int, str] = field(default_factory=dict)  # layer sites' names (archdsl.sites)
    log: InstanceLog | None = None  # what each expression made, when tracing
    site: ast.Node | None = None  # the expression being evaluated, when tracing
    binding: dict[str, Any] = field(default_factory=dict)  # caller's expressions of my names

    def child_path(self, base: str) -> str:
        return f"{self.path}.{base}" if self.path else base

    def site_base(self, site: int, stem: str) -> str:
        base = self.names.get(site) or self.sites.get(site)
        if base is None:  # a site the syntactic pass cannot see (a layer class bound to a name)
            n = self.counters.get(stem, 1)
            while f"{stem}{n}" in self.taken:
                n += 1
            self.counters[stem] = n + 1
            base = f"{stem}{n}"
            self.taken.add(base)
            self.sites[site] = base
        return base

    def loop_suffix(self) -> str:
        """`.0.2`: the iteration of each enclosing loop, counted from 0 (a list index)."""
        return "".join(f".{i}" for i in self.iteration)


class Elaborator:
    """Runs definitions. With `trace=True` it also records, for code generators, what each
    expression made and how every size was computed (`staging`, `archdsl.expr.Traced`)."""

    def __init__(self, reporter: Reporter, limits: Limits, scopes: dict[str, FileScope],
                 trace: bool = False):
        self.reporter = reporter
        self.limits = limits
        self.scopes = scopes  # file -> the names visible in it
        self.steps = [0]
        self.suggestions = 100  # "did you mean" hints left for this run
        self.staging = Staging(scopes) if trace else None
        self._site_names: dict[int, dict[int, str]] = {}
        if trace:
            self.ev = self._ev_traced  # type: ignore[method-assign]

    def names_of(self, defn: ast.Definition) -> dict[int, str]:
        names = self._site_names.get(id(defn))
        if names is None:
            scope = self.scopes.get(defn.file)

            def stem_of(name: str) -> str | None:
                if scope is not None and name in scope.definitions:
                    return snake(name)
                op = REGISTRY.get(name)
                if op is not None and op.kind == "layer" and not op.meta.get("internal"):
                    return op.name_stem
                return None

            names = self._site_names[id(defn)] = site_names(defn, stem_of)
        return names

    # ---- entry points ----------------------------------------------------------------------
    def model(self, defn: ast.Definition, scope: FileScope, params: dict[str, Any],
              param_locs: dict[str, Loc] | None = None) -> Graph:
        builder = GraphBuilder(defn.name, defn.file, self.limits, self.steps)
        frame = Frame(scope, defn, builder, "", stack=(defn.name,), names=self.names_of(defn))
        frame.env.update(self._own_params(params))
        frame.taken.update(params)
        if self.staging is not None:
            frame.log = self.staging.begin(
                InstanceLog(defn, builder.graph, "", None, dict(frame.env)))
        self._run_model_body(frame)
        g = builder.graph
        g.params = {k: v for k, v in params.items()}
        g.loc = defn.name_loc
        g.train = frame.train
        if frame.log is not None:
            frame.log.inputs = list(frame.inputs)
            frame.log.outputs = [(n, t) for n, t, _ in frame.outputs if isinstance(t, Tensor)]
        return g

    def _own_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Parameters as a definition sees them: when tracing, each size is its own name."""
        if self.staging is None:
            return dict(params)
        return {k: _named(v, k) for k, v in params.items()}

    def _run_model_body(self, frame: Frame) -> None:
        defn = frame.definition
        self.run_body(defn.body, frame, top=True)
        g = frame.builder.graph
        g.inputs = [t.node for _, t in frame.inputs]
        g.input_names = [n for n, _ in frame.inputs]
        outs = [(n, t) for n, t, _ in frame.outputs]
        if not frame.outputs:
            self.reporter.error("E0604", f"`{defn.name}` has no output", defn.name_loc,
                                label="declare one with `output name = ...`")
            return
        if any(isinstance(t, Poison) for _, t in outs):
            raise Skip
        g.outputs = [t.node for _, t in outs]  # type: ignore[union-attr]
        g.output_names = [n for n, _ in outs]
        self._check_unused_inputs(frame)

    def _check_unused_inputs(self, frame: Frame) -> None:
        for name, _ in frame.inputs:
            if name not in frame.used_inputs:
                self.reporter.error("E0606", f"input `{name}` is never used",
                                    frame.input_locs.get(name), label="declared here",
                                    hint="remove it or use it")

    # ---- statements ------------------------------------------------------------------------
    def run_body(self, stmts: tuple[ast.Node, ...], frame: Frame, top: bool) -> None:
        for stmt in stmts:
            self.steps[0] += 1
            if self.steps[0] > self.limits.max_nodes * 2:
                raise Problem("E0801", "elaboration takes too many steps", loc=stmt.loc,
                              label="loops and repeats unroll to too much work",
                              hint=raise_hint("max_nodes"))
            try:
                self.statement(stmt, frame, top)
            except Problem as p:
                diag = p.at(stmt.loc)
                if frame.call_note and not diag.notes and (
                        diag.loc is None or diag.loc.file != "" ):
                    diag.notes = [frame.call_note]
                self.reporter.add(diag)
                self._poison(stmt, frame)
            except Skip:
                self._poison(stmt, frame)
            except RecursionError:
                raise
            except Exception as exc:  # a bug in archdsl: located, and every other error kept
                self.reporter.add(Diagnostic(
                    code="E9999", message=f"internal error: {exc!r}", loc=stmt.loc,
                    hint="please report this spec to the archdsl developers"))
                self._poison(stmt, frame)

    def _poison(self, stmt: ast.Node, frame: Frame) -> None:
        if isinstance(stmt, (ast.Assign, ast.Input)):
            frame.env[stmt.name] = POISON
        elif isinstance(stmt, ast.Destructure):
            for name in stmt.names:
                frame.env[name] = POISON
        elif isinstance(stmt, ast.Output):
            frame.env[stmt.name] = POISON
            if not any(n == stmt.name for n, _, _ in frame.outputs):
                frame.outputs.append((stmt.name, POISON, stmt.loc))
        elif isinstance(stmt, ast.For):
            for inner in stmt.body:
                self._poison(inner, frame)

    def statement(self, stmt: ast.Node, frame: Frame, top: bool) -> None:
        if isinstance(stmt, (ast.Input, ast.Assign, ast.Output)):
            check_name(stmt.name, getattr(stmt, "name_loc", stmt.loc))
        elif isinstance(stmt, ast.For):
            check_name(stmt.var, stmt.loc, "loop variable")
        elif isinstance(stmt, ast.Destructure):
            for name, loc in zip(stmt.names, stmt.name_locs, strict=True):
                check_name(name, loc)
        if isinstance(stmt, ast.Input):
            self.input(stmt, frame, top)
        elif isinstance(stmt, ast.Assign):
            value = self.ev(stmt.value, frame)
            if stmt.type is not None:
                self.check_declared(stmt.name, value, stmt.type, frame, stmt.value.loc)
            self.bind(frame, stmt.name, value, stmt.name_loc)
        elif isinstance(stmt, ast.Destructure):
            self.destructure(stmt, frame)
        elif isinstance(stmt, ast.Output):
            if not top:
                raise Problem("E0605", "`output` inside a `for` loop", loc=stmt.loc,
                              label="outputs are declared at the top of a block or model")
            if any(n == stmt.name for n, _, _ in frame.outputs):
                raise Problem("E0202", f"output `{stmt.name}` declared twice", loc=stmt.name_loc)
            value = self.ev(stmt.value, frame)
            if not isinstance(value, Tensor):
                raise Problem("E0204", f"output `{stmt.name}` must be a tensor",
                              loc=stmt.value.loc, label=f"this is {a_kind(value)}",
                              hint="it has several parts: bind them with `a, b = ...` or "
                                   "index one: `p[0]`" if isinstance(value, tuple) else None)
            if stmt.type is not None:
                self.check_declared(stmt.name, value, stmt.type, frame, stmt.value.loc)
            self.bind(frame, stmt.name, value, stmt.name_loc)
            frame.outputs.append((stmt.name, value, stmt.loc))
        elif isinstance(stmt, ast.AssertShape):
            value = self.lookup(stmt.name, frame, stmt.name_loc)
            if not isinstance(value, Tensor):
                raise Problem("E0204", f"`{stmt.name}` is {a_kind(value)}, not a tensor",
                              loc=stmt.name_loc, label="a shape assertion needs a tensor")
            self.check_declared(stmt.name, value, stmt.type, frame, stmt.name_loc)
        elif isinstance(stmt, ast.AssertCond):
            cond = self.ev(stmt.cond, frame)
            if not isinstance(cond, bool):
                raise Problem("E0402", "an assertion needs a true/false condition",
                              loc=stmt.cond.loc, label=f"this is {a_kind(cond)}")
            if not cond:
                raise Problem("E0404", stmt.message or "assertion failed", loc=stmt.cond.loc,
                              label="this is false" + self._explain(stmt.cond, frame))
        elif isinstance(stmt, ast.For):
            self.for_loop(stmt, frame)
        elif isinstance(stmt, ast.Train):
            if frame.definition.kind == "block":
                raise Problem("E0605", "`train` belongs in a `model` or `gan`, not a block",
                              loc=stmt.loc)
            if not top:
                raise Problem("E0605", "`train` inside a loop", loc=stmt.loc)
            if frame.train_loc is not None:
                raise Problem("E0701", "a second `train` section", loc=stmt.loc,
                              notes=[Note(message="the first one", loc=frame.train_loc)],
                              hint="merge the settings into one section")
            frame.train_loc = stmt.loc
            if frame.depth == 0:  # a model used as a layer keeps its training defaults
                frame.train = self.train_section(stmt, frame)
        else:  # pragma: no cover - the grammar has no other statements
            raise Problem("E0605", "statement not allowed here", loc=stmt.loc)

    def _explain(self, cond: ast.Node, frame: Frame) -> str:
        """`: d_model = 100, heads = 3` for the names in a failed condition."""
        names: list[str] = []
        stack = [cond]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Name) and n.id not in names:
                names.append(n.id)
            for attr in getattr(n, "__slots__", ()):
                child = getattr(n, attr, None)
                if isinstance(child, ast.Node):
                    stack.append(child)
        shown = []
        for name in sorted(names):
            v = frame.env.get(name)
            if isinstance(v, (int, float, str, Sym)) and not isinstance(v, bool):
                shown.append(f"{name} = {format_dim(v) if isinstance(v, Sym) else v}")
        return (": " + ", ".join(shown)) if shown else ""

    def destructure(self, stmt: ast.Destructure, frame: Frame) -> None:
        """`a, b = expr`: each name binds one part of a multi-output value, in order."""
        if stmt.type is not None:
            raise Problem("E0206", "a destructuring takes no type annotation", loc=stmt.type.loc,
                          label="the parts are not checked against one shape",
                          hint=f"check a part after binding it: `assert {stmt.names[0]}: [...]`")
        seen: dict[str, Loc] = {}
        for name, loc in zip(stmt.names, stmt.name_locs, strict=True):
            if name == "_":
                raise Problem("E0206", "`_` is not a wildcard in a destructuring", loc=loc,
                              label="every part needs a name",
                              hint="name the part you do not use; it costs nothing")
            if name in seen:
                raise Problem("E0206", f"`{name}` is bound twice in one destructuring", loc=loc,
                              notes=[Note(message="first here", loc=seen[name])])
            seen[name] = loc
        value = self.ev(stmt.value, frame)
        names = len(stmt.names)
        if not isinstance(value, (tuple, list)):
            raise Problem("E0206", f"{names} names, but the value has no parts",
                          loc=stmt.value.loc, label=f"this is {a_kind(value)}",
                          hint="destructure a multi-output value: a block with several outputs, "
                               "`split`, `chunk`, an `LSTMCell` or a recurrent layer with "
                               "`return_state=true`")
        if len(value) != names:
            shown = ", ".join(str(v.type) if isinstance(v, Tensor) else a_kind(v)
                              for v in value)
            raise Problem("E0206", f"{names} names for a value of {len(value)} "
                          f"part{'s' if len(value) != 1 else ''}", loc=stmt.value.loc,
                          label=f"its parts: {shown}",
                          hint="name exactly one part per name; `chunk` may give fewer parts "
                               "than asked" if len(value) < names else
                          "name every part, or index one: `p[0]`")
        for name, loc, part in zip(stmt.names, stmt.name_locs, value, strict=True):
            self.bind(frame, name, part, loc)

    def bind(self, frame: Frame, name: str, value: Any, loc: Loc) -> None:
        if isinstance(value, LayerValue) and value.bound is None and value.path is None:
            value.bound = name
            value.bound_suffix = frame.loop_suffix()
            frame.taken.add(name)
        if isinstance(value, Tensor):
            node = frame.builder.graph.nodes[value.node]
            if node.name is None and node.op != "input":
                node.name = name
            call = frame.block_outputs.get(value.node)
            if call is not None and call[0].caller_names[call[1]] is None:
                call[0].caller_names[call[1]] = name
            if value.node in frame.unnamed_params:  # `cls = Parameter(...)`: key `cls`
                frame.unnamed_params.discard(value.node)
                self._rename_layer(frame, node, frame.child_path(name + frame.loop_suffix()))
        frame.env[name] = value

    def _rename_layer(self, frame: Frame, node: Node, path: str) -> None:
        g = frame.builder.graph
        old = node.layer
        if old is None or old == path:
            return
        existing = g.layers.get(path)
        if existing is not None:
            if frame.reuse:  # a shared block's later call: its first call made the parameter
                if existing.params[0].shape != g.layers[old].params[0].shape:
                    raise Problem("E0303", f"the shared parameter `{path}` has another shape "
                                  "in this call", label=f"{g.layers[old].params[0].shape} here, "
                                  f"{existing.params[0].shape} in the first call")
                del g.layers[old]
                node.layer = path
            return
        g.layers = {(path if k == old else k): v for k, v in g.layers.items()}
        g.layers[path].path = path
        node.layer = path
        frame.taken.add(path.rsplit(".", 1)[-1])

    def input(self, stmt: ast.Input, frame: Frame, top: bool) -> None:
        if not top:
            raise Problem("E0605", "`input` inside a `for` loop", loc=stmt.loc,
                          label="inputs are declared at the top of a block or model")
        if any(n == stmt.name for n, _ in frame.inputs):
            raise Problem("E0202", f"input `{stmt.name}` declared twice", loc=stmt.loc)
        dtype = self.dtype_of(stmt.type)
        frame.input_locs[stmt.name] = stmt.loc
        bound = frame.env.get(f" input:{stmt.name}")
        if bound is not None:  # a block instance: bind to the caller's tensor
            bound = self.unify_input(stmt, bound, dtype, frame)
            frame.inputs.append((stmt.name, bound))
            frame.env[stmt.name] = bound
            return
        shape: list[Dim] = []
        index = len(frame.inputs)
        g = frame.builder.graph
        for axis, dim in enumerate(stmt.type.dims):
            if isinstance(dim, ast.Name) and dim.id not in frame.env and \
                    not self._is_global(dim.id, frame):
                sym = Sym.symbol(dim.id)
                frame.env[dim.id] = sym
                g.symbols[dim.id] = SymbolSource(input=index, axis=axis)
                shape.append(sym)
                continue
            shape.append(self.dim_value(dim, frame))
        t = frame.builder.add("input", [], {"name": stmt.name}, TensorType(dtype=dtype,
                              shape=tuple(shape)), stmt.loc, frame.path)
        frame.builder.graph.nodes[t.node].name = stmt.name
        frame.inputs.append((stmt.name, t))
        frame.env[stmt.name] = t

    def _is_global(self, name: str, frame: Frame) -> bool:
        return name in frame.scope.consts

    def dtype_of(self, t: ast.TensorTypeExpr) -> str:
        if t.dtype is None:
            return "f32"
        if t.dtype not in DTYPES:
            near = suggest(t.dtype, DTYPES)
            raise Problem("E0402", f"unknown dtype `{t.dtype}`", loc=t.dtype_loc,
                          label=f"one of {', '.join(DTYPES)}",
                          hint=f"did you mean `{near}`?" if near else None)
        return t.dtype

    def dim_value(self, dim: ast.Node, frame: Frame) -> Dim:
        name = dim.id if isinstance(dim, ast.Name) else None
        if name is not None and name not in frame.env and not self._is_global(name, frame) \
                and name not in frame.scope.definitions and name not in REGISTRY:
            sizes = [k for k, v in frame.env.items() if isinstance(v, Sym)]
            raise Problem("E0201", f"undefined dimension `{name}`", loc=dim.loc,
                          label="symbolic dimensions are introduced by model inputs only",
                          hint=f"symbolic dimensions here: {', '.join(sizes)}" if sizes else None)
        v = self.ev(dim, frame)
        if isinstance(v, bool) or not isinstance(v, (int, Sym)):
            raise Problem("E0402", "a dimension must be an integer", loc=dim.loc,
                          label=f"this is {a_kind(v)}")
        if isinstance(v, int) and v < 1:
            raise Problem("E0403", "a dimension must be at least 1", loc=dim.loc,
                          label=f"got {v}")
        check_dim_limit(v, self.limits, dim.loc)
        return v

    def unify_input(self, stmt: ast.Input, actual: Tensor, dtype: str, frame: Frame
                    ) -> Tensor:
        """Bind the sizes a block's input declares to the caller's tensor. The tensor the
        block sees is the caller's, with its sizes (when tracing) in the block's own names."""
        declared = stmt.type
        got = actual.type
        if len(declared.dims) != got.rank:
            raise Problem("E0303", f"input `{stmt.name}` of `{frame.definition.name}` expects "
                          f"rank {len(declared.dims)}", loc=stmt.type.loc,
                          label=f"declared {self._show_decl(declared)}, given {got}")
        seen: list[Dim] = []
        for dim, have in zip(declared.dims, got.shape, strict=True):
            if isinstance(dim, ast.Name) and dim.id not in frame.env and \
                    not self._is_global(dim.id, frame):
                frame.env[dim.id] = have
                if frame.log is not None and isinstance(have, int):
                    frame.binding[dim.id] = expr_of(have)
                    frame.env[dim.id] = _named(have, dim.id)
                seen.append(frame.env[dim.id])
                continue
            want = self.dim_value(dim, frame)
            if want != have:
                raise Problem("E0301", f"input `{stmt.name}` of `{frame.definition.name}` "
                              "has the wrong shape", loc=stmt.type.loc,
                              label=f"declared {self._show_decl(declared, frame)}, "
                                    f"given {got}")
            seen.append(want)
        if dtype != got.dtype:
            raise Problem("E0308", f"input `{stmt.name}` of `{frame.definition.name}` has the "
                          "wrong dtype", loc=stmt.type.loc,
                          label=f"declared {dtype}, given {got.dtype}")
        if frame.log is None:
            return actual
        return retyped(actual, got.with_shape(seen))

    def _show_decl(self, t: ast.TensorTypeExpr, frame: Frame | None = None) -> str:
        parts = []
        for d in t.dims:
            if frame is not None:
                try:
                    v = self.ev(d, frame)
                    if isinstance(v, (int, Sym)) and not isinstance(v, bool):
                        parts.append(format_dim(v))
                        continue
                except (Problem, Skip):
                    pass
            parts.append(d.id if isinstance(d, ast.Name) else "?")
        return "[" + ", ".join(parts) + "]"

    def check_declared(self, name: str, value: Any, t: ast.TensorTypeExpr, frame: Frame,
                       loc: Loc) -> None:
        if not isinstance(value, Tensor):
            raise Problem("E0204", f"`{name}` is {a_kind(value)}, not a tensor", loc=loc,
                          label="only tensors have shapes")
        want = [self.dim_value(d, frame) for d in t.dims]
        got = value.type
        if len(want) != got.rank or any(a != b for a, b in zip(want, got.shape, strict=False)):
            raise Problem("E0301", f"`{name}` does not have the declared shape", loc=t.loc,
                          label=f"declared {format_shape(want)}, but it is {got}",
                          hint=self._shape_hint(want, got))
        if t.dtype is not None and self.dtype_of(t) != got.dtype:
            raise Problem("E0308", f"`{name}` does not have the declared dtype", loc=t.loc,
                          label=f"declared {t.dtype}, but it is {got.dtype}")

    def _shape_hint(self, want: list[Dim], got: TensorType) -> str | None:
        if len(want) != got.rank:
            return "the ranks differ: a Flatten, Reshape or pooling step may be missing"
        diffs = [i for i, (a, b) in enumerate(zip(want, got.shape, strict=True)) if a != b]
        if len(diffs) == 1:
            return f"dimension {diffs[0]} differs"
        return None

    def for_loop(self, stmt: ast.For, frame: Frame) -> None:
        for a in stmt.args:
            if isinstance(a, ast.Keyword):
                raise Problem("E0401", "`range` takes its bounds by position", loc=a.loc,
                              hint="`range(n)` or `range(start, stop, step)`")
        bounds = [self.ev(a, frame) for a in stmt.args]
        if not 1 <= len(bounds) <= 3 or any(
                isinstance(b, bool) or not isinstance(b, int) for b in bounds):
            if any(isinstance(b, Sym) for b in bounds):
                raise Problem("E0405", "a loop count must be known at compile time",
                              loc=stmt.loc, label="it depends on a symbolic dimension")
            raise Problem("E0402", "`range` takes one to three integers", loc=stmt.loc,
                          label=f"got {', '.join(kind_of(b) for b in bounds) or 'nothing'}")
        if len(bounds) == 3 and bounds[2] == 0:
            raise Problem("E0403", "a `range` step of 0", loc=stmt.args[2].loc,
                          label="the step must not be zero")
        r = range(*bounds)
        count = range_length(r)
        if count > self.limits.max_loop:
            raise Problem("E0801", "a loop with too many iterations", loc=stmt.loc,
                          label=f"{count:,} > {self.limits.max_loop:,}",
                          hint=raise_hint("max_loop"))
        work = frame.unroll * count * len(stmt.body)
        if work > self.limits.max_nodes * 2:
            raise Problem("E0801", "nested loops unroll to too much work", loc=stmt.loc,
                          label=f"{work:,} statements to run > {self.limits.max_nodes * 2:,}",
                          hint=raise_hint("max_nodes"))
        saved, outer = frame.env.get(stmt.var), frame.unroll
        frame.unroll *= count
        tracing = self.staging is not None and frame.log is not None
        if tracing:
            self.record(frame, Record("loop", frame.loop, count=count), stmt)
            if not count:  # no iteration ran: elaborate one, only to record its code
                self.speculate(frame, lambda: self._iterate(stmt, frame, [r.start], 1))
        try:
            self._iterate(stmt, frame, r, count)
        finally:
            frame.unroll = outer
        if tracing and r:  # a size computed in the loop reads `i` as its last value
            frame.env = {k: _retrace_value(v, {stmt.var: expr_of(_last(bounds))})
                         for k, v in frame.env.items()}
        if saved is None:
            frame.env.pop(stmt.var, None)
        else:
            frame.env[stmt.var] = saved

    def _iterate(self, stmt: ast.For, frame: Frame, values: Any, count: int) -> None:
        nodes = frame.builder.graph.nodes
        for k, i in enumerate(values):
            before = len(nodes)
            frame.env[stmt.var] = _named(i, stmt.var) if frame.log is not None else i
            frame.loop, frame.iteration = (*frame.loop, i), (*frame.iteration, k)
            try:
                self.run_body(stmt.body, frame, top=False)
            finally:
                frame.loop, frame.iteration = frame.loop[:-1], frame.iteration[:-1]
            if k == 0:
                self._predict_nodes(len(nodes) - before, count - 1, frame,
                                    f"{count:,} iterations of this loop")

    def _predict_nodes(self, each: int, more: int, frame: Frame, what: str) -> None:
        """Refuse, after the first of several copies, work that the graph limit would refuse
        only after building all but the last copy."""
        total = len(frame.builder.graph.nodes) + each * more
        if total > self.limits.max_nodes:
            raise Problem("E0801", f"{what} would build about {total:,} operations",
                          label=f"{each:,} operations each, more than "
                                f"{self.limits.max_nodes:,} in the graph",
                          hint=raise_hint("max_nodes"))

    # ---- expressions -----------------------------------------------------------------------
    def ev(self, e: ast.Node, frame: Frame) -> Any:
        method = self._dispatch[type(e)]
        try:
            return method(self, e, frame)
        except Problem as p:
            if p.loc is None:
                p.loc = e.loc
            raise
        except SymbolicLimit as exc:
            raise Problem("E0801", str(exc), loc=e.loc,
                          label="symbolic sizes stay small enough to compare and print",
                          hint="see docs/limits.md") from None
        except SymbolicError as exc:
            raise Problem("E0405", str(exc), loc=e.loc) from None

    def _ev_traced(self, e: ast.Node, frame: Frame) -> Any:
        """`ev` that keeps `frame.site`: what an op application makes is recorded there."""
        outer, frame.site = frame.site, e
        try:
            return Elaborator.ev(self, e, frame)
        finally:
            frame.site = outer

    def record(self, frame: Frame, record: Record, site: ast.Node | None = None) -> None:
        if self.staging is not None and frame.log is not None:
            self.staging.add(frame.log, site or frame.site or frame.definition, record)

    def speculate(self, frame: Frame, run: Callable[[], Any]) -> bool:
        """Run `run` only to record what it makes (an `if` branch not taken); report nothing,
        keep nothing in the graph. False if it has no valid elaboration here."""
        assert self.staging is not None
        reporter = self.reporter
        errors, warnings = len(reporter.errors), len(reporter.warnings)
        env, taken, used = dict(frame.env), set(frame.taken), set(frame.used_inputs)
        sites, counters = dict(frame.sites), dict(frame.counters)
        unnamed, outputs = set(frame.unnamed_params), dict(frame.block_outputs)
        layers = [(v, v.path, list(v.applied)) for v in env.values() if isinstance(v, LayerValue)]

        def restore() -> None:
            del reporter.errors[errors:]
            del reporter.warnings[warnings:]
            frame.env, frame.taken, frame.used_inputs = env, taken, used
            frame.sites, frame.counters = sites, counters
            frame.unnamed_params, frame.block_outputs = unnamed, outputs
            for lv, path, applied in layers:
                lv.path, lv.applied = path, applied

        ok = True
        with self.staging.speculate(frame.builder.graph, restore):
            try:
                run()
            except (Problem, Skip, SymbolicError, RecursionError):
                ok = False
        return ok

    def lookup(self, name: str, frame: Frame, loc: Loc) -> Any:
        if name in frame.env:
            v = frame.env[name]
            if isinstance(v, Poison):
                raise Skip
            return v
        scope = frame.scope
        if name in scope.consts:
            return self.const(name, scope, loc)
        if name in scope.definitions:
            return LayerClass(name, definition=scope.definitions[name])
        op = REGISTRY.get(name)
        if op is not None and not op.meta.get("internal"):
            return LayerClass(name, op=op) if op.kind == "layer" else Function(op)
        if name in ("min", "max"):
            return ScalarFunction(name)
        if name in ("SGD", "Adam", "AdamW"):
            return OptimizerClass(name)
        if name in SCHEDULES:
            return ScheduleClass(name)
        near_layer = self._suggest(name, lambda: [
            *(n for n, o in REGISTRY.items() if o.kind == "layer"), *scope.definitions]) \
            if name[:1].isupper() else None
        if near_layer or (name[:1].isupper() and any(c.islower() for c in name)):
            raise Problem("E0203", f"unknown layer `{name}`", loc=loc,
                          label="not a layer of the language or a block in scope",
                          hint=f"did you mean `{near_layer}`?" if near_layer else
                          "define it with `block` or import the file that does")
        near = self._suggest(name, lambda: [
            *(n for n in frame.env if not n.startswith(" ")), *scope.consts,
            *(n for n, o in REGISTRY.items()
              if o.kind == "function" and not o.meta.get("internal"))])
        raise Problem("E0201", f"undefined name `{name}`", loc=loc,
                      label="not defined before this point",
                      hint=f"did you mean `{near}`?" if near else None)

    def _suggest(self, name: str, candidates: Callable[[], list[str]]) -> str | None:
        """`suggest` while this run's budget lasts: it scans every name in scope, so a spec
        with thousands of undefined names gets hints for its first ones only."""
        if self.suggestions <= 0:
            return None
        self.suggestions -= 1
        return suggest(name, candidates())

    def const(self, name: str, scope: FileScope, loc: Loc) -> Any:
        owner = scope.const_scopes.get(name, scope)
        if name in owner.const_values:
            return owner.const_values[name]
        decl = owner.consts[name]
        if name in owner.evaluating:
            cycle = " -> ".join([*owner.evaluating[owner.evaluating.index(name):], name])
            raise Problem("E0607", f"constants defined in a cycle: {cycle}", loc=loc,
                          label="used before it has a value")
        owner.evaluating.append(name)
        try:
            tmp = Frame(owner, ast.Definition(decl.loc, "const", name, decl.name_loc, (), (),
                                              owner.file), GraphBuilder("", "", self.limits,
                                                                        self.steps), "")
            value = self.ev(decl.value, tmp)
        finally:
            owner.evaluating.remove(name)
        if isinstance(value, Tensor) or isinstance(value, (LayerValue,)):
            raise Problem("E0204", f"constant `{name}` must be a number, string or bool",
                          loc=decl.value.loc, label=f"this is {a_kind(value)}")
        owner.const_values[name] = value
        return value

    def _name(self, e: ast.Name, frame: Frame) -> Any:
        v = self.lookup(e.id, frame, e.loc)
        if isinstance(v, Tensor) and any(n == e.id and t is v for n, t in frame.inputs):
            frame.used_inputs.add(e.id)
        return v

    def _literal(self, e: ast.Literal, frame: Frame) -> Any:
        return e.value

    def _tuple(self, e: ast.TupleExpr, frame: Frame) -> Any:
        return tuple(self.ev(x, frame) for x in e.items)

    def _list(self, e: ast.ListExpr, frame: Frame) -> Any:
        return [self.ev(x, frame) for x in e.items]

    def _unary(self, e: ast.UnaryOp, frame: Frame) -> Any:
        v = self.ev(e.operand, frame)
        if e.op == "not":
            if not isinstance(v, bool):
                raise Problem("E0402", "`not` needs a true/false value",
                              label=f"this is {a_kind(v)}")
            return not v
        if isinstance(v, Tensor):
            return self.apply_op(REGISTRY["neg"], {}, [v], e.loc, frame)
        if isinstance(v, bool) or not isinstance(v, (int, float, Sym)):
            raise Problem("E0402", "unary `-` needs a number or a tensor",
                          label=f"this is {a_kind(v)}")
        return -v

    def _ifelse(self, e: ast.IfElse, frame: Frame) -> Any:
        cond = self.ev(e.cond, frame)
        if not isinstance(cond, bool):
            raise Problem("E0402", "an `if` condition must be true or false", loc=e.cond.loc,
                          label=f"this is {a_kind(cond)}")
        if self.staging is not None and frame.log is not None:
            other = e.orelse if cond else e.then
            ok = self.speculate(frame, lambda: self.ev(other, frame))
            self.record(frame, Record("if", frame.loop, taken=cond, failed=not ok), e)
        return self.ev(e.then if cond else e.orelse, frame)

    def _binop(self, e: ast.BinOp, frame: Frame) -> Any:
        if e.op in ("and", "or"):
            a = self.ev(e.left, frame)
            if not isinstance(a, bool):
                raise Problem("E0402", f"`{e.op}` needs true/false values", loc=e.left.loc,
                              label=f"this is {a_kind(a)}")
            if (e.op == "and" and not a) or (e.op == "or" and a):
                return a
            b = self.ev(e.right, frame)
            if not isinstance(b, bool):
                raise Problem("E0402", f"`{e.op}` needs true/false values", loc=e.right.loc,
                              label=f"this is {a_kind(b)}")
            return b
        a, b = self._both(e.left, e.right, frame)
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            return self.tensor_binop(e, a, b, frame)
        if isinstance(a, LayerValue | LayerClass) or isinstance(b, LayerValue | LayerClass):
            return self.repeat(e, a, b, frame)
        if isinstance(a, str) and isinstance(b, str) and e.op == "+":
            check_string_limit(len(a) + len(b), self.limits)
        return scalar_binop(e.op, a, b)

    def tensor_binop(self, e: ast.BinOp, a: Any, b: Any, frame: Frame) -> Tensor:
        op = TENSOR_OPERATORS.get(e.op)
        if op is None:
            raise Problem("E0402", f"`{e.op}` is not defined for tensors", loc=e.op_loc or e.loc,
                          hint="tensors support + - * / ** @ and the comparisons")
        if op == "matmul":
            for side, v in (("left", a), ("right", b)):
                if not isinstance(v, Tensor):
                    raise Problem("E0402", "`@` needs two tensors",
                                  label=f"the {side} side is {a_kind(v)}")
            return self.apply_op(REGISTRY[op], {}, [a, b], e.loc, frame)
        if op == "pow":
            if not isinstance(a, Tensor) or isinstance(b, Tensor):
                raise Problem("E0402", "a tensor power needs a number exponent: `x ** p`",
                              label=f"the base is {a_kind(a)}, the exponent {a_kind(b)}",
                              hint="`exp(log(b) * x)` raises a number to a tensor power")
            self._check_number(e, b)
            return self.apply_op(REGISTRY[op], {"exponent": b}, [a], e.loc, frame)
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            return self.apply_op(REGISTRY[op], {"scalar": None, "scalar_first": False}, [a, b],
                                 e.loc, frame)
        scalar, tensor, first = (b, a, False) if isinstance(a, Tensor) else (a, b, True)
        self._check_number(e, scalar)
        return self.apply_op(REGISTRY[op], {"scalar": scalar, "scalar_first": first}, [tensor],
                             e.loc, frame)

    def _check_number(self, e: ast.BinOp, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            if isinstance(v, Sym):
                raise Problem("E0405", f"`{e.op}` with the symbolic `{format_dim(v)}`",
                              label="a tensor operator with a symbolic size is not supported")
            raise Problem("E0402", f"`{e.op}` between a tensor and {a_kind(v)}",
                          label="the other side must be a tensor or a number")

    def repeat(self, e: ast.BinOp, a: Any, b: Any, frame: Frame) -> LayerValue:
        layer, n = (a, b) if isinstance(a, LayerValue | LayerClass) else (b, a)
        if e.op != "*" or isinstance(n, bool) or not isinstance(n, int):
            raise Problem("E0402", f"`{e.op}` is not defined for a layer and {a_kind(n)}",
                          label="`L * n` repeats a layer n times")
        if n < 1:
            raise Problem("E0403", "a layer must be repeated at least once", label=f"got {n}")
        if n > self.limits.max_repeat:
            raise Problem("E0801", "a repeat count above the limit",
                          label=f"{n:,} > {self.limits.max_repeat:,}",
                          hint=raise_hint("max_repeat"))
        base = layer if isinstance(layer, LayerValue) else self.configure(layer, (), (), e, frame)
        if not isinstance(base, LayerValue):
            raise Problem("E0402", f"`{layer.name}` cannot be repeated", label="it is a tensor")
        return LayerValue(base.cls, base.args, e.loc, id(e), repeat=base.repeat * n,
                          repeated=True)

    def _both(self, left: ast.Node, right: ast.Node, frame: Frame) -> tuple[Any, Any]:
        """Evaluate two operands; if the left one was poisoned, still check the right one."""
        try:
            a = self.ev(left, frame)
        except Skip:
            self.ev(right, frame)
            raise
        return a, self.ev(right, frame)

    def _pipeline(self, e: ast.Pipeline, frame: Frame) -> Any:
        src, stage = self._both(e.source, e.stage, frame)
        inputs = list(src) if isinstance(src, tuple) else [src]
        for v in inputs:
            if not isinstance(v, Tensor):
                raise Problem("E0204", f"only tensors flow through `|>`; this is {a_kind(v)}",
                              loc=e.source.loc, label="the left side of `|>`")
        try:
            if isinstance(stage, LayerClass):
                stage = self.configure(stage, (), (), e.stage, frame)
            if isinstance(stage, LayerValue):
                return self.apply_layer(stage, inputs, {}, e.stage.loc, frame)
            if isinstance(stage, Function):
                return self.apply_function(stage.op, inputs, [], {}, e.stage.loc, frame)
        except Problem as p:
            if p.loc is None:
                p.loc = e.stage.loc
            raise
        raise Problem("E0204", f"{a_kind(stage)} cannot be a pipeline stage", loc=e.stage.loc,
                      label="expected a layer such as `ReLU` or `Linear(10)`")

    def _call(self, e: ast.Call, frame: Frame) -> Any:
        func = self.ev(e.func, frame)
        if isinstance(func, LayerClass):
            return self.configure(func, e.args, e.kwargs, e, frame)
        args = [self.ev(a, frame) for a in e.args]
        kwargs: dict[str, Any] = {}
        for k in e.kwargs:
            if k.name in kwargs:
                raise Problem("E0401", f"argument `{k.name}` given twice", loc=k.loc)
            kwargs[k.name] = self.ev(k.value, frame)
        if isinstance(func, LayerValue):
            for v in [*args, *kwargs.values()]:
                if not isinstance(v, Tensor):
                    raise Problem("E0204", f"a configured layer is applied to tensors, not a "
                                  f"{kind_of(v)}", loc=e.loc,
                                  hint="settings go in the first call: `Layer(settings)(x)`")
            return self.apply_layer(func, args, kwargs, e.loc, frame)
        if isinstance(func, Function):
            n_in = len(func.op.inputs)
            return self.apply_function(func.op, args[:n_in], args[n_in:], kwargs, e.loc, frame,
                                       arg_locs=self._arg_locator(e, n_in))
        if isinstance(func, ScalarFunction):
            return self.scalar_function(func.name, args, kwargs, e)
        if isinstance(func, OptimizerClass):
            return self.optimizer(func.name, args, kwargs, e)
        if isinstance(func, ScheduleClass):
            return self.schedule(func.name, args, kwargs, e)
        raise Problem("E0204", f"{a_kind(func)} cannot be called", loc=e.func.loc,
                      label="not a layer or a function")

    def _arg_locator(self, e: ast.Call, skip: int) -> Callable[[str | int], Loc | None]:
        def locate(key: str | int) -> Loc | None:
            if isinstance(key, int):
                i = key + skip
                return e.args[i].loc if i < len(e.args) else None
            for k in e.kwargs:
                if k.name == key:
                    return k.loc
            return None
        return locate

    def _index(self, e: ast.Index, frame: Frame) -> Any:
        value = self.ev(e.value, frame)
        if isinstance(value, (tuple, list)):
            if len(e.items) != 1 or isinstance(e.items[0], ast.Slice):
                raise Problem("E0402", "a tuple takes one integer index")
            i = self.ev(e.items[0], frame)
            if isinstance(i, bool) or not isinstance(i, int):
                raise Problem("E0402", "a tuple index must be an integer",
                              label=f"got {kind_of(i)}")
            if not -len(value) <= i < len(value):
                raise Problem("E0307", f"index {i} out of range", label=f"{len(value)} items")
            return value[i]
        if not isinstance(value, Tensor):
            raise Problem("E0204", f"{a_kind(value)} cannot be indexed", loc=e.value.loc)
        items: list[Any] = []
        for item in e.items:
            if isinstance(item, ast.Slice):
                parts = [None if p is None else self._int_index(p, frame)
                         for p in (item.start, item.stop, item.step)]
                items.append(parts)
            else:
                items.append(self._int_index(item, frame))
        return self.apply_op(REGISTRY["getitem"], {"index": items}, [value], e.loc, frame)

    def _int_index(self, node: ast.Node, frame: Frame) -> int:
        v = self.ev(node, frame)
        if isinstance(v, Sym):
            raise Problem("E0405", "an index must be known at compile time", loc=node.loc,
                          label=f"`{format_dim(v)}` is symbolic")
        if isinstance(v, bool) or not isinstance(v, int):
            raise Problem("E0402", "indices must be integers", loc=node.loc,
                          label=f"got {kind_of(v)}", hint="use `x[:, 0:4]` for a range")
        return v

    def _attribute(self, e: ast.Attribute, frame: Frame) -> Any:
        base = self.ev(e.value, frame)
        if isinstance(base, ParamRef):
            layer, name = base.layer, f"{base.prefix}.{e.name}"
        elif isinstance(base, LayerValue):
            layer, name = base, e.name
        else:
            raise Problem("E0204", f"{a_kind(base)} has no attribute `{e.name}`", loc=e.loc,
                          hint="parameters are read from a bound layer: `wte.weight`")
        if layer.path is None or layer.repeat != 1 or layer.cls.op is None:
            raise Problem("E0204", f"`{e.name}` cannot be read here", loc=e.loc,
                          label="apply the layer before reading its parameters"
                          if layer.path is None else "only a single layer's parameters are "
                          "readable")
        spec = frame.builder.graph.layers.get(layer.path)
        if spec is None:  # its application failed, and said why
            raise Skip
        for p in spec.params:
            if p.name == name and p.kind == "param":
                return self.apply_op(REGISTRY["param"], {"name": name, "shape": list(p.shape)},
                                     [], e.loc, frame, layer_path=layer.path)
        if any(p.name.startswith(name + ".") for p in spec.params):
            return ParamRef(layer, name)
        names = [p.name for p in spec.params if p.kind == "param"]
        raise Problem("E0201", f"`{spec.op}` has no parameter `{name}`", loc=e.loc,
                      label=f"its parameters: {', '.join(names) or 'none'}")

    _dispatch: dict[type, Callable[..., Any]] = {
        ast.Name: _name, ast.Literal: _literal, ast.TupleExpr: _tuple, ast.ListExpr: _list,
        ast.UnaryOp: _unary, ast.IfElse: _ifelse, ast.BinOp: _binop, ast.Pipeline: _pipeline,
        ast.Call: _call, ast.Index: _index, ast.Attribute: _attribute,
    }

    # ---- layers ----------------------------------------------------------------------------
    def configure(self, cls: LayerClass, args: tuple[ast.Node, ...],
                  kwargs: tuple[ast.Keyword, ...], site: ast.Node, frame: Frame) -> LayerValue:
        values = [self.ev(a, frame) for a in args]
        kw: dict[str, Any] = {}
        for k in kwargs:
            if k.name in kw:
                raise Problem("E0401", f"argument `{k.name}` given twice", loc=k.loc)
            kw[k.name] = self.ev(k.value, frame)
        n_inputs = len(cls.op.inputs) if cls.op is not None else sum(
            isinstance(s, ast.Input) for s in cls.definition.body)  # type: ignore[union-attr]
        for node, v in [*zip(args, values, strict=True),
                        *((k.value, kw[k.name]) for k in kwargs)]:
            if isinstance(v, (Tensor, LayerValue, LayerClass)):
                settings = "(...)" if (cls.op.args if cls.op else cls.definition.params) \
                    else "()"  # type: ignore[union-attr]
                apply = f"x |> {cls.name}{settings}" if n_inputs == 1 else \
                    f"{cls.name}{settings}({', '.join('xyzuvw'[:max(n_inputs, 2)])})"
                raise Problem("E0204", f"`{cls.name}` takes settings, not {a_kind(v)}",
                              loc=node.loc, hint=f"configure it, then apply it: `{apply}`"
                              if isinstance(v, Tensor) else None)
        call = site if isinstance(site, ast.Call) else None

        def locate(key: str | int) -> Loc | None:
            if call is None:
                return None
            if isinstance(key, int):
                return call.args[key].loc if key < len(call.args) else None
            for k in call.kwargs:
                if k.name == key:
                    return k.loc
            return None

        if cls.op is not None:
            bound = bind_args(cls.op, values, kw, locate)
        else:
            assert cls.definition is not None
            bound = self.bind_params(cls.definition, values, kw, locate, site.loc)
        lv = LayerValue(cls, bound, site.loc, id(site))
        if cls.op is not None and not cls.op.inputs:  # `Parameter(...)` is a tensor at once
            t = self.apply_layer(lv, [], {}, site.loc, frame)
            frame.unnamed_params.add(t.node)
            return t
        return lv

    def bind_params(self, defn: ast.Definition, values: list[Any], kw: dict[str, Any],
                    locate: Callable[[str | int], Loc | None], loc: Loc) -> dict[str, Any]:
        names = [p.name for p in defn.params]
        if len(values) > len(names):
            raise Problem("E0401", f"`{defn.name}` takes {len(names)} argument"
                          f"{'s' if len(names) != 1 else ''}, got {len(values)}", loc=loc,
                          hint=_def_signature(defn))
        given = dict(zip(names, values, strict=False))
        for k, v in kw.items():
            if k not in names:
                near = suggest(k, names)
                raise Problem("E0401", f"`{defn.name}` has no parameter `{k}`", loc=locate(k),
                              label="unknown argument",
                              hint=f"did you mean `{near}`?" if near else _def_signature(defn))
            if k in given:
                raise Problem("E0401", f"parameter `{k}` of `{defn.name}` given twice",
                              loc=locate(k))
            given[k] = v
        return self.complete_params(defn, given, locate, loc)

    def complete_params(self, defn: ast.Definition, given: dict[str, Any],
                        locate: Callable[[str | int], Loc | None] | None, loc: Loc
                        ) -> dict[str, Any]:
        """Check given values against parameter types and fill defaults in order."""
        scope = self.scopes[defn.file]
        tmp = Frame(scope, defn,
                    GraphBuilder("", "", self.limits, self.steps), "")
        out: dict[str, Any] = {}
        for i, p in enumerate(defn.params):
            if p.name in given:
                v = given[p.name]
                where = (locate(p.name) or locate(i)) if locate else p.loc
                if isinstance(v, str):
                    check_string_limit(len(v), self.limits)
            elif p.default is not None:
                v = self.ev(p.default, tmp)
                where = p.default.loc
            else:
                raise Problem("E0401", f"`{defn.name}` needs the parameter `{p.name}`",
                              loc=loc, label=f"missing `{p.name}`", hint=_def_signature(defn))
            out[p.name] = check_param_type(defn, p, v, where)
            tmp.env[p.name] = out[p.name]
        return out

    def apply_layer(self, lv: LayerValue, inputs: list[Any], kw_inputs: dict[str, Any],
                    loc: Loc, frame: Frame) -> Any:
        if lv.repeat > 1 or lv.repeated:
            if len(inputs) != 1 or kw_inputs:
                raise Problem("E0401", "a repeated layer takes one tensor", loc=loc)
            x = inputs[0]
            base = self.layer_path(lv, frame)
            nodes = frame.builder.graph.nodes
            for k in range(lv.repeat):
                copy = LayerValue(lv.cls, lv.args, lv.loc, lv.site)
                copy.path = f"{base}.{k}"
                if k < len(lv.applied):
                    copy.applied = [lv.applied[k]]
                before = len(nodes)
                x = self.apply_single(copy, [x], {}, loc, frame, shared=k < len(lv.applied))
                if k == 0:
                    self._predict_nodes(len(nodes) - before, lv.repeat - 1, frame,
                                        f"{lv.repeat:,} copies of `{lv.cls.name}`")
                if k >= len(lv.applied):
                    lv.applied.append(copy.applied[0])
                if isinstance(x, tuple):
                    raise Problem("E0401", "a repeated block must have one output", loc=loc)
            return x
        shared = bool(lv.applied)
        if lv.path is None:
            lv.path = self.layer_path(lv, frame)
        out = self.apply_single(lv, inputs, kw_inputs, loc, frame, shared=shared)
        return out

    def layer_path(self, lv: LayerValue, frame: Frame) -> str:
        if lv.bound is not None:
            return frame.child_path(lv.bound + lv.bound_suffix)
        stem = lv.cls.name.lower()
        return frame.child_path(frame.site_base(lv.site, stem) + frame.loop_suffix())

    def apply_single(self, lv: LayerValue, inputs: list[Any], kw_inputs: dict[str, Any],
                     loc: Loc, frame: Frame, shared: bool) -> Any:
        assert lv.path is not None
        if lv.cls.op is not None:
            op = lv.cls.op
            tensors = self.order_inputs(op.name, list(op.inputs), op.n_min_inputs, inputs,
                                        kw_inputs, loc, op.keyword_inputs)
            given = {k: k in kw_inputs for k in op.keyword_inputs}
            out = self.apply_op(op, {**lv.args, **given}, tensors, loc, frame,
                                layer_path=lv.path, shared=shared)
            if not shared:
                lv.applied.append(True)
            return out
        defn = lv.cls.definition
        assert defn is not None
        out = self.apply_definition(defn, lv.args, inputs, kw_inputs, loc, frame, lv.path,
                                    reuse=shared)
        if not shared:
            lv.applied.append(True)
        return out

    def order_inputs(self, name: str, declared: list[str], n_min: int, inputs: list[Any],
                     kw_inputs: dict[str, Any], loc: Loc, keyword_only: tuple[str, ...] = ()
                     ) -> list[Tensor]:
        """Positional and named inputs in declared order; keyword-only inputs, when given,
        follow them (OpDef.keyword_inputs)."""
        positional = [d for d in declared if d not in keyword_only]
        tensors = list(inputs)
        extra: dict[str, Any] = {}
        for k, v in kw_inputs.items():
            if k in keyword_only:
                extra[k] = v
                continue
            if k not in declared:
                raise Problem("E0401", f"`{name}` has no input `{k}`", loc=loc,
                              label=f"its inputs: {', '.join(declared) or 'none'}")
            idx = positional.index(k)
            while len(tensors) <= idx:
                tensors.append(None)
            if tensors[idx] is not None:
                raise Problem("E0401", f"input `{k}` of `{name}` given twice", loc=loc)
            tensors[idx] = v
        if any(t is None for t in tensors) or not n_min <= len(tensors) <= len(positional):
            want = str(len(positional)) if n_min == len(positional) else \
                f"{n_min} to {len(positional)}"
            raise Problem("E0401", f"`{name}` takes {want} input tensor"
                          f"{'s' if len(positional) != 1 else ''}, got {len(tensors)}", loc=loc,
                          label=f"inputs: {', '.join(positional) or 'none'}",
                          hint=f"give {', '.join(f'`{k}=`' for k in keyword_only)} by name"
                          if keyword_only else None)
        return tensors + [extra[k] for k in keyword_only if k in extra]  # type: ignore[return-value]

    def apply_op(self, op: OpDef, args: dict[str, Any], inputs: list[Tensor], loc: Loc,
                 frame: Frame, layer_path: str | None = None, shared: bool = False) -> Any:
        """The op's node (a tensor), or for a multi-output op a tuple of its `part` nodes."""
        types = [t.type for t in inputs]
        norm = op.normalize(dict(args), types)
        out = op.shape(norm, types)
        parts = list(out) if op.multi_output(norm) else None  # type: ignore[arg-type]
        g = frame.builder.graph
        node_layer = layer_path if op.kind == "layer" or op.name == "param" else None
        if op.kind == "layer":
            assert layer_path is not None
            params = op.params(norm, types)
            _check_param_dtypes(op.name, types, params)
            existing = g.layers.get(layer_path)
            # Whether a keyword input was given is a fact of one call, not of the layer.
            layer_args = {k: v for k, v in norm.items() if k not in op.keyword_inputs}
            if existing is not None:
                if not (shared or frame.reuse):
                    raise Problem("E0202", f"two layers named `{layer_path}`", loc=loc,
                                  hint="rename one of the bindings")
                if [p.shape for p in existing.params] != [p.shape for p in params] or \
                        existing.args != layer_args:
                    raise Problem("E0303", f"the shared layer `{layer_path}` is applied to an "
                                  "input it does not fit", loc=loc,
                                  label=f"input {', '.join(str(t) for t in types)}",
                                  hint="a layer bound to a name shares its parameters; use a "
                                       "fresh layer for a differently sized input")
            else:
                g.layers[layer_path] = Layer.model_construct(path=layer_path, op=op.name,
                                                             args=layer_args, params=params,
                                                             loc=loc)
        if parts is None:
            t = frame.builder.add(op.name, inputs, norm, out, loc, frame.path, node_layer)
            self.record(frame, Record("node", frame.loop, node=t.node))
            return t
        whole = frame.builder.add(op.name, inputs, norm, parts[0], loc, frame.path, node_layer)
        g.nodes[whole.node].parts = parts
        part = REGISTRY["part"]
        pieces = tuple(frame.builder.add("part", [whole], {"index": k},
                                         part.shape({"index": k}, parts), loc, frame.path)
                       for k in range(len(parts)))
        self.record(frame, Record("node", frame.loop, node=whole.node, outputs=pieces))
        return pieces

    def apply_function(self, op: OpDef, tensors: list[Any], rest: list[Any],
                       kwargs: dict[str, Any], loc: Loc, frame: Frame,
                       arg_locs: Callable[[str | int], Loc | None] | None = None) -> Any:
        if op.tensor_list_input:
            if not tensors or not isinstance(tensors[0], (list, tuple)):
                raise Problem("E0402", f"`{op.name}` takes a list of tensors first",
                              hint=f"`{op.name}([a, b], dim=1)`")
            tensors = list(tensors[0])
        numbers: dict[str, Any] = {}
        for i, t in enumerate(tensors):
            name = op.inputs[i] if i < len(op.inputs) else ""
            if name in op.number_inputs and isinstance(t, (int, float)) \
                    and not isinstance(t, bool):
                numbers[name] = t
            elif not isinstance(t, Tensor):
                raise Problem("E0402", f"`{op.name}` needs tensor input, got {a_kind(t)}",
                              loc=arg_locs(i - len(op.inputs))
                              if arg_locs and not op.tensor_list_input else None,
                              hint=f"`{name}` of `{op.name}` is a tensor or a number"
                              if name in op.number_inputs else
                              f"`{op.name}({', '.join(op.inputs)}{', ...' if op.args else ''})`"
                              f" takes {'tensors' if len(op.inputs) > 1 else 'a tensor'} first")
        if len(tensors) < op.n_min_inputs and not op.tensor_list_input:
            raise Problem("E0401", f"`{op.name}` needs {op.n_min_inputs} tensor argument"
                          f"{'s' if op.n_min_inputs != 1 else ''}")
        args = bind_args(op, rest, kwargs, arg_locs)
        args.update({name: numbers.get(name) for name in op.number_inputs})
        tensors = [t for t in tensors if isinstance(t, Tensor)]
        return self.apply_op(op, args, tensors, loc, frame)

    def apply_definition(self, defn: ast.Definition, params: dict[str, Any], inputs: list[Any],
                         kw_inputs: dict[str, Any], loc: Loc, caller: Frame, path: str,
                         reuse: bool) -> Any:
        if defn.kind == "gan":
            raise Problem("E0204", f"the gan `{defn.name}` cannot be used as a layer", loc=loc)
        if defn.name in caller.stack:
            cycle = " -> ".join([*caller.stack, defn.name])
            raise Problem("E0607", f"`{defn.name}` uses itself", loc=loc, label=cycle)
        if caller.depth + 1 > self.limits.max_call_depth:
            raise Problem("E0801", "blocks nested too deeply", loc=loc,
                          label=f"more than {self.limits.max_call_depth} levels",
                          hint=raise_hint("max_call_depth"))
        declared = [s.name for s in defn.body if isinstance(s, ast.Input)]
        tensors = self.order_inputs(defn.name, declared, len(declared), inputs, kw_inputs, loc)
        scope = self.scopes[defn.file]
        frame = Frame(scope, defn, caller.builder, path,
                      reuse=reuse or caller.reuse, depth=caller.depth + 1,
                      call_note=Note(message=f"in `{defn.name}` used here", loc=loc),
                      stack=(*caller.stack, defn.name), names=self.names_of(defn))
        frame.env.update(self._own_params(params))
        frame.taken.update(params)
        for name, t in zip(declared, tensors, strict=True):
            frame.env[f" input:{name}"] = t
        g = caller.builder.graph
        scope_entry = Scope.model_construct(path=path, definition=defn.name, args=dict(params),
                                            inputs=[t.node for t in tensors],
                                            input_names=declared, outputs=[], output_names=[],
                                            loc=loc)
        g.scopes.append(scope_entry)
        if self.staging is not None:
            frame.binding = {k: expr_of(v) for k, v in params.items()}
            frame.log = self.staging.begin(InstanceLog(defn, g, path, scope_entry, dict(frame.env)))
        before = len(self.reporter.errors)
        start = len(g.nodes)
        self.run_body(defn.body, frame, top=True)
        scope_entry.span = (start, len(g.nodes))
        for k in [k for k in frame.env if k.startswith(" input:")]:
            del frame.env[k]
        if len(self.reporter.errors) > before:
            raise Skip
        if not frame.outputs:
            raise Problem("E0604", f"`{defn.name}` has no output", loc=defn.name_loc,
                          label="declare one with `output name = ...`")
        outs = [t for _, t, _ in frame.outputs]
        if any(isinstance(t, Poison) for t in outs):
            raise Skip
        self._check_unused_inputs(frame)
        scope_entry.outputs = [t.node for t in outs]  # type: ignore[union-attr]
        scope_entry.output_names = [n for n, _, _ in frame.outputs]
        scope_entry.caller_names = [None] * len(outs)
        for k, t in enumerate(outs):
            caller.block_outputs.setdefault(t.node, (scope_entry, k))  # type: ignore[union-attr]
        if frame.log is not None:  # the caller reads the outputs' sizes in its own names
            frame.log.inputs = list(frame.inputs)
            frame.log.outputs = [(n, t) for n, t, _ in frame.outputs]  # type: ignore[misc]
            outs = [retyped(t, t.type.with_shape(retrace(t.type.shape, frame.binding)))
                    for t in outs]  # type: ignore[union-attr]
            self.record(caller, Record("call", caller.loop, scope=scope_entry,
                                       outputs=tuple(outs)))  # type: ignore[arg-type]
        return outs[0] if len(outs) == 1 else tuple(outs)

    # ---- scalars, optimizers, train sections -----------------------------------------------
    def scalar_function(self, name: str, args: list[Any], kwargs: dict[str, Any],
                        e: ast.Call) -> Any:
        if kwargs or len(args) < 2:
            raise Problem("E0401", f"`{name}` takes two or more numbers", loc=e.loc)
        for a in args:
            if isinstance(a, bool) or not isinstance(a, (int, float, Sym)):
                raise Problem("E0402", f"`{name}` takes numbers, not {a_kind(a)}", loc=e.loc)
        if any(isinstance(a, Sym) for a in args):
            if all(a == args[0] for a in args):
                return args[0]
            raise Problem("E0405", f"`{name}` of symbolic sizes cannot be decided", loc=e.loc)
        return min(args) if name == "min" else max(args)

    def optimizer(self, name: str, args: list[Any], kwargs: dict[str, Any], e: ast.Call
                  ) -> OptimizerValue:
        spec = OPTIMIZERS[name]
        if args:
            if len(args) > 1:
                raise Problem("E0701", f"`{name}` takes its settings by name", loc=e.loc,
                              hint=f"`{name}(lr=1e-3)`")
            kwargs = {"lr": args[0], **kwargs}
        out = dict(spec)
        for k, v in kwargs.items():
            if k not in spec:
                near = suggest(k, spec)
                raise Problem("E0701", f"`{name}` has no setting `{k}`", loc=e.loc,
                              hint=f"did you mean `{near}`?" if near else
                              f"settings: {', '.join(spec)}")
            out[k] = _check_optimizer_value(name, k, v)
        return OptimizerValue(name, out)

    def schedule(self, name: str, args: list[Any], kwargs: dict[str, Any], e: ast.Node
                 ) -> Schedule:
        try:
            return schedules.make(name, args, kwargs)
        except ValueError as exc:
            raise Problem("E0701", str(exc), loc=e.loc) from None

    def train_section(self, stmt: ast.Train, frame: Frame) -> TrainConfig:
        is_gan = frame.definition.kind == "gan"
        allowed = TRAIN_KEYS_GAN if is_gan else TRAIN_KEYS_MODEL
        cfg: dict[str, Any] = {}
        for s in stmt.settings:
            if s.name not in allowed:
                near = suggest(s.name, allowed)
                self.reporter.error("E0701", f"unknown `train` setting `{s.name}`", s.loc,
                                    hint=f"did you mean `{near}`?" if near else
                                    f"settings: {', '.join(allowed)}")
                continue
            if s.name in cfg:
                self.reporter.error("E0701", f"`{s.name}` set twice", s.loc)
                continue
            try:
                cfg[s.name] = self.train_value(s, frame)
            except Problem as p:
                self.reporter.add(p.at(s.loc))
        return TrainConfig(**cfg)

    def train_value(self, s: ast.Setting, frame: Frame) -> Any:
        v = self.ev(s.value, frame)
        if s.name in ("optimizer", "g_optimizer", "d_optimizer"):
            if isinstance(v, OptimizerClass):
                v = self.optimizer(v.name, [], {}, s.value)  # type: ignore[arg-type]
            if not isinstance(v, OptimizerValue):
                raise Problem("E0701", f"`{s.name}` must be SGD(...), Adam(...) or AdamW(...)",
                              loc=s.value.loc, label=f"this is {a_kind(v)}")
            return Optimizer(name=v.name, args=v.args)  # type: ignore[arg-type]
        if s.name == "schedule":
            if isinstance(v, ScheduleClass):
                v = self.schedule(v.name, [], {}, s.value)
            if not isinstance(v, Schedule):
                raise Problem("E0701", "`schedule` must be Cosine(...), Step(...) or "
                              "OneCycle(...)", loc=s.value.loc, label=f"this is {a_kind(v)}")
            return v
        if s.name == "loss":
            choices = GAN_LOSSES if frame.definition.kind == "gan" else TRAIN_LOSSES
            if v not in choices:
                raise Problem("E0701", "unknown loss", loc=s.value.loc,
                              label=f"one of {', '.join(choices)}")
            return v
        if s.name in ("batch", "epochs", "n_critic"):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise Problem("E0701", f"`{s.name}` must be a positive integer", loc=s.value.loc,
                              label=f"got {v!r}")
            return v
        if s.name == "clip":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise Problem("E0701", "`clip` must be a positive number", loc=s.value.loc)
            return float(v)
        if s.name == "data":
            if not isinstance(v, str):
                raise Problem("E0701", "`data` must be a string", loc=s.value.loc)
            return v
        raise AssertionError(s.name)  # pragma: no cover



def _named(v: Any, name: str) -> Any:
    """A size or count as the definition's own `name` (when tracing)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return Traced(int(v), Var(name))
    return v


def _retrace_value(v: Any, names: dict[str, Any]) -> Any:
    """`v` with `names` substituted in its traced sizes; `v` itself when none mentions them
    (an input stays the very tensor the frame declared)."""
    if isinstance(v, Tensor):
        if not any(isinstance(d, Traced) and expr_names(d.expr) & names.keys()
                   for d in v.type.shape):
            return v
        return retyped(v, v.type.with_shape(retrace(v.type.shape, names)))
    if isinstance(v, tuple):
        return tuple(_retrace_value(x, names) for x in v)
    if isinstance(v, Traced):
        return retrace(v, names)
    return v


def _last(bounds: list[int]) -> int:
    """The last value of `range(*bounds)` (not empty), computed from the bounds so a traced
    bound keeps its expression."""
    if len(bounds) == 1:
        return bounds[0] - 1
    start, stop, step = (*bounds, 1)[:3]
    if step == 1:
        return stop - 1
    return start + (stop - start - 1) // step * step if step > 0 else \
        start - (start - stop - 1) // -step * -step


# Operators on tensors -> their ops (archdsl/ops/arith.py).
TENSOR_OPERATORS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "**": "pow",
                    "==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}

TRAIN_KEYS_MODEL = ("loss", "optimizer", "batch", "epochs", "data")
TRAIN_KEYS_MODEL = ("loss", "optimizer", "schedule", "batch", "epochs", "data")
TRAIN_KEYS_GAN = ("optimizer", "g_optimizer", "d_optimizer", "batch", "epochs", "n_critic",
                  "clip", "data")

OPTIMIZERS: dict[str, dict[str, Any]] = {
    "SGD": {"lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0, "dampening": 0.0,
            "nesterov": False},
    "Adam": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0},
    "AdamW": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-2},
}


def _check_optimizer_value(name: str, key: str, v: Any) -> Any:
    if key == "nesterov":
        if not isinstance(v, bool):
            raise Problem("E0701", "`nesterov` must be true or false")
        return v
    if key == "betas":
        if not (isinstance(v, tuple) and len(v) == 2 and all(
                isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                for b in v)):
            raise Problem("E0701", "`betas` must be two numbers in [0, 1)", label=f"got {v!r}")
        return [float(b) for b in v]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Problem("E0701", f"`{key}` of `{name}` must be a number", label=f"got {v!r}")
    v = float(v)
    if key in ("lr", "eps") and v <= 0 or v < 0:
        raise Problem("E0701", f"`{key}` of `{name}` must be "
                      f"{'positive' if key in ('lr', 'eps') else 'non-negative'}",
                      label=f"got {v}")
    return v


def _check_param_dtypes(op: str, types: list[TensorType], params: list[ParamSpec]) -> None:
    """A layer computes in its parameters' dtype: like PyTorch, it takes no other float."""
    stored = {p.dtype for p in params if p.dtype in FLOAT_DTYPES}
    given = {t.dtype for t in types if t.dtype in FLOAT_DTYPES}
    if stored and given - stored:
        raise Problem("E0308", f"`{op}` receives {', '.join(sorted(given))} but its parameters "
                      f"are {', '.join(sorted(stored))}",
                      label=f"got {', '.join(f'{t.dtype}{t}' for t in types)}",
                      hint="layer parameters are f32: declare the input f32")


def check_param_type(defn: ast.Definition, p: ast.Param, v: Any, loc: Loc | None) -> Any:
    want = PARAM_TYPES.get(p.type)
    if want is None:
        raise Problem("E0402", f"unknown parameter type `{p.type}`", loc=p.type_loc,
                      label="one of int, float, bool, str")
    ok = (isinstance(v, bool) if want is bool else
          (isinstance(v, (int, Sym)) and not isinstance(v, bool)) if want is int else
          (isinstance(v, (int, float)) and not isinstance(v, bool)) if want is float else
          isinstance(v, str))
    if not ok:
        raise Problem("E0402", f"parameter `{p.name}` of `{defn.name}` is "
                      f"{with_article(p.type)}", loc=loc, label=f"got {a_kind(v)}")
    if want is float:
        try:
            v = float(v)
        except OverflowError:
            v = math.inf
        if not math.isfinite(v):
            raise Problem("E0403", f"parameter `{p.name}` of `{defn.name}` must be a finite "
                          "number", loc=loc, label=f"got {v}")
    elif want is int:
        v = _bounded(v)
    elif want is str and not _is_unicode(v):
        raise Problem("E0402", f"parameter `{p.name}` of `{defn.name}` is not valid text",
                      loc=loc, label="it holds bytes that are not UTF-8",
                      hint="pass the value as UTF-8 text")
    return v


def _is_unicode(text: str) -> bool:
    """False for the lone surrogates that stand for undecodable bytes (as in `sys.argv`)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _def_signature(defn: ast.Definition) -> str:
    parts = [f"{p.name}: {p.type}" + (" = ..." if p.default is not None else "")
             for p in defn.params]
    return f"`{defn.name}({', '.join(parts)})`"


def scalar_binop(op: str, a: Any, b: Any) -> Any:
    """Arithmetic and comparisons on numbers, strings and symbolic sizes. Results stay within
    64-bit integers and finite floats: what a backend's size or argument can hold."""
    if op in ("==", "!="):
        eq = _equal(a, b)
        return eq if op == "==" else not eq
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, float, Sym)):
            if op == "+" and isinstance(a, str) and isinstance(b, str):
                return a + b
            raise Problem("E0402", f"`{op}` needs numbers, got {a_kind(v)}")
    if isinstance(a, Sym) or isinstance(b, Sym):
        return _symbolic_binop(op, a, b)
    if op in ("<", "<=", ">", ">="):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op in ("/", "//", "%") and b == 0:
        raise Problem("E0406", "division by zero", label=f"{_show(a)} {op} {_show(b)}")
    if op == "**":
        return _power(a, b)
    if op == "@":
        raise Problem("E0402", "`@` needs two tensors")
    try:
        result = _ARITHMETIC[op](a, b)
    except OverflowError:
        result = math.inf
    if isinstance(result, float) and not math.isfinite(result):
        raise Problem("E0406", "a number out of range",
                      label=f"{_show(a)} {op} {_show(b)} does not fit a 64-bit float")
    return _bounded(result)


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "//": lambda a, b: a // b, "%": lambda a, b: a % b,
}


def _symbolic_binop(op: str, a: Any, b: Any) -> Any:
    """Sizes are integers: a symbolic one meets only integers, and only in `+ - * // %` (by a
    number) and in comparisons whose answer does not depend on the symbols."""
    if isinstance(a, float) or isinstance(b, float):
        sym, num = (a, b) if isinstance(a, Sym) else (b, a)
        raise Problem("E0405", f"`{op}` between the symbolic size `{format_dim(sym)}` and "
                      f"the float {num!r}", label="a size is a whole number",
                      hint="use `//` to divide a size, e.g. `T // 2` for half of `T`")
    if op in ("<", "<=", ">", ">="):
        diff = a - b
        if isinstance(diff, Sym):
            raise Problem("E0405", f"cannot decide `{op}` between symbolic sizes",
                          label=f"{_show(a)} {op} {_show(b)}")
        return {"<": diff < 0, "<=": diff <= 0, ">": diff > 0, ">=": diff >= 0}[op]
    if op in ("//", "%"):
        if b == 0:
            raise Problem("E0406", "division by zero", label=f"{_show(a)} {op} 0")
        if isinstance(b, Sym) and op == "%":
            raise Problem("E0405", "modulo a symbolic size cannot be decided")
        return a // b if op == "//" else a % b
    if op == "/":
        raise Problem("E0405", "`/` of symbolic sizes", hint="use `//` for sizes")
    if op == "**":
        raise Problem("E0405", "`**` of symbolic sizes")
    if op == "@":
        raise Problem("E0402", "`@` needs two tensors")
    return _ARITHMETIC[op](a, b)


def _power(a: int | float, b: int | float) -> int | float:
    if isinstance(b, int) and isinstance(a, int):
        if b < 0:
            return float(a) ** b if a != 0 else _raise_zero()
        if a not in (0, 1, -1) and b * math.log2(abs(a)) > 64:
            raise Problem("E0406", "an integer too large", label=f"{a} ** {b}")
        return _bounded(a**b)
    try:
        result = float(a) ** float(b)
    except OverflowError:
        raise Problem("E0406", "a number out of range", label=f"{a} ** {b}") from None
    except ZeroDivisionError:
        raise Problem("E0406", "zero to a negative power", label=f"{a} ** {b}") from None
    if not isinstance(result, float) or not math.isfinite(result):
        raise Problem("E0406", "`**` has no real result", label=f"{a} ** {b}")
    return result


def _raise_zero() -> Any:
    raise Problem("E0406", "division by zero")


def _bounded(v: Any) -> Any:
    if isinstance(v, int) and abs(v) >= MAX_INT:
        raise Problem("E0406", "an integer too large",
                      label=f"{'-' if v < 0 else ''}{abs(v):.3e} is beyond 64-bit integers")
    return v


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, Sym) or isinstance(b, Sym):
        if isinstance(a, (int, Sym)) and isinstance(b, (int, Sym)) and \
                not isinstance(a, bool) and not isinstance(b, bool):
            if a == b:
                return True
            if isinstance(a - b, int):
                return False
            raise Problem("E0405", "cannot decide whether two symbolic sizes are equal",
                          label=f"{_show(a)} vs {_show(b)}")
        return False
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _show(v: Any) -> str:
    return format_dim(v) if isinstance(v, Sym) else repr(v)


def check_gan_pairing(gen: Graph, disc: Graph, gen_loc: Loc, disc_loc: Loc,
                      latent: bool = True) -> list[str]:
    """The generator's output type must be the discriminator's input type, the
    discriminator must give one score per example ([B, 1] or [B]), and both must take the same
    conditions: the generator's inputs after its latent (all of them without one) and the
    discriminator's after its sample, by name and type. Returns the conditions' names."""
    other = [Note(message="the discriminator", loc=disc_loc)]
    if len(gen.outputs) != 1 or not disc.inputs:
        raise Problem("E0603", "a gan needs a generator with one output and a discriminator "
                      "with an input", loc=gen_loc,
                      label=f"generator outputs {len(gen.outputs)}, discriminator inputs "
                            f"{len(disc.inputs)}", notes=other)
    if not gen.inputs:
        raise Problem("E0603", "the generator has no input to generate from", loc=gen_loc,
                      label="it declares no `input`", notes=other,
                      hint="declare its latent first: `input z: [B, nz]`")
    if latent:
        z = gen.nodes[gen.inputs[0]].type
        if z.dtype not in FLOAT_DTYPES:
            raise Problem("E0603", "the generator's first input is its latent, drawn from "
                          "N(0, 1)", loc=gen_loc,
                          label=f"`{gen.input_names[0]}` is {z.dtype}{z}", notes=other,
                          hint="declare the latent first and the condition after it, or say "
                               "`latent = false` in the gan")
    binding: dict[str, Dim] = {}
    out = gen.nodes[gen.outputs[0]].type
    inp = disc.nodes[disc.inputs[0]].type
    if not _fits(inp, out, binding):
        raise Problem("E0603", "the generator's output does not fit the discriminator",
                      loc=gen_loc, label=f"the generator makes {out.dtype}{out}",
                      notes=[Note(message=f"the discriminator takes {inp.dtype}{inp}",
                                  loc=disc_loc)])
    g_conds = _named_types(gen, 1 if latent else 0)
    d_conds = _named_types(disc, 1)
    for name in [*g_conds, *(n for n in d_conds if n not in g_conds)]:
        if name not in d_conds or name not in g_conds:
            side, missing = ("generator", "discriminator") if name in g_conds else \
                ("discriminator", "generator")
            raise Problem("E0603", f"the {side}'s condition `{name}` is not an input of the "
                          f"{missing}", loc=gen_loc,
                          label=f"generator conditions: {_show_inputs(g_conds)}",
                          notes=[Note(message=f"discriminator conditions (after its sample): "
                                              f"{_show_inputs(d_conds)}", loc=disc_loc)],
                          hint="a condition (a label, a source image) goes to both models "
                               "under one name")
        if not _fits(d_conds[name], g_conds[name], binding):
            g, d = g_conds[name], d_conds[name]
            raise Problem("E0603", f"the condition `{name}` has another type in each model",
                          loc=gen_loc, label=f"the generator takes {g.dtype}{g}",
                          notes=[Note(message=f"the discriminator takes {d.dtype}{d}",
                                      loc=disc_loc)])
    score = disc.nodes[disc.outputs[0]].type
    batch = inp.shape[0]
    if not (score.rank in (1, 2) and score.shape[0] == batch and
            (score.rank == 1 or score.shape[1] == 1)):
        raise Problem("E0603", "the discriminator must give one score per example",
                      loc=disc_loc, label=f"it gives {score}, expected [{format_dim(batch)}, 1] "
                      f"or [{format_dim(batch)}]")
    return list(g_conds)


def _fits(want: TensorType, have: TensorType, binding: dict[str, Dim]) -> bool:
    """`have` (a generator's type) is `want` (the discriminator's), the discriminator's
    symbols binding to the generator's dimensions consistently across calls."""
    if want.rank != have.rank or want.dtype != have.dtype:
        return False
    for w, h in zip(want.shape, have.shape, strict=True):
        name = symbol_name(w)
        if name is not None:
            if binding.setdefault(name, h) != h:
                return False
        elif w != h:
            return False
    return True


def _named_types(g: Graph, skip: int) -> dict[str, TensorType]:
    return {n: g.nodes[i].type for n, i in zip(g.input_names[skip:], g.inputs[skip:],
                                                strict=True)}


def _show_inputs(types: dict[str, TensorType]) -> str:
    return ", ".join(f"{n}: {t.dtype}{t}" for n, t in types.items()) or "none"
