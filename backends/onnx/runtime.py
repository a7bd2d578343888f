"""`Model`: an exported graph run by ONNX Runtime, called like the other backends' models.

    model = build(graph)                      # weights drawn as PyTorch's modules draw them
    logits = model(images)                    # NumPy in, NumPy out; evaluation only
    load_state_dict(model, state_dict(torch_model))

The weights live beside the session as a state dict in PyTorch's keys and layouts; loading
new ones re-exports the graph with them, and the next call opens a fresh session.

`randn_like` draws in the model itself (RandomNormalLike). Under `archdsl.noise(draws)` a
call runs a second export of the graph instead, which takes the draws as inputs (`noise:k`
for the k-th `randn_like` in graph order), and feeds it `draws(k, shape)`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import onnxruntime as ort
from onnx import ModelProto

from archdsl import draws
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
        self._sessions: dict[bool, ort.InferenceSession] = {}  # by `noise_inputs`
        self._folders: list[tempfile.TemporaryDirectory] = []
        self._sampling = [n for n in graph.nodes if n.op == "randn_like"]

    def export(self, noise_inputs: bool = False) -> ModelProto:
        return export(self.graph, self.state, noise_inputs=noise_inputs)

    @property
    def session(self) -> ort.InferenceSession:
        return self._session(noise_inputs=False)

    def _session(self, noise_inputs: bool) -> ort.InferenceSession:
        if noise_inputs not in self._sessions:
            options = ort.SessionOptions()
            options.log_severity_level = 3  # errors only
            if self.threads:
                options.intra_op_num_threads = self.threads
            model = self.export(noise_inputs)
            source: bytes | str
            if fits(model):
                source = model.SerializeToString()
            else:  # over 2 GiB: a file, its weights beside it, kept while the model lives
                folder = tempfile.TemporaryDirectory(prefix="archdsl-onnx-")
                self._folders.append(folder)
                path = Path(folder.name) / "model.onnx"
                path.write_bytes(serialized(model, path)[0])
                source = str(path)
            self._sessions[noise_inputs] = ort.InferenceSession(
                source, options, providers=["CPUExecutionProvider"])
        return self._sessions[noise_inputs]

    def load(self, state: Mapping[str, Any]) -> None:
        self.state = checked(self.graph, state)
        self._sessions = {}

    def eval(self) -> Model:
        return self

    def train(self, mode: bool = True) -> Model:
        if mode:
            raise ValueError("an ONNX model runs inference only; train the torch, tensorflow "
                             "or numpy build and load its weights")
        return self

    def __call__(self, *inputs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        feeds, sizes = self._feeds(inputs)
        drawn = self._draws(sizes)
        if drawn is None:
            outs = self.session.run(None, feeds)
        else:
            session = self._session(noise_inputs=True)
            wanted = {i.name for i in session.get_inputs()}  # dead draws have no input
            outs = session.run(None, {**feeds, **{k: v for k, v in drawn.items()
                                                  if k in wanted}})
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _draws(self, sizes: dict[str, int]) -> dict[str, np.ndarray] | None:
        """`archdsl.noise`'s draws for every `randn_like` of this forward pass, in graph
        order, by input name; None when the model draws its own (no context active)."""
        if not self._sampling:
            return None
        draws.begin()
        out = {}
        for k, node in enumerate(self._sampling):
            value = draws.draw(tuple(evaluate(d, sizes) for d in node.type.shape))
            if value is None:
                return None
            out[f"noise:{k}"] = np.asarray(value).astype(NUMPY[node.type.dtype])
        return out

    def _feeds(self, inputs: tuple[Any, ...]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """The inputs in their declared dtypes, after checking every shape, and the sizes of
        the symbols they bind."""
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
                for x, t, name in zip(xs, types, g.input_names, strict=True)}, sizes


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
