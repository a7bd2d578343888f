"""Every op of the registry is covered wherever an op must be: a lowering in every backend,
a row of the conformance table (which runs every backend against the float64 NumPy
reference: forward, gradients, optimizer steps), a NumPy kernel case (its backward against
finite differences and PyTorch), a passing and a failing shape case, and a cost row checked
against an independent count. An op added without one of them fails here, naming what is
missing (CONTRIBUTING.md, "Adding an op")."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import archdsl
from archdsl import backends
from archdsl.ops.registry import REGISTRY

TESTS = Path(__file__).resolve().parent
USER_OPS = {name for name, op in REGISTRY.items() if not op.meta.get("internal")}


def table(path: str) -> ModuleType:
    """A test module of another folder, for its table of cases (run there, read here),
    imported as pytest imports it: its folder first on the path, for its sibling modules."""
    file = TESTS / path
    name = f"coverage_{file.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(file.parent))
    return module


def ops_of(text: str) -> set[str]:
    return {n.op for n in archdsl.load(text).graph().nodes}


def assert_covered(what: str, covered: set[str], wanted: set[str] = USER_OPS) -> None:
    missing = sorted(wanted - covered)
    assert not missing, f"ops without {what}: {', '.join(missing)}"


@pytest.mark.parametrize("backend", backends.NAMES)
def test_every_backend_lowers_every_op(backend: str) -> None:
    lowers = set(backends.get(backend).lowers())
    assert_covered(f"a {backend} lowering", lowers, set(REGISTRY))
    assert sorted(lowers - set(REGISTRY)) == [], "rules for ops the registry does not declare"


def test_every_op_has_a_conformance_row() -> None:
    conformance = table("conformance/test_op_conformance.py")
    used = {n.op for _, inputs, body in conformance.TABLE
            for n in conformance.graph(inputs, body).nodes}
    assert_covered("a conformance row", used, set(REGISTRY))


def test_every_op_has_a_numpy_kernel_case() -> None:
    assert_covered("a NumPy kernel case (forward and backward)",
                   {c.op for c in table("numpy/test_numpy_kernels.py").CASES})


def test_every_op_has_a_passing_and_a_failing_shape_case() -> None:
    shapes = table("frontend/test_frontend_shapes.py")
    assert_covered("a passing shape case", {c.op for c in shapes.PASSING})
    assert_covered("a failing shape case", {c.op for c in shapes.FAILING})
    assert {c.op for c in shapes.PASSING + shapes.FAILING} <= set(REGISTRY)


def test_every_op_with_a_cost_has_a_cost_row() -> None:
    """Ops with parameters or FLOPs: a row of test_analyze.py (counted by hand) or of
    torch/test_op_costs.py (counted by PyTorch and FlopCounterMode)."""
    analyze = table("test_analyze.py")
    costs = table("torch/test_op_costs.py")
    used = {op for _, text, *_ in analyze.RULES for op in ops_of(text)}
    used |= {op for row in costs.ROWS for op in ops_of(costs.spec(row))}
    costly = {name for name in USER_OPS
              if REGISTRY[name].has_params or REGISTRY[name].flops is not None}
    assert_covered("a cost row", used, costly)
