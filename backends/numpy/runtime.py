"""`Model`: executes an `archdsl.graph.Graph` node by node with the NumPy kernels.

    model = Model(graph)                 # float32, parameters drawn as PyTorch draws them
    logits = model(images)               # records what backward needs
    model.backward(dlogits)              # accumulates into model.grads(), like .grad
    Adam(model.parameters()).step(model.grads()); model.zero_grad()
"""

from __future__ import annotations

from typing import Any

import numpy as np

from archdsl.graph import FLOAT_DTYPES, Graph
from archdsl.symbolic import Sym, format_dim, resolve_dims

from .init import describe
from .kernels import KERNELS
from .module import Module


def tables(graph: Graph) -> dict[str, Any]:
    """The class attributes of a `Module` for `graph` (see module.py)."""
    for node in graph.nodes:
        if node.op != "input" and node.op not in KERNELS:
            raise NotImplementedError(f"the NumPy backend has no kernel for `{node.op}` "
                                      f"(at {node.loc})")
    return {
        "NAME": graph.name,
        "PARAMETERS": {layer.key(p): (p.shape, p.kind, p.dtype, describe(layer, p))
                       for layer in graph.layers.values() for p in layer.params},
        "LAYERS": {path: [(p.name, layer.key(p)) for p in layer.params]
                   for path, layer in graph.layers.items() if layer.params},
        "INPUTS": [(name, graph.node(i).type.dtype,
                    [d if isinstance(d, int) else format_dim(d) for d in graph.node(i).type.shape])
                   for name, i in zip(graph.input_names, graph.inputs, strict=True)],
        "SYMBOLS": {s: (src.input, src.axis) for s, src in graph.symbols.items()},
        "REACH": reach(graph),
    }


def reach(graph: Graph) -> list[list[str]] | None:
    """With several outputs, the layers with parameters each output depends on: a backward
    pass from some of the outputs gives gradients to their layers only, as PyTorch leaves
    `.grad` None (and its optimizers skip the parameter) elsewhere. None: one output."""
    if len(graph.outputs) < 2:
        return None
    out = []
    for o in graph.outputs:
        seen, todo, layers = set(), [o], set()
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                node = graph.node(i)
                if node.layer and graph.layers[node.layer].params:
                    layers.add(node.layer)
                todo.extend(node.inputs)
        out.append(sorted(layers))
    return out


def has_symbols(v: Any) -> bool:
    if isinstance(v, Sym):
        return True
    if isinstance(v, dict):
        return any(has_symbols(x) for x in v.values())
    return isinstance(v, (list, tuple)) and any(has_symbols(x) for x in v)


class Model(Module):
    """A graph as a callable NumPy model with PyTorch's state-dict keys and layouts."""

    def __init__(self, graph: Graph, dtype: Any = np.float32, seed: int = 0):
        self.graph = graph
        self.__dict__.update(tables(graph))
        super().__init__(dtype, seed)
        self._nodes = [(n, has_symbols(n.args)) for n in graph.nodes if n.op != "input"]
        last = {i: n.id for n, _ in self._nodes for i in n.inputs}  # the last reader of a value
        self._free = {n.id: [i for i in set(n.inputs) if last[i] == n.id
                             and i not in graph.outputs] for n, _ in self._nodes}

    def forward(self, *inputs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        xs, env = self.take_inputs(inputs)
        values = dict(zip(self.graph.inputs, xs, strict=True))
        for node, symbolic in self._nodes:
            args = resolve_dims(node.args, env) if symbolic else node.args
            values[node.id] = self.call(node.id, node.op, node.layer, args,
                                        *(values[i] for i in node.inputs))
            for i in self._free[node.id]:
                del values[i]
        return self.finish(*(values[i] for i in self.graph.outputs))

    def backward(self, *grad_outputs: Any) -> tuple[np.ndarray | None, ...]:
        tape, douts = self.take_tape(grad_outputs)
        grads: dict[int, np.ndarray] = {}
        for i, d in zip(self.graph.outputs, douts, strict=True):
            grads[i] = grads[i] + d if i in grads else d
        for node, _ in reversed(self._nodes):
            dy = grads.pop(node.id, None)
            if dy is None:
                continue
            for i, dx in zip(node.inputs, self.back(tape, node.id, dy), strict=True):
                if dx is not None and self.graph.node(i).type.dtype in FLOAT_DTYPES:
                    grads[i] = grads[i] + dx if i in grads else dx
        return tuple(grads.get(i) for i in self.graph.inputs)
