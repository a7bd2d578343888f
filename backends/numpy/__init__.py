"""The NumPy backend: archdsl's reference semantics, trainable with no framework underneath.

    from archdsl.backends import numpy as nb
    model = nb.build(graph)                       # float32; dtype=np.float64 for reference runs
    y = model(x); model.backward(dy)              # grads() keyed like PyTorch's state dict
    nb.load_state_dict(model, torch_model.state_dict())

`generate` writes a module of classes over `nn.py` (layers, functions and the tape that runs
the kernels' backward passes); `build` executes that module. Kernels (one file per op family,
forward beside backward) are in `kernels/`; optimisers and losses in `optim.py`; `training.py`
and `gan.py` are the trainers behind `archdsl train --backend numpy`.
"""

from __future__ import annotations

from .. import Backend
from ..core.generator import NAMES_ONLY
from .generator import generate
from .kernels import KERNELS
from .nn import Module
from .optim import LOSSES, OPTIMIZERS, SGD, Adam, AdamW, make_optimizer
from .runtime import Gan, build, load_state_dict, state_dict

BACKEND = Backend("numpy", __name__, generate,
                  lambda model: getattr(model, "archdsl_backend", None) == "numpy",
                  lambda: {*KERNELS, *NAMES_ONLY}, runtime="")

__all__ = ["BACKEND", "KERNELS", "LOSSES", "OPTIMIZERS", "SGD", "Adam", "AdamW", "Gan",
           "Module", "build", "generate", "load_state_dict", "make_optimizer", "state_dict"]
