"""The elaborator: a definition's statements, run in order, with `for` loops unrolled;
the other stages (expressions, layers, declarations) are mixed in from their modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archdsl import syntax as ast
from archdsl.diagnostics import Diagnostic, Loc, Note, Problem, Reporter
from archdsl.elaborate.calls import RecordedCall
from archdsl.elaborate.declarations import Declarations
from archdsl.elaborate.evaluator import Evaluator
from archdsl.elaborate.frames import (
    FileScope,
    Frame,
    GraphBuilder,
    last_value,
    named,
    range_length,
    retrace_value,
)
from archdsl.elaborate.layers import Layers
from archdsl.elaborate.training import train_section
from archdsl.expr import expr_of
from archdsl.graph import (
    Graph,
    Node,
)
from archdsl.limits import Limits, raise_hint
from archdsl.names import check_name
from archdsl.ops import REGISTRY
from archdsl.ops.plugin import PluginError
from archdsl.sites import site_names, snake
from archdsl.staging import InstanceLog, Record, Staging
from archdsl.symbolic import (
    Sym,
    SymbolicError,
    format_dim,
)
from archdsl.values import (
    POISON,
    LayerValue,
    Poison,
    Skip,
    Tensor,
    a_kind,
    kind_of,
)


class Elaborator(Evaluator, Layers, Declarations):
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
        self.calls: dict[tuple, RecordedCall | None] = {}  # block calls to stamp out (calls.py)
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
        return {k: named(v, k) for k, v in params.items()}

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
            except (RecursionError, PluginError):  # a plugin's bug is reported as its own
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
                frame.train = train_section(stmt, frame.definition.kind,
                                            lambda e: self.ev(e, frame), self.reporter)
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
            frame.env = {k: retrace_value(v, {stmt.var: expr_of(last_value(bounds))})
                         for k, v in frame.env.items()}
        if saved is None:
            frame.env.pop(stmt.var, None)
        else:
            frame.env[stmt.var] = saved

    def _iterate(self, stmt: ast.For, frame: Frame, values: Any, count: int) -> None:
        nodes = frame.builder.graph.nodes
        for k, i in enumerate(values):
            before = len(nodes)
            frame.env[stmt.var] = named(i, stmt.var) if frame.log is not None else i
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
