"""Build a Keras model from its generated source, and move its weights in and out in PyTorch's
names and layouts.

`build` executes exactly the text `generate` returns, then gives every parameter and buffer
the initial value PyTorch's module would draw (the recipes the ops declare), so every backend
starts alike. Each weighted layer of a generated model is named by its path in the spec, which
is its state-dict prefix (`basic_block1.0.conv1` holds `basic_block1.0.conv1.weight`); a
recurrent layer stacked in PyTorch is one Keras layer per PyTorch layer, `path.l0`, `path.l1`.
`state_dict` walks the model's layers and converts each one's weights (`CONVERT`): the
conversions only transpose, reorder and split, so they are linear and map gradients too.
keras is imported inside the functions: importing the backend does not import it.
"""

from __future__ import annotations

import linecache
import re
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from archdsl import draws
from archdsl.graph import GanGraph, Graph

from .generator import render

Weights = dict[str, np.ndarray]


def build(graph: Graph | GanGraph) -> Any:
    """The model (a gan's pair: `.generator`, `.discriminator`) with PyTorch's initial
    values, drawn from NumPy's global generator (`keras.utils.set_random_seed` seeds it)."""
    from archdsl.backends.onnx.state import initial

    source, name = render(graph)
    module = types.ModuleType(f"archdsl_generated.{graph.name}")
    filename = f"<archdsl {graph.name} tensorflow>"
    # Tracebacks and debuggers show the generated lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 (our own code)
    model = getattr(module, name)()
    seed = int(np.random.randint(2**31))
    if isinstance(graph, GanGraph):
        state = {f"{part}.{k}": v for part, g in (("generator", graph.generator),
                                                   ("discriminator", graph.discriminator))
                 for k, v in initial(g, seed).items()}
    else:
        state = initial(graph, seed)
    load_state_dict(model, state)
    if "RandnLike(" in source:
        _honour_noise(module, graph, model)
    return model


def _honour_noise(module: types.ModuleType, graph: Graph | GanGraph, model: Any) -> None:
    """`archdsl.noise`: each `RandnLike` asks for the draw of its index in its model's
    graph order. Keras runs a functional model by depth, not in that order; the layers are
    numbered as the code makes them, which is that order (dead ones too, which no model
    holds), one model after the other. A shared block makes one layer for the draws of all
    its calls: such a model refuses `archdsl.noise` rather than repeat a draw."""
    pairs = [(graph.generator, model.generator), (graph.discriminator, model.discriminator)] \
        if isinstance(graph, GanGraph) else [(graph, model)]
    start = 0
    for g, m in pairs:
        for layer in _walk(m):
            if type(layer).__name__ == "RandnLike":
                layer.index -= start
        start += sum(node.op == "randn_like" for node in g.nodes)
    if module.RandnLike.made == start:
        module.RandnLike.draws = lambda k, shape: draws.draw(shape, k)
    else:
        module.RandnLike.draws = _unnumbered


def _unnumbered(k: int, shape: tuple[int, ...]) -> None:
    if draws.active():
        raise ValueError("archdsl.noise cannot number the draws of this Keras model: a shared "
                         "block makes one RandnLike layer for the randn_like of all its calls "
                         "(give each call its own block, or use another backend)")


def _walk(layer: Any) -> Iterator[Any]:
    """Every layer inside `layer` (nested models' too), each once."""
    seen: set[int] = set()
    todo = [layer]
    while todo:
        current = todo.pop()
        if id(current) not in seen:
            seen.add(id(current))
            yield current
            todo.extend(getattr(current, "layers", ()))


def state_dict(model: Any) -> Weights:
    """Every parameter and buffer under its graph key, in PyTorch's layout."""
    return {key: np.array(value) for layer, path in _layers(model)
            for key, value in _export(layer, path).items()}


def load_state_dict(model: Any, state: dict[str, Any]) -> None:
    """Load `{key: array}` after checking that names and shapes match the model exactly."""
    own = [(layer, path, _export(layer, path)) for layer, path in _layers(model)]
    expected = {k: v.shape for _, _, values in own for k, v in values.items()}
    problems = [f"missing key {k!r} {list(shape)}" for k, shape in expected.items()
                if k not in state]
    problems += [f"unexpected key {k!r}" for k in state if k not in expected]
    problems += [f"{k!r} has shape {list(np.shape(v))}, the model needs {list(expected[k])}"
                 for k, v in state.items() if k in expected and np.shape(v) != expected[k]]
    if problems:
        raise ValueError("cannot load the state dict:\n  " + "\n  ".join(problems))
    for layer, path, values in own:
        _import(layer, path, {k: np.asarray(state[k]) for k in values})


# ---- walking a model --------------------------------------------------------------------------
def _layers(model: Any) -> Iterator[tuple[Any, str]]:
    """(layer, state-dict prefix) of each layer with weights, each once."""
    seen: set[int] = set()

    def walk(layer: Any, prefix: str) -> Iterator[tuple[Any, str]]:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        kind = type(layer).__name__
        if kind == "Gan":
            yield from walk(layer.generator, "generator.")
            yield from walk(layer.discriminator, "discriminator.")
        elif kind in CONVERT or kind in RECURRENT:
            yield layer, prefix + layer.name
        elif kind != "Weight":  # a tied read of a layer found elsewhere
            for child in getattr(layer, "layers", ()):
                yield from walk(child, prefix)

    yield from walk(model, "")


def _split(path: str) -> tuple[str, str]:
    """A recurrent layer's path and PyTorch layer suffix: `rnn.l1` -> (`rnn`, `_l1`)."""
    found = re.fullmatch(r"(.*)\.l(\d+)", path)
    return (found.group(1), f"_l{found.group(2)}") if found else (path, "_l0")


def _export(layer: Any, path: str) -> Weights:
    kind = type(layer).__name__
    if kind in RECURRENT:
        base, tag = _split(path)
        return {f"{base}.{k}{tag}{d}": v for d, cell in _directions(layer)
                for k, v in _cell_export(cell).items()}
    return {f"{path}.{k}" if k else path: v for k, v in CONVERT[kind][0](layer).items()}


def _import(layer: Any, path: str, state: Weights) -> None:
    kind = type(layer).__name__
    if kind in RECURRENT:
        base, tag = _split(path)
        for d, cell in _directions(layer):
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            _cell_import(cell, {n: state[f"{base}.{n}{tag}{d}"] for n in names})
        return
    CONVERT[kind][1](layer, {k[len(path) + 1:] if k != path else "": v
                             for k, v in state.items()})


def _directions(layer: Any) -> list[tuple[str, Any]]:
    if type(layer).__name__ == "Bidirectional":
        return [("", layer.forward_layer.cell), ("_reverse", layer.backward_layer.cell)]
    return [("", layer.cell)]


def _np(v: Any) -> np.ndarray:
    return np.asarray(v.numpy() if hasattr(v, "numpy") else v)


def _set(variable: Any, value: Any) -> None:
    variable.assign(np.asarray(value).astype(variable.dtype))


# ---- conversions, one per kind of layer -------------------------------------------------------
def _kernel_bias(perm: Callable[[int], tuple[int, ...]]) -> tuple[Callable, Callable]:
    """Layers with `kernel` and an optional `bias`; `perm(rank)` takes the kernel to
    PyTorch's `weight` (its inverse takes it back)."""
    def export(layer: Any) -> Weights:
        kernel = _np(layer.kernel)
        out = {"weight": kernel.transpose(perm(kernel.ndim))}
        if getattr(layer, "bias", None) is not None:
            out["bias"] = _np(layer.bias)
        return out

    def load(layer: Any, state: Weights) -> None:
        order = perm(state["weight"].ndim)
        _set(layer.kernel, state["weight"].transpose(np.argsort(order)))
        if getattr(layer, "bias", None) is not None:
            _set(layer.bias, state["bias"])

    return export, load


def _conv(rank: int) -> tuple[int, ...]:
    """[*k, in, out] -> [out, in, *k]."""
    return (rank - 1, rank - 2, *range(rank - 2))


def _deconv(rank: int) -> tuple[int, ...]:
    """[*k, out, in] -> [in, out, *k]."""
    return (rank - 1, rank - 2, *range(rank - 2))


def _norm_export(layer: Any) -> Weights:
    out = {}
    if getattr(layer, "scale", False):
        out["weight"] = _np(layer.gamma)
    if getattr(layer, "center", False):
        out["bias"] = _np(layer.beta)
    if hasattr(layer, "moving_mean"):
        out["running_mean"] = _np(layer.moving_mean)
        out["running_var"] = _np(layer.moving_variance)
        out["num_batches_tracked"] = _np(layer.num_batches_tracked)
    return out


def _norm_import(layer: Any, state: Weights) -> None:
    names = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
             "running_var": "moving_variance", "num_batches_tracked": "num_batches_tracked"}
    for k, v in state.items():
        _set(getattr(layer, names[k]), v)


def _attention_export(layer: Any) -> Weights:
    """Keras's per-head projections as PyTorch's: `in_proj_weight` [3E, E] when key and
    value have the query's width, else `q/k/v_proj_weight`; `out_proj`."""
    dense = [layer.query_dense, layer.key_dense, layer.value_dense]
    weights = [_np(d.kernel).reshape(_np(d.kernel).shape[0], -1).T for d in dense]
    packed = all(w.shape == weights[0].shape for w in weights)
    out = {"in_proj_weight": np.concatenate(weights)} if packed else \
        dict(zip(("q_proj_weight", "k_proj_weight", "v_proj_weight"), weights, strict=True))
    if layer.query_dense.bias is not None:
        out["in_proj_bias"] = np.concatenate([_np(d.bias).reshape(-1) for d in dense])
    kernel = _np(layer.output_dense.kernel)
    out["out_proj.weight"] = kernel.reshape(-1, kernel.shape[-1]).T
    if layer.output_dense.bias is not None:
        out["out_proj.bias"] = _np(layer.output_dense.bias)
    return out


def _attention_import(layer: Any, state: Weights) -> None:
    dense = [layer.query_dense, layer.key_dense, layer.value_dense]
    weights = np.split(state["in_proj_weight"], 3) if "in_proj_weight" in state else \
        [state[k] for k in ("q_proj_weight", "k_proj_weight", "v_proj_weight")]
    for d, w in zip(dense, weights, strict=True):
        _set(d.kernel, w.T.reshape(d.kernel.shape))
    if "in_proj_bias" in state:
        for d, b in zip(dense, np.split(state["in_proj_bias"], 3), strict=True):
            _set(d.bias, b.reshape(d.bias.shape))
    out = layer.output_dense
    _set(out.kernel, state["out_proj.weight"].T.reshape(out.kernel.shape))
    if "out_proj.bias" in state:
        _set(out.bias, state["out_proj.bias"])


_ADDITIVE = {"query_proj.weight": ("query_kernel", True), "key_proj.weight": ("key_kernel", True),
             "key_proj.bias": ("key_bias", False), "score.weight": ("score_kernel", True)}


def _additive_export(layer: Any) -> Weights:
    return {k: _np(getattr(layer, name)).T if t else _np(getattr(layer, name))
            for k, (name, t) in _ADDITIVE.items()}


def _additive_import(layer: Any, state: Weights) -> None:
    for k, (name, t) in _ADDITIVE.items():
        _set(getattr(layer, name), state[k].T if t else state[k])


def _one(attribute: str, name: str = "weight") -> tuple[Callable, Callable]:
    return (lambda layer: {name: _np(getattr(layer, attribute))},
            lambda layer, state: _set(getattr(layer, attribute), state[name]))


# Gate blocks: Keras's GRU orders them z, r, h; PyTorch's r, z, n.
_GRU_TO_TORCH = (1, 0, 2)


def _gates(w: np.ndarray, gru: bool) -> np.ndarray:
    """Gate blocks (last axis) from Keras's order to PyTorch's, and back (a swap)."""
    if not gru:
        return w
    blocks = np.split(w, 3, axis=-1)
    return np.concatenate([blocks[i] for i in _GRU_TO_TORCH], axis=-1)


def _cell_export(cell: Any) -> Weights:
    gru = type(cell).__name__ == "GRUCell"
    k, r = _gates(_np(cell.kernel), gru), _np(cell.recurrent_kernel)
    if gru:
        b = _gates(_np(cell.bias), gru)
        bias_ih, bias_hh = b[0], b[1]
        r = _gates(r, gru)
    else:
        bias_ih, bias_hh = _np(cell.bias), _np(cell.recurrent_bias)
    return {"weight_ih": k.T, "weight_hh": r.T, "bias_ih": bias_ih, "bias_hh": bias_hh}


def _cell_import(cell: Any, state: Weights) -> None:
    gru = type(cell).__name__ == "GRUCell"
    _set(cell.kernel, _gates(state["weight_ih"].T, gru))
    _set(cell.recurrent_kernel, _gates(state["weight_hh"].T, gru))
    if gru:
        _set(cell.bias, _gates(np.stack([state["bias_ih"], state["bias_hh"]]), gru))
    else:
        _set(cell.bias, state["bias_ih"])
        _set(cell.recurrent_bias, state["bias_hh"])


CONVERT: dict[str, tuple[Callable[[Any], Weights], Callable[[Any, Weights], None]]] = {
    "Dense": _kernel_bias(lambda rank: (1, 0)),
    "Conv1D": _kernel_bias(_conv),
    "Conv2D": _kernel_bias(_conv),
    "Conv2DTranspose": _kernel_bias(_deconv),
    "GroupedConv2DTranspose": _kernel_bias(_deconv),
    "BatchNorm": (_norm_export, _norm_import),
    "LayerNormalization": (_norm_export, _norm_import),
    "Embedding": _one("embeddings"),
    "MultiHeadAttention": (_attention_export, _attention_import),
    "AdditiveAttention": (_additive_export, _additive_import),
    "PositionalEmbedding": _one("weight"),
    "Parameter": _one("weight", ""),
    "GroupNormalization": (_norm_export, _norm_import),
    "InstanceNorm": (_norm_export, _norm_import),
    "RMSNorm": (_norm_export, _norm_import),
    "PReLU": _one("weight"),
}
# Recurrent layers convert cell by cell (`_cell_export`), one direction after the other.
RECURRENT = ("RNN", "GRU", "Bidirectional")


def _torch_named(layer: Any) -> Weights:
    return {w.name: _np(w) for w in layer.weights}


def _load_torch_named(layer: Any, state: Weights) -> None:
    for w in layer.weights:
        _set(w, state[w.name])


CONVERT.update({  # section 10's layers (layers_spatial.py hold their weights as PyTorch's)
    "PaddedEmbedding": (_torch_named, _load_torch_named),
    "Cell": (_torch_named, _load_torch_named),
    "MultiheadAttention": (_torch_named, _load_torch_named),
    "Attention": (_torch_named, _load_torch_named),
    "Conv3D": _kernel_bias(_conv),
    "Conv1DTranspose": _kernel_bias(_deconv),
    "GroupedConv1DTranspose": _kernel_bias(_deconv),
})
