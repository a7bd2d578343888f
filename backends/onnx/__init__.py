"""The ONNX backend: a deployable model straight from the typed graph, with no framework.

    from archdsl.backends import onnx as ob
    data = ob.generate(graph, weights=state)   # bytes of an ONNX model (opset 17)
    model = ob.build(graph)                    # ONNX Runtime behind a callable, eval only
    ob.load_state_dict(model, torch_state)     # PyTorch's keys and layouts

`lowering.py` holds one rule per op (node -> ONNX nodes); `builder.py` the graph under
construction (names, constants, run-time sizes); `generator.py` walks the graph and names
everything after the spec; `state.py` draws or checks the weights; `runtime.py` runs the
model; `harness.py` is what `archdsl verify` calls. Nothing here imports torch or TensorFlow.
"""

from __future__ import annotations

from .. import Backend
from .generator import OPSET, TooLarge, export, generate, serialized
from .lowering import LOWER
from .runtime import Gan, Model, build, load_state_dict, state_dict

# The generator reads graph inputs itself; every other op goes through LOWER.
BACKEND = Backend("onnx", __name__, generate, lambda model: isinstance(model, (Model, Gan)),
                  lambda: {*LOWER, "input"}, writes_weights=True)

__all__ = ["BACKEND", "LOWER", "OPSET", "Gan", "Model", "TooLarge", "build", "export", "generate",
           "load_state_dict", "serialized", "state_dict"]
