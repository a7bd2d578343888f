"""The TensorFlow/Keras backend: specs compiled to keras.Model subclasses.

    import archdsl
    from archdsl.backends import tensorflow as backend
    graph = archdsl.load("specs/cnn_digits.arch").graph()
    print(backend.generate(graph))            # the module users read
    model = backend.build(graph)              # that module, executed: a built keras.Model
    state = backend.state_dict(model)         # {"conv2d_0.weight": array, ...}, PyTorch layout
    backend.load_state_dict(model, state)
"""

from __future__ import annotations

import linecache
from typing import Any

import numpy as np

from archdsl.graph import GanGraph, Graph

from .. import Backend, module_roots
from .generator import generate

BACKEND = Backend("tensorflow", __name__, generate,
                  lambda model: bool({"keras", "tensorflow", "tf_keras"} & module_roots(model)),
                  runtime="")

__all__ = ["BACKEND", "build", "generate", "load_state_dict", "state_dict"]

_NUMPY_DTYPES = {"f16": "float16", "bf16": "float32", "f32": "float32", "f64": "float64",
                 "i32": "int32", "i64": "int64", "bool": "bool"}


def build(graph: Graph | GanGraph, batch: int = 2) -> Any:
    """Execute the generated module and return its model, variables created by a call on zeros
    (every symbolic size `batch`). A gan's model holds `generator` and `discriminator`."""
    source = generate(graph)
    filename = f"<archdsl {graph.name} tensorflow>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": f"archdsl_generated.{graph.name}"}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 (our own generated code)
    model = namespace[graph.name]()
    if isinstance(graph, GanGraph):
        model.generator(*dummy_inputs(graph.generator, batch))
        model.discriminator(*dummy_inputs(graph.discriminator, batch))
    else:
        model(*dummy_inputs(graph, batch))
    return model


def dummy_inputs(graph: Graph, size: int = 2) -> list[np.ndarray]:
    """Zeros of each input's shape, every symbolic size set to `size`."""
    out = []
    for i in graph.inputs:
        t = graph.node(i).type
        shape = [d if isinstance(d, int) else size for d in t.shape]
        out.append(np.zeros(shape, dtype=_NUMPY_DTYPES[t.dtype]))
    return out


def _layers(layer: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(state-dict path, layer) of every layer below `layer` that has canonical weights."""
    out = []
    for child in layer._flatten_layers(include_self=False, recursive=False):
        path = f"{prefix}{child.name}"
        if hasattr(child, "canonical"):
            out.append((path, child))
        out.extend(_layers(child, f"{path}."))
    return out


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if name else path


def state_dict(model: Any) -> dict[str, np.ndarray]:
    """Parameters and buffers under the graph's keys, in PyTorch's layouts."""
    return {_key(path, name): np.asarray(value.numpy())
            for path, layer in _layers(model) for name, value in layer.canonical().items()}


def load_state_dict(model: Any, state: dict[str, Any]) -> None:
    """Load canonical weights; every key must be present with its shape, and no others."""
    layers = [(path, layer, layer.canonical()) for path, layer in _layers(model)]
    expected = {_key(path, name): tuple(value.shape)
                for path, _, names in layers for name, value in names.items()}
    problems = [f"missing key {k!r} {list(shape)}" for k, shape in expected.items()
                if k not in state]
    problems += [f"unexpected key {k!r}" for k in state if k not in expected]
    problems += [f"{k!r} has shape {list(np.shape(v))}, the model needs {list(expected[k])}"
                 for k, v in state.items() if k in expected and tuple(np.shape(v)) != expected[k]]
    if problems:
        raise ValueError("cannot load the state dict:\n  " + "\n  ".join(problems))
    for path, layer, names in layers:
        layer.load_canonical({name: np.asarray(state[_key(path, name)]) for name in names})
