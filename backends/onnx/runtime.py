"""`Model`: an exported graph run by ONNX Runtime, called like the other backends' models.

    model = build(graph)                      # weights drawn as PyTorch's modules draw them
    logits = model(images)                    # NumPy in, NumPy out; evaluation only
    load_state_dict(model, state_dict(torch_model))

The weights live beside the session as a state dict in PyTorch's keys and layouts; loading
new ones re-exports the graph with them, and the next call opens a fresh session.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import onnxruntime as ort
from onnx import ModelProto

from archdsl.graph import GanGraph, Graph
from archdsl.symbolic import evaluate, format_shape

from .builder import NUMPY
from .generator import export, fits, serialized
from .state import checked, initial


class Model:
    """ONNX Runtime on the exported graph: `model(*inputs)` returns one array or a tuple, in
    the declared output order. There is no training mode: ONNX models here are for inference."""

    archdsl_backend = "onnx"
    training = False

    def __init__(self, graph: Graph, weights: Mapping[str, Any] | None = None, seed: int = 0,
                 threads: int | None = None):
        self.graph = graph
        self.state = initial(graph, seed) if weights is None else checked(graph, weights)
        self.threads = threads
        self._session: ort.InferenceSession | None = None
        self._folder: tempfile.TemporaryDirectory | None = None

    def export(self) -> ModelProto:
        return export(self.graph, self.state)

    @property
    def session(self) -> ort.InferenceSession:
        if self._session is None:
            options = ort.SessionOptions()
            options.log_severity_level = 3  # errors only
            if self.threads:
                options.intra_op_num_threads = self.threads
            model = self.export()
            source: bytes | str
            if fits(model):
                source = model.SerializeToString()
            else:  # over 2 GiB: a file, its weights beside it, kept while the model lives
                self._folder = tempfile.TemporaryDirectory(prefix="archdsl-onnx-")
                path = Path(self._folder.name) / "model.onnx"
                path.write_bytes(serialized(model, path)[0])
                source = str(path)
            self._session = ort.InferenceSession(source, options,
                                                 providers=["CPUExecutionProvider"])
        return self._session

    def load(self, state: Mapping[str, Any]) -> None:
        self.state = checked(self.graph, state)
        self._session = None

    def eval(self) -> Model:
        return self

    def train(self, mode: bool = True) -> Model:
        if mode:
            raise ValueError("an ONNX model runs inference only; train the torch, tensorflow "
                             "or numpy build and load its weights")
        return self

    def __call__(self, *inputs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        outs = self.session.run(None, self._feeds(inputs))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _feeds(self, inputs: tuple[Any, ...]) -> dict[str, np.ndarray]:
        """The inputs in their declared dtypes, after checking every shape."""
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise TypeError(f"{g.name} takes {len(g.inputs)} inputs "
                            f"({', '.join(g.input_names)}), got {len(inputs)}")
        types = [g.node(i).type for i in g.inputs]
        xs = [np.asarray(x) for x in inputs]
        for x, t, name in zip(xs, types, g.input_names, strict=True):
            if t.dtype not in NUMPY:
                raise TypeError(f"input `{name}` is {t.dtype}, which NumPy cannot hold")
            if x.ndim != t.rank:
                raise ValueError(f"input `{name}` must have shape {format_shape(t.shape)}, "
                                 f"got {list(x.shape)}")
        sizes = {s: int(xs[src.input].shape[src.axis]) for s, src in g.symbols.items()}
        for x, t, name in zip(xs, types, g.input_names, strict=True):
            if list(x.shape) != [evaluate(d, sizes) for d in t.shape]:
                raise ValueError(f"input `{name}` must have shape {format_shape(t.shape)}, "
                                 f"got {list(x.shape)}")
        return {name: x.astype(NUMPY[t.dtype], copy=False)
                for x, t, name in zip(xs, types, g.input_names, strict=True)}


class Gan(NamedTuple):
    generator: Model
    discriminator: Model


def build(graph: Graph | GanGraph, weights: Mapping[str, Any] | None = None, seed: int = 0,
          threads: int | None = None) -> Model | Gan:
    """A model for a `model` graph; for a `gan`, its generator and discriminator."""
    if isinstance(graph, GanGraph):
        return Gan(Model(graph.generator, seed=seed, threads=threads),
                   Model(graph.discriminator, seed=seed + 1, threads=threads))
    return Model(graph, weights, seed, threads)


def state_dict(model: Model) -> dict[str, np.ndarray]:
    """A copy of every parameter and buffer, keyed, ordered and laid out as PyTorch's."""
    return {k: v.copy() for k, v in model.state.items()}


def load_state_dict(model: Model, state: Mapping[str, Any]) -> None:
    """Replace the weights after checking every key and shape."""
    model.load(state)


__all__ = ["Gan", "Model", "build", "load_state_dict", "state_dict"]
