"""archdsl: declarative neural-network architectures, shape-checked, costed and compiled.

    import archdsl
    program = archdsl.load("specs/cnn_digits.arch")     # parse + check, or raise SpecError
    graph = program.graph(params={"classes": 5})        # the typed graph of one model
    report = archdsl.analyze("specs/resnet50.arch")     # parameters, FLOPs, memory
    source = archdsl.compile("specs/cnn_digits.arch", backend="torch")
    model = archdsl.build("specs/cnn_digits.arch", backend="torch")
    archdsl.load_state_dict(model, archdsl.weights.load("runs/cnn_digits/<time>"))  # best
    with archdsl.noise(draws): y = model(x)            # randn_like returns draws(k, shape)
"""

from __future__ import annotations

from archdsl.api import analyze, build, compile, load, load_state_dict, state_dict
from archdsl.diagnostics import Diagnostic, SpecError
from archdsl.draws import noise
from archdsl.graph import GanGraph, Graph
from archdsl.limits import Limits
from archdsl.program import Program

__version__ = "0.1.0"


def __getattr__(name: str):
    """`archdsl.weights` is imported on first use: it brings NumPy, which `check` and
    `analyze` do not need."""
    if name == "weights":
        import archdsl.weights

        return archdsl.weights
    raise AttributeError(f"module 'archdsl' has no attribute {name!r}")

__all__ = [
    "Diagnostic", "GanGraph", "Graph", "Limits", "Program", "SpecError", "__version__",
    "analyze", "build", "compile", "load", "load_state_dict", "noise", "state_dict", "weights",
]
