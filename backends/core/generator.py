"""The code-generation core: one generator for every target.

`Generator` plans the classes of one output module: one per definition (the emitter writes
each from the elaboration's records), shared by every instance that reads alike, named from
the spec, in dependency order. Refusals from any class are collected and raised once, each
located in the spec (E0901). A target (`Target`) holds only what is framework-specific: its
lowering tables (`CONSTRUCT`, `FORWARD`), how it refers to modules and containers, and how a
class is laid out in a file; sqlglot's dialects are the model.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jinja2

from archdsl import syntax as ast
from archdsl.diagnostics import Diagnostic, Loc, SpecError
from archdsl.graph import GanGraph, Graph
from archdsl.ops import REGISTRY
from archdsl.ops.registry import OpDef, always

from .classes import ClassCode
from .emitter import Emitter
from .lowering import Lowered, OpSite, Refused
from .pycode import Call, Comp, Expr

Rule = Callable[[OpSite], "Expr | Lowered"]


# Ops that are names in a spec's text, never computed: a graph input, a parameter read
# (`e.weight`) or a part of a multi-output value is written as the name that holds it.
NAMES_ONLY = frozenset({"input", "param", "part"})


class Target:
    """A framework: lowering tables and the few conventions the core asks about.

    `CONSTRUCT[op](site)` is the expression that makes a layer's module (ops without an
    entry are computed in `forward` alone); `FORWARD[op](site)` computes one node. An op
    missing from `FORWARD` is refused with its location, never approximated.
    """

    name = ""
    CONSTRUCT: dict[str, Rule] = {}
    FORWARD: dict[str, Rule] = {}
    GLOBALS: frozenset[str] = frozenset()  # names the generated module defines or imports

    @classmethod
    def lowers(cls) -> frozenset[str]:
        """The ops a module for this target computes: its `FORWARD` rules, a learned tensor's
        `CONSTRUCT` rule (`Parameter`: the module is the value), the ops that are only names,
        and those that always return their input (`Identity`)."""
        return frozenset({*cls.FORWARD, *NAMES_ONLY,
                          *(name for name in cls.CONSTRUCT if not REGISTRY[name].inputs),
                          *(name for name, op in REGISTRY.items() if op.alias is always)})

    def has_module(self, op: OpDef) -> bool:
        return op.name in self.CONSTRUCT

    def construct(self, site: OpSite) -> Expr:
        rule = self.CONSTRUCT.get(site.op.name)
        if rule is None:
            raise Refused(f"the {self.name} backend cannot build `{site.op.name}`",
                          site.node.loc)
        out = rule(site)
        assert not isinstance(out, Lowered)
        return out

    def forward(self, site: OpSite) -> Expr | Lowered:
        rule = self.FORWARD.get(site.op.name)
        if rule is None:
            raise Refused(f"the {self.name} backend has no lowering for `{site.op.name}`",
                          site.node.loc)
        return rule(site)

    def module_ref(self, attr: str) -> str:
        return f"self.{attr}"

    def as_module(self, site: OpSite) -> Expr | None:
        """A layer as a module even where `forward` would compute it with a function (a
        stage of a container), or None if the framework has no such module."""
        return self.construct(site) if self.has_module(site.op) else None

    def sequential(self, makes: list[Expr]) -> Expr:
        """A container of the modules `makes`, applied one after the other."""
        raise NotImplementedError

    def repeat(self, first: Expr, rest: Expr | None, count: str, rest_count: str) -> Expr:
        """`L * n`: `count` copies in a container; `rest` when the copies after the first
        are built differently (their input sizes are the first one's output)."""
        raise NotImplementedError

    def container(self, kind: str) -> Expr:
        raise NotImplementedError

    def render(self, gen: Generator, top: GanGraph | Graph) -> str:
        raise NotImplementedError


@dataclass
class Output:
    source: str
    name: str  # the class to instantiate: the model, or the gan's pair
    roots: list[str] = field(default_factory=list)  # the model's class; a gan's two models'


class Generator:
    """Plans and names the classes of one module for `target`, then lets it render them."""

    def __init__(self, target: Target, graph: Graph) -> None:
        if graph.staging is None:
            raise ValueError("this graph was elaborated without code records: get it from "
                             "`archdsl.compile`/`archdsl.build`, or `program.graph(..., "
                             "trace=True)`")
        self.target = target
        self.graph = graph
        self.staging = graph.staging
        self.classes: dict[str, ClassCode] = {}
        self.by_log: dict[int, ClassCode] = {}
        self.errors: list[Diagnostic] = []
        self.reserved = frozenset(target.GLOBALS)

    # -- what names mean in a definition ----------------------------------------------------------
    def lookup(self, defn: ast.Definition, name: str) -> Any:
        """A definition, an op, or a constant's value that `name` means in `defn`'s file."""
        scope = self.staging.scopes.get(defn.file)
        if scope is not None:
            if name in scope.definitions:
                return scope.definitions[name]
            if name in scope.consts:
                owner = scope.const_scopes.get(name, scope)
                if name in owner.const_values:
                    return owner.const_values[name]
        op = REGISTRY.get(name)
        if op is not None and not op.meta.get("internal"):
            return op
        return None

    def is_free(self, defn: ast.Definition, name: str) -> bool:
        """Whether a name in an input's type binds a size (not a constant or a parameter)."""
        return self.lookup(defn, name) is None and name not in {p.name for p in defn.params}

    # -- classes --------------------------------------------------------------------------------
    def model(self, g: Graph) -> ClassCode:
        log = next(log for log in self.staging.instances
                   if log.scope is None and log.definition.name == g.name and not log.shadow)
        return self.class_for(log.definition, log, compiled=g.params)

    def class_for(self, definition: ast.Definition, log: Any,
                  compiled: dict[str, Any] | None = None) -> ClassCode:
        known = self.by_log.get(id(log))
        if known is not None:
            return known
        others = [x for x in self.staging.of(definition) if x is not log]
        try:
            code = Emitter(self, definition, [log, *others], compiled).emit()
        except Refused as r:
            self.refuse(str(r), r.loc or definition.name_loc, r.label)
            code = ClassCode(definition, definition.kind, "", [], [], [], [], [], [], {}, [])
        needs = init_uses(code)
        code.sizes = [s for s in code.sizes if f"s:{s}" in needs]
        if code.kind == "model" and code.sizes:  # a model's input sizes are symbolic
            self.refuse(f"`{definition.name}` builds a layer from the symbolic size "
                        f"`{code.sizes[0]}`", definition.name_loc)
        key = code.key()
        code = self.classes.setdefault(key, code)
        self.by_log[id(log)] = code
        return code

    def refuse(self, message: str, loc: Loc | None, label: str = "") -> None:
        diag = Diagnostic(code="E0901", message=message, loc=loc, label=label)
        if diag not in self.errors:  # a block used many times reports once
            self.errors.append(diag)

    def raise_errors(self) -> None:
        if self.errors:
            raise SpecError(self.errors)

    def assign_names(self, roots: list[ClassCode]) -> list[ClassCode]:
        """Class names from the definitions; a definition that needs two classes (its
        instances cannot share one) numbers the second. Dependencies first."""
        taken = set(self.reserved)
        order: list[ClassCode] = []

        def visit(c: ClassCode) -> None:
            if c in order:
                return
            for u in c.uses:
                visit(u)
            base = identifier(c.definition.name)
            name, k = base, 1
            while name in taken:
                k += 1
                name = f"{base}{k}"
            c.name = name
            taken.add(name)
            order.append(c)

        for root in roots:
            visit(root)
        return order


def identifier(name: str) -> str:
    return f"{name}_" if keyword.iskeyword(name) or keyword.issoftkeyword(name) else name


def init_uses(code: ClassCode) -> set[str]:
    """The tokens a constructor reads: what its modules, and the `if`s, loops and locals
    around them, mention."""
    from .assemble import split
    init, _ = split(code.body)
    return _tokens(init)


def _tokens(stmts: list[Any]) -> set[str]:
    from .assemble import tokens_of
    return tokens_of(stmts)


@cache
def environment(package: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def generate(target: Target, graph: Graph | GanGraph) -> Output:
    graph = graph.traced()
    parts = [graph.generator, graph.discriminator] if isinstance(graph, GanGraph) else [graph]
    gen = Generator(target, parts[0])
    roots = [gen.model(g) for g in parts]
    gen.raise_errors()
    gen.roots = roots  # type: ignore[attr-defined]
    gen.order = gen.assign_names(roots)  # type: ignore[attr-defined]
    source = target.render(gen, graph)
    name = graph.name if isinstance(graph, GanGraph) else roots[0].name
    return Output(source, name, [r.name for r in roots])


class TorchContainers(Target):
    """The containers of `torch.nn`, which the NumPy target's `nn` module mirrors:
    `nn.Sequential` for stages and repeats, `nn.ModuleList`, `nn.ParameterList`."""

    def sequential(self, makes: list[Expr]) -> Expr:
        return Call("nn.Sequential", tuple(makes))

    def repeat(self, first: Expr, rest: Expr | None, count: str, rest_count: str) -> Expr:
        if rest is None:
            return Call("nn.Sequential", (Comp(first, f"for _ in range({count})", "*"),))
        return Call("nn.Sequential", (first, Comp(rest, f"for _ in range({rest_count})", "*")))

    def container(self, kind: str) -> Expr:
        return "nn.ParameterList()" if kind == "params" else "nn.ModuleList()"
