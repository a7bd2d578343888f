"""What an elaboration records for code generators: which graph nodes each place in the
source made, in every definition instance, including the `if` branches it did not take.

The flat graph says what one model computes. A generated class is written once per
definition for any parameter values, so its generator walks the definition's syntax tree and
asks, at each expression, what was made there (`InstanceLog.at`). An `if` that chose one
branch also elaborates the other one speculatively (`Staging.speculate`); what that makes is
kept apart (`shadow_nodes`, `shadow_layers`, `shadow_scopes`, ids from `SHADOW`), so the
real graph is unchanged. Elaboration records only when it traces (`Elaborator(trace=True)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from archdsl import syntax as ast
from archdsl.graph import Graph, Layer, Node, Scope, TensorType
from archdsl.values import Tensor

SHADOW = 1 << 40  # the first id of a node made while speculating


@dataclass
class Record:
    """One thing an expression (or a `for`) made, in the loop iteration `loop`.

    kind `node`: graph node `node`; `call`: the block instance `scope`, whose outputs the
    caller sees as `outputs`; `if`: `taken` is the branch elaboration chose (True: then), and
    `failed` says the other one has no valid elaboration for these values; `loop`: `count`
    iterations ran (none: the body was elaborated once speculatively)."""

    kind: str
    loop: tuple[int, ...]
    node: int = -1
    scope: Scope | None = None
    outputs: tuple[Tensor, ...] = ()
    taken: bool = True
    failed: bool = False
    count: int = 0
    shadow: bool = False


@dataclass
class InstanceLog:
    """One elaborated instance of a definition: a model, or one call of a block."""

    definition: ast.Definition
    graph: Graph
    path: str
    scope: Scope | None
    params: dict[str, Any]
    inputs: list[tuple[str, Tensor]] = field(default_factory=list)
    outputs: list[tuple[str, Tensor]] = field(default_factory=list)
    sites: dict[int, list[Record]] = field(default_factory=dict)
    shadow: bool = False

    def at(self, site: ast.Node, kind: str, loop: tuple[int, ...] | None = None
           ) -> list[Record]:
        """The records of `kind` made at `site` (in iteration `loop`, if given)."""
        return [r for r in self.sites.get(id(site), ()) if r.kind == kind
                and (loop is None or r.loop == loop)]


@dataclass
class Staging:
    scopes: dict[str, Any] = field(default_factory=dict)  # file -> FileScope: names in files
    instances: list[InstanceLog] = field(default_factory=list)
    shadow_nodes: dict[int, Node] = field(default_factory=dict)
    shadow_layers: dict[str, Layer] = field(default_factory=dict)
    shadow_scopes: list[Scope] = field(default_factory=list)
    _levels: list[list[Any]] = field(default_factory=list)  # what each speculation made

    @property
    def speculating(self) -> bool:
        return bool(self._levels)

    def add(self, log: InstanceLog, site: ast.Node, record: Record) -> None:
        record.shadow = self.speculating
        log.sites.setdefault(id(site), []).append(record)
        if self._levels:
            self._levels[-1].append(record)

    def begin(self, log: InstanceLog) -> InstanceLog:
        log.shadow = self.speculating
        self.instances.append(log)
        if self._levels:
            self._levels[-1].append(log)
        return log

    @contextmanager
    def speculate(self, graph: Graph, restore: Callable[[], None]) -> Iterator[None]:
        """Run the body against `graph`, then move what it made into the shadow tables and
        undo its effects (`restore` puts the caller's own state back)."""
        start, layers, scopes = len(graph.nodes), dict(graph.layers), len(graph.scopes)
        self._levels.append([])
        try:
            yield
        finally:
            made = self._levels.pop()
            ids = {n.id: SHADOW + len(self.shadow_nodes) + k
                   for k, n in enumerate(graph.nodes[start:])}
            for node in graph.nodes[start:]:
                node.id = ids[node.id]
                node.inputs = [ids.get(i, i) for i in node.inputs]
                self.shadow_nodes[node.id] = node
            for scope in graph.scopes[scopes:]:
                _relabel_scope(scope, ids)
                self.shadow_scopes.append(scope)
            self.shadow_layers.update({k: v for k, v in graph.layers.items() if k not in layers})
            for item in made:
                _relabel(item, ids)
            if self._levels:
                self._levels[-1].extend(made)
            del graph.nodes[start:]
            del graph.scopes[scopes:]
            graph.layers = layers
            restore()

    def node(self, graph: Graph, i: int) -> Node:
        return self.shadow_nodes[i] if i >= SHADOW else graph.nodes[i]

    def layer(self, graph: Graph, path: str) -> Layer:
        return graph.layers[path] if path in graph.layers else self.shadow_layers[path]

    def of(self, definition: ast.Definition) -> list[InstanceLog]:
        """Every instance of `definition`, real ones first."""
        found = [log for log in self.instances if log.definition is definition]
        return sorted(found, key=lambda log: log.shadow)

    def log_of(self, scope: Scope) -> InstanceLog:
        for log in self.instances:
            if log.scope is scope:
                return log
        raise KeyError(scope.path)


def _relabel_scope(scope: Scope, ids: dict[int, int]) -> None:
    scope.inputs = [ids.get(i, i) for i in scope.inputs]
    scope.outputs = [ids.get(i, i) for i in scope.outputs]
    scope.span = (0, 0)  # its nodes are in the shadow table, not in the graph's order


def _tensor(t: Tensor, ids: dict[int, int]) -> Tensor:
    return Tensor(ids.get(t.node, t.node), t.type) if t.node in ids else t


def _relabel(item: Any, ids: dict[int, int]) -> None:
    if isinstance(item, Record):
        item.node = ids.get(item.node, item.node)
        item.outputs = tuple(_tensor(t, ids) for t in item.outputs)
    elif isinstance(item, InstanceLog):
        item.inputs = [(n, _tensor(t, ids)) for n, t in item.inputs]
        item.outputs = [(n, _tensor(t, ids)) for n, t in item.outputs]


def retyped(t: Tensor, type_: TensorType) -> Tensor:
    return replace(t, type=type_)
