"""archdsl: declarative neural-network architectures, shape-checked, costed and compiled.

    import archdsl
    program = archdsl.load("specs/cnn_digits.arch")     # parse + check, or raise SpecError
    graph = program.graph(params={"classes": 5})        # the typed graph of one model
    report = archdsl.analyze("specs/resnet50.arch")     # parameters, FLOPs, memory
    source = archdsl.compile("specs/cnn_digits.arch", backend="torch")
    model = archdsl.build("specs/cnn_digits.arch", backend="torch")
    archdsl.load_state_dict(model, archdsl.weights.load("runs/cnn_digits/<time>"))  # best
"""

from __future__ import annotations

from archdsl import weights
from archdsl.api import analyze, build, compile, load, load_state_dict, state_dict
from archdsl.diagnostics import Diagnostic, SpecError
from archdsl.graph import GanGraph, Graph
from archdsl.limits import Limits
from archdsl.program import Program

__version__ = "0.1.0"

__all__ = [
    "Diagnostic", "GanGraph", "Graph", "Limits", "Program", "SpecError", "__version__",
    "analyze", "build", "compile", "load", "load_state_dict", "state_dict", "weights",
]
