"""What `archdsl verify` asks of the ONNX build: evaluation outputs only.

ONNX models here are inference graphs, so training-mode outputs, losses, gradients, running
statistics and optimizer steps do not apply; `inference_only` tells `verify`, which reports
them as not applicable to this backend rather than leaving them out silently.
"""

from __future__ import annotations

import numpy as np

from archdsl.graph import Graph

from .runtime import Model, load_state_dict, state_dict


class Harness:
    inference_only = True

    def __init__(self, graph: Graph):
        self.graph = graph
        self.model = Model(graph)

    def load(self, state: dict[str, np.ndarray]) -> None:
        load_state_dict(self.model, state)

    def state(self) -> dict[str, np.ndarray]:
        return state_dict(self.model)

    def forward(self, inputs: list[np.ndarray], train: bool) -> list[np.ndarray]:
        if train:
            raise ValueError("the ONNX build has no training mode")
        out = self.model(*inputs)
        return list(out) if isinstance(out, tuple) else [out]
