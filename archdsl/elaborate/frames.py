"""What elaboration works in: a file's names (`FileScope`), the graph being built
(`GraphBuilder`) and one definition instance being run (`Frame`), with the size limits
they enforce."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archdsl import syntax as ast
from archdsl.diagnostics import Loc, Note, Problem
from archdsl.expr import Traced, Var, retrace
from archdsl.expr import names as expr_names
from archdsl.graph import (
    Graph,
    Node,
    Scope,
    TensorType,
    TrainConfig,
)
from archdsl.limits import Limits, raise_hint
from archdsl.staging import InstanceLog, retyped
from archdsl.symbolic import (
    Dim,
    format_dim,
)
from archdsl.values import (
    Poison,
    Tensor,
)


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


def named(v: Any, name: str) -> Any:
    """A size or count as the definition's own `name` (when tracing)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return Traced(int(v), Var(name))
    return v


def retrace_value(v: Any, names: dict[str, Any]) -> Any:
    """`v` with `names` substituted in its traced sizes; `v` itself when none mentions them
    (an input stays the very tensor the frame declared)."""
    if isinstance(v, Tensor):
        if not any(isinstance(d, Traced) and expr_names(d.expr) & names.keys()
                   for d in v.type.shape):
            return v
        return retyped(v, v.type.with_shape(retrace(v.type.shape, names)))
    if isinstance(v, tuple):
        return tuple(retrace_value(x, names) for x in v)
    if isinstance(v, Traced):
        return retrace(v, names)
    return v


def last_value(bounds: list[int]) -> int:
    """The last value of `range(*bounds)` (not empty), computed from the bounds so a traced
    bound keeps its expression."""
    if len(bounds) == 1:
        return bounds[0] - 1
    start, stop, step = (*bounds, 1)[:3]
    if step == 1:
        return stop - 1
    return start + (stop - start - 1) // step * step if step > 0 else \
        start - (start - stop - 1) // -step * -step

