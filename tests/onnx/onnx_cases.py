"""What the ONNX tests run: every spec of specs/, the contract's examples, the backends' test
specs and every row of the op conformance table, each as one model."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from contract import EXAMPLE_FILES
from test_verify import SMALLER

import archdsl
from archdsl.graph import GanGraph

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = [*sorted((ROOT / "specs").glob("*.arch")), *EXAMPLE_FILES,
              *sorted((ROOT / "tests" / "torch" / "specs").glob("*.arch")),
              *sorted((ROOT / "tests" / "onnx" / "specs").glob("*.arch"))]


def _conformance() -> Any:
    """tests/conformance/test_op_conformance.py, for its TABLE and `spec`."""
    path = ROOT / "tests" / "conformance" / "test_op_conformance.py"
    loader = importlib.util.spec_from_file_location("onnx_conformance_rows", path)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


CONFORMANCE = _conformance()


@dataclass(frozen=True)
class Case:
    """One model: a spec (a path or the text of a conformance row) and which model of it."""

    id: str
    source: Path | str
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def _spec_cases() -> list[Case]:
    out = []
    for path in SPEC_FILES:
        params = SMALLER.get(path.name, {})
        g = archdsl.load(path).graph(params=params or None)
        label = f"{path.parent.name}/{path.stem}"
        if isinstance(g, GanGraph):
            out += [Case(f"{label}:{m.name}", path, m.name, params)
                    for m in (g.generator, g.discriminator)]
        else:
            out.append(Case(label, path, None, params))
    return out


SPEC_CASES = _spec_cases()
ROW_CASES = [Case(name, CONFORMANCE.spec(inputs, body)) for name, inputs, body
             in CONFORMANCE.TABLE]


def params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.id) for c in cases]
