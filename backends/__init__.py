"""The backends: one `Backend` object per framework, registered here once.

    backend = get("torch")
    source = backend.generate(graph)          # never imports the framework
    model = backend.build(graph)              # imports it
    backend.state_dict(model); backend.load_state_dict(model, weights)
    backend.part("training").Trainer(...)     # its trainer, gan trainer or verify harness

Each backend package defines `BACKEND` in its `__init__.py` without importing its framework;
the parts that need the framework (`runtime`, `training`, `gan`, `harness`) are imported when
first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

_PACKAGES = {
    "torch": "archdsl.backends.torch",
    "tensorflow": "archdsl.backends.tensorflow",
    "numpy": "archdsl.backends.numpy",
    "onnx": "archdsl.backends.onnx",
}
NAMES = tuple(_PACKAGES)
# The backends that compile to a Python module and train; onnx writes an inference-only binary.
TRAINABLE = ("torch", "tensorflow", "numpy")
# The rule tables a plugin op may add rows to (`archdsl.ops.plugin.lower(op, backend, ...)`):
# each backend's table module holds them in `PLUGIN_TABLES` and passes them to
# `archdsl.ops.plugin.install` when imported.
PLUGIN_RULES: dict[str, tuple[str, ...]] = {
    "torch": ("construct", "forward", "as_module", "helpers"),
    "tensorflow": ("construct", "forward"),
    "numpy": ("kernel",),
    "onnx": ("lower",),
}


@dataclass(frozen=True)
class Backend:
    """A framework: how to write a module for it, build and run one, and move weights in
    and out in the canonical (PyTorch) layout."""

    name: str
    package: str
    generate: Callable[..., str | bytes]
    owns: Callable[[Any], bool]  # whether a model object was built by this backend
    lowers: Callable[[], Collection[str]]  # the ops it computes (plugin ops included)
    runtime: str = "runtime"  # the part with build, state_dict and load_state_dict
    writes_weights: bool = False  # what generate writes holds the weights (ONNX)

    def part(self, name: str) -> Any:
        """One of the backend's modules (`runtime`, `training`, `gan`, `harness`)."""
        return importlib.import_module(f"{self.package}.{name}" if name else self.package)

    def build(self, graph: Any, **options: Any) -> Any:
        return self.part(self.runtime).build(graph, **options)

    def state_dict(self, model: Any) -> dict[str, Any]:
        return self.part(self.runtime).state_dict(model)

    def load_state_dict(self, model: Any, state: dict[str, Any]) -> None:
        self.part(self.runtime).load_state_dict(model, state)


def get(name: str) -> Backend:
    if name not in _PACKAGES:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(NAMES)}")
    return importlib.import_module(_PACKAGES[name]).BACKEND


def of_model(model: Any) -> Backend:
    """The backend that built `model`."""
    for name in NAMES:
        backend = get(name)
        if backend.owns(model):
            return backend
    raise TypeError(f"not a model built by archdsl: {type(model).__name__} from "
                    f"{type(model).__module__}")


def module_roots(model: Any) -> set[str]:
    """The top-level packages of a model's classes (`torch`, `keras`)."""
    return {k.__module__.split(".")[0] for k in type(model).__mro__}
