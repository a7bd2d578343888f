"""Export a typed graph to an ONNX model, with the `onnx` package alone.

    model = export(graph)                  # an onnx.ModelProto, weights drawn as PyTorch's
    data = generate(graph, weights=state)  # the same, serialized: what `archdsl compile` writes

The walk lowers every node that an output depends on through `lowering.LOWER`, in graph
order, and names what it emits after the spec: a node by its layer path (`layer1.0.conv1`,
with `/MatMul`-style suffixes when one op takes several ONNX nodes), a weight by its
state-dict key, graph inputs and outputs by the spec's names. Symbolic sizes stay symbolic:
inputs and outputs carry `dim_param`s (`B`, `T`, `2*T`), and sizes the nodes need at run time
are read from the inputs' shapes. Every refusal is collected and reported at once (E0901).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf.message import EncodeError
from onnx import ModelProto, helper, numpy_helper
from onnx.external_data_helper import convert_model_to_external_data, write_external_data_tensors

from archdsl import __version__
from archdsl.diagnostics import Diagnostic, SpecError
from archdsl.graph import GanGraph, Graph, Node
from archdsl.weights import WeightsError

from .builder import Builder, tensor_type
from .lowering import LOWER, Refusal, Site
from .state import checked, initial, specs

# Opset 17, the first with LayerNormalization, is the oldest that expresses every op exactly
# (GELU is its erf or tanh formula; attention is its matrix products and softmax), so the
# widest range of runtimes loads the models: any implementing opset 17, ONNX Runtime from
# 1.13 on (the tests run 1.32). IR version 8 is the one that opset came with.
OPSET = 17
IR_VERSION = helper.find_min_ir_version_for([helper.make_opsetid("", OPSET)])
# protobuf serializes no message over 2 GiB: a larger model keeps its weights in a file
# beside it (ONNX's "external data").
MAX_BYTES = 2**31 - 1


class TooLarge(WeightsError):
    """Weights over protobuf's 2 GiB asked for in one stream of bytes with the model."""


def generate(graph: Graph | GanGraph, weights: Mapping[str, Any] | None = None) -> bytes:
    """The serialized model: what `archdsl compile --backend onnx` writes."""
    return serialized(export(graph, weights))[0]


def fits(model: ModelProto) -> bool:
    """Whether the model, weights included, serializes as one protobuf message."""
    return _size(model) <= MAX_BYTES


def _size(model: ModelProto) -> int:
    """The model's serialized size in bytes; past 2 GiB protobuf cannot even measure it, so
    there the weights' bytes stand for it."""
    try:
        return model.ByteSize()
    except EncodeError:
        return sum(len(t.raw_data) for t in model.graph.initializer)


def serialized(model: ModelProto, path: Path | None = None) -> tuple[bytes, Path | None]:
    """The bytes of the model file `path`, and the file of weights beside it when the model
    is over 2 GiB: those are written to `path.data` at once (the model refers to it by that
    name). Without `path`, such a model raises `TooLarge`."""
    if fits(model):
        return model.SerializeToString(), None
    if path is None:
        raise TooLarge(f"{model.graph.name} takes {_size(model) / 2**30:.1f} GiB, more than "
                       "the 2 GiB one ONNX file can hold: write it to a file (archdsl compile "
                       "-o FILE), and its weights go beside it, in FILE.data")
    data = path.with_name(f"{path.name}.data")
    convert_model_to_external_data(model, location=data.name)
    write_external_data_tensors(model, str(path.parent))
    return model.SerializeToString(), data


def export(graph: Graph | GanGraph, weights: Mapping[str, Any] | None = None,
           seed: int = 0, noise_inputs: bool = False) -> ModelProto:
    """The ONNX model of `graph` carrying `weights` (a state dict in PyTorch's keys and
    layouts), or, without them, parameters drawn as PyTorch's modules draw them (`seed`).
    With `noise_inputs`, the k-th `randn_like` of the graph reads its draws from an input
    `noise:k` after the spec's inputs, instead of drawing them (how the runtime honours
    `archdsl.noise`)."""
    if isinstance(graph, GanGraph):
        raise SpecError([Diagnostic(
            code="E0901", message="an ONNX file holds one model, and a gan has two",
            loc=graph.loc, label=f"`{graph.name}` pairs `{graph.generator.name}` and "
                                 f"`{graph.discriminator.name}`",
            hint=f"export one of them: --model {graph.generator.name}")])
    state = initial(graph, seed) if weights is None else checked(graph, weights)
    return _Export(graph, noise_inputs).model(state)


def _live(graph: Graph) -> set[int]:
    """The nodes some output depends on: the others would leave unused weights behind."""
    seen: set[int] = set()
    todo = list(graph.outputs)
    while todo:
        i = todo.pop()
        if i not in seen:
            seen.add(i)
            todo.extend(graph.node(i).inputs)
    return seen


class _Export:
    def __init__(self, graph: Graph, noise_inputs: bool = False):
        self.g = graph
        self.keys = specs(graph)
        symbols = {name: (graph.input_names[src.input], src.axis)
                   for name, src in graph.symbols.items()}
        self.b = Builder(reserved={*graph.input_names, *self.keys},
                         claimable=set(graph.output_names), symbols=symbols)
        self.errors: list[Diagnostic] = []
        self.used: set[str] = set()
        self.cache: dict[Any, Any] = {}
        self.values: dict[int, Any] = dict(zip(graph.inputs, graph.input_names, strict=True))
        self.emitted: dict[int, list[Any]] = {}  # a multi-output node's ONNX nodes
        self.noise = {n.id: k for k, n in enumerate(n for n in graph.nodes
                                                      if n.op == "randn_like")} \
            if noise_inputs else None

    def refuse(self, node: Node, message: str, label: str = "") -> None:
        diag = Diagnostic(code="E0901", message=message, loc=node.loc, label=label)
        if diag not in self.errors:  # a block used many times reports once
            self.errors.append(diag)

    def model(self, state: dict[str, Any]) -> ModelProto:
        g = self.g
        wanted = {}
        for i, name in zip(g.outputs, g.output_names, strict=True):
            wanted.setdefault(i, name)  # a node given as two outputs is named by the first
        live = _live(g)
        for node in g.nodes:
            if node.id in live and node.op != "input":
                self.lower(node, wanted.get(node.id))
        if self.errors:
            raise SpecError(self.errors)
        for i, name in zip(g.outputs, g.output_names, strict=True):
            if self.values[i] != name:  # an input, a weight or an alias given as an output
                self.b.node("Identity", [self.values[i]], name)
                self.b.rename(self.b.nodes[-1].output[0], name)
        inputs = [helper.make_value_info(name, tensor_type(g.node(i).type),
                                         doc_string=f"{g.node(i).type.dtype}{g.node(i).type}")
                  for i, name in zip(g.inputs, g.input_names, strict=True)] + self.b.inputs
        outputs = [helper.make_value_info(name, tensor_type(g.node(i).type))
                   for i, name in zip(g.outputs, g.output_names, strict=True)]
        proto = helper.make_graph(self.b.nodes, g.name, inputs, outputs,
                                  value_info=self.b.value_info)
        model = helper.make_model(proto, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="archdsl", producer_version=__version__,
                                  doc_string=f"{g.name} from {g.file}" if g.file else g.name)
        model.ir_version = IR_VERSION
        # Added last: make_model copies its graph, and the weights are most of the bytes.
        model.graph.initializer.extend([numpy_helper.from_array(value, key)
                                        for key, value in state.items() if key in self.used])
        model.graph.initializer.extend(self.b.constants)
        return model

    def _base(self, node: Node) -> str:
        if node.layer:
            return node.layer
        return f"{node.scope}.{node.op}" if node.scope else node.op

    def lower(self, node: Node, output: str | None) -> None:
        rule = LOWER.get(node.op)
        if rule is None:
            self.refuse(node, f"the ONNX backend has no lowering for `{node.op}`")
            return
        if any(i not in self.values for i in node.inputs):
            return  # an input was refused: that is reported already
        base = self._base(node)
        layer = self.g.layers.get(node.layer) if node.layer else None
        params = {p.name: layer.key(p) for p in layer.params} if layer else {}
        site = Site(node, [self.values[i] for i in node.inputs],
                    [self.g.node(i).type for i in node.inputs], self.b, base, params,
                    self.used, self.cache, self.noise)
        start = len(self.b.nodes)
        try:
            value = rule(site)
        except Refusal as r:
            self.refuse(node, f"the ONNX backend cannot express this `{node.op}` exactly",
                        str(r))
            return
        emitted = self.b.nodes[start:]
        where = str(node.loc) if node.loc else ""
        for n in emitted:
            n.doc_string = where
        if isinstance(value, list):  # a multi-output node: its `part` nodes name its values
            if len(emitted) == 1:
                self.b.rename_node(emitted[0].output[0], base)
            self.values[node.id] = value
            self.emitted[node.id] = emitted
            return
        if node.op == "part":  # named after its node: `lstm:1`, or the output's name
            parent = node.inputs[0]
            base = f"{self._base(self.g.node(parent))}:{node.args['index']}"
            self.values[node.id] = self._named(value, node, base, output,
                                               self.emitted.get(parent, []))
            return
        if len(emitted) == 1 and emitted[0] is self.b.producer(value):
            self.b.rename_node(value, base)
        self.values[node.id] = self._named(value, node, base, output, emitted)

    def _named(self, value: str, node: Node, base: str, output: str | None,
               emitted: list[Any]) -> str:
        """`value` renamed after the node (or the output it is), when one of `emitted` made it
        and none of them reads it; otherwise (an input, a weight, an alias) as it is."""
        if not any(n is self.b.producer(value) for n in emitted) or \
                any(value in n.input for n in emitted):
            return value
        value = self.b.rename(value, output or base)
        if output is None:
            self.b.typed(value, node.type)
        return value
