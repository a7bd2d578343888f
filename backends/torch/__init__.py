"""The PyTorch backend: a spec's graph as a readable, standalone nn.Module source file.

    source = generate(graph)              # one module, importing only torch and the stdlib
    model = build(graph)                  # that same source, executed: an nn.Module
    weights = state_dict(model)           # {graph key: numpy array}, PyTorch's layout
    load_state_dict(model, weights)       # checks every name and shape first

torch is imported only when a model is built or its weights are read.
"""

from __future__ import annotations

from .. import Backend, module_roots
from .generator import Torch, generate
from .runtime import build, load_state_dict, state_dict

BACKEND = Backend("torch", __name__, generate, lambda model: "torch" in module_roots(model),
                  Torch.lowers)

__all__ = ["BACKEND", "build", "generate", "load_state_dict", "state_dict"]
