"""The Keras backend (TensorFlow): specs compiled to functions of Keras's functional API.

    source = generate(graph)              # one module importing keras (and tensorflow)
    model = build(graph)                  # that module, executed: a keras.Model
    weights = state_dict(model)           # {graph key: numpy array}, PyTorch's layout
    load_state_dict(model, weights)       # checks every name and shape first

keras and tensorflow are imported only when a model is built or its weights are read.
"""

from __future__ import annotations

from .. import Backend, module_roots
from .generator import Keras, generate
from .runtime import build, load_state_dict, state_dict

BACKEND = Backend("tensorflow", __name__, generate,
                  lambda model: bool({"keras", "tensorflow", "tf_keras"} & module_roots(model)),
                  Keras.lowers)

__all__ = ["BACKEND", "build", "generate", "load_state_dict", "state_dict"]
