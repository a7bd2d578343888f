"""Block calls elaborated once and stamped out: a spec that applies the same block to the same
shapes thousands of times (a deep stack of identical layers) pays for one elaboration.

A block call's result depends only on the block's definition, its argument values, its
inputs' types (and which inputs are the same tensor), and where the call stands (its caller's
block stack, its depth, whether it re-applies a shared instance). `RecordedCall` keeps what a
first call with a given `call_key` added to the graph, when the call was self-contained: it
reported nothing, its nodes read only each other and the call's inputs, and every layer and
scope it made lives under its own path. A later call with the same key adds the same nodes,
layers and scopes, renumbered after the graph's last node and renamed under its own path, as
running the body again would. Elaboration for code generators (`trace=True`) records how each
size was computed, and never stamps.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from archdsl.diagnostics import Loc
from archdsl.graph import Graph, Layer, Node, ParamSpec, Scope, instance
from archdsl.symbolic import Sym
from archdsl.values import Tensor

# Argument values a key can hold: compared by value and type, so `1`, `1.0` and `true` differ
_PLAIN = (int, float, str, bool, type(None), Sym)


def call_key(defn: Any, params: dict[str, Any], inputs: list[Tensor], depth: int,
             stack: tuple[str, ...]) -> tuple | None:
    """What a call's elaboration depends on; None when an argument is not a plain value."""
    values = []
    for name, v in params.items():
        if not isinstance(v, _PLAIN):
            return None
        values.append((name, type(v), v))
    ids = [t.node for t in inputs]
    aliasing = tuple(ids.index(i) for i in ids)  # which inputs are one tensor
    types = tuple((t.type.dtype, t.type.shape) for t in inputs)
    return id(defn), tuple(values), types, aliasing, depth, stack


# The fields of each record holding a list or dict that a later stage may change in place:
# every copy gets its own
_MUTABLE = {Node: ("args", "parts"), Layer: ("args", "params"), ParamSpec: (),
            Scope: ("args", "input_names", "output_names", "caller_names")}


def _clone(model: BaseModel, **changes: Any) -> Any:
    """A copy of a graph record with `changes`, its fields-set and mutable fields its own."""
    cls = type(model)
    data = model.__dict__.copy()
    for k in _MUTABLE[cls]:
        data[k] = data[k].copy()
    data.update(changes)
    return instance(cls, data, model.__pydantic_fields_set__.copy())


def _under(name: str | None, path: str) -> bool:
    return name is not None and (name == path or name.startswith(path + "."))


class RecordedCall:
    """The nodes, layers and scopes one call added, as they stood when it returned."""

    __slots__ = ("path", "start", "inputs", "outputs", "nodes", "layers", "scopes", "steps")

    def __init__(self, path: str, start: int, inputs: list[int], outputs: list[Tensor],
                 nodes: list[Node], layers: list[Layer], scopes: list[Scope], steps: int):
        self.path, self.start, self.inputs, self.outputs = path, start, inputs, outputs
        self.nodes, self.layers, self.scopes, self.steps = nodes, layers, scopes, steps

    @classmethod
    def of(cls, g: Graph, path: str, inputs: list[int], outputs: list[Tensor], start: int,
           first_scope: int, steps: int) -> RecordedCall | None:
        """The call that made `g.nodes[start:]` and `g.scopes[first_scope:]` from the nodes
        `inputs`; None when it is not self-contained."""
        nodes = g.nodes[start:]
        if any(i < start and i not in inputs for n in nodes for i in n.inputs) or \
                any(o.node < start and o.node not in inputs for o in outputs):
            return None
        if not all(_under(n.scope, path) and (n.layer is None or _under(n.layer, path))
                   for n in nodes):
            return None
        scopes = g.scopes[first_scope:]
        if not all(_under(s.path, path) and all(i >= start or i in inputs
                                                for i in (*s.inputs, *s.outputs))
                   for s in scopes):
            return None
        paths = dict.fromkeys(n.layer for n in nodes if n.layer is not None)
        layers = [g.layers.get(p) for p in paths]
        if any(layer is None for layer in layers):
            return None
        return cls(path, start, list(inputs), list(outputs),
                   [_clone(n) for n in nodes],
                   [_clone(layer, params=[_clone(p) for p in layer.params])
                    for layer in layers if layer is not None],
                   [_clone(s) for s in scopes], steps)

    def stamp(self, g: Graph, path: str, inputs: list[int], loc: Loc, steps: list[int],
              max_nodes: int) -> tuple[Scope, list[Tensor]] | None:
        """Add this call's records to `g` for a call at `path` on the nodes `inputs`; its
        scope and output nodes. None, adding nothing, where running the body could go
        otherwise: a layer of that path exists already, or a limit would be reached."""
        if len(g.nodes) + len(self.nodes) > max_nodes or steps[0] + self.steps > 2 * max_nodes:
            return None
        n = len(self.path)

        def rename(name: str) -> str:
            return path + name[n:]

        layers = [(rename(layer.path), layer) for layer in self.layers]
        if any(p in g.layers for p, _ in layers):
            return None
        steps[0] += self.steps
        shift = len(g.nodes) - self.start
        outer = dict(zip(self.inputs, inputs, strict=True))

        def node_id(i: int) -> int:
            return i + shift if i >= self.start else outer[i]

        for p, layer in layers:
            g.layers[p] = _clone(layer, path=p, params=[_clone(s) for s in layer.params])
        for node in self.nodes:
            g.nodes.append(_clone(node, id=node.id + shift,
                                  inputs=[node_id(i) for i in node.inputs],
                                  layer=None if node.layer is None else rename(node.layer),
                                  scope=rename(node.scope)))
        made = [_clone(s, path=rename(s.path), inputs=[node_id(i) for i in s.inputs],
                       outputs=[node_id(i) for i in s.outputs],
                       span=(s.span[0] + shift, s.span[1] + shift)) for s in self.scopes]
        made[0].__dict__["loc"] = loc  # the call's own site
        g.scopes.extend(made)
        return made[0], [Tensor(node_id(t.node), t.type) for t in self.outputs]
