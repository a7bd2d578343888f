"""Generated modules import and call only what their backend needs, nothing that could run
spec text: every module generated from the project's specs, the shared examples and the
backends' test specs is walked node by node against an allowlist."""

from __future__ import annotations

import ast
import builtins
from functools import cache
from pathlib import Path

import pytest
from contract import EXAMPLES as CONTRACT_EXAMPLES

import archdsl
from archdsl.api import TRAINABLE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = CONTRACT_EXAMPLES
SPECS = [*sorted((ROOT / "specs").glob("*.arch")), *sorted(EXAMPLES.glob("*.arch")),
         *sorted((ROOT / "tests" / "torch" / "specs").glob("*.arch")),
         *sorted((ROOT / "tests" / "tensorflow" / "specs").glob("*.arch"))]

# (module, name or None for `import module`, alias): every import a backend may write.
IMPORTS = {
    "torch": {("torch", None, None), ("torch", "nn", None), ("torch.nn.functional", None, "F"),
              ("math", None, None)},
    "tensorflow": {("keras", None, None), ("tensorflow", None, "tf"), ("math", None, None)},
    "numpy": {("numpy", None, "np"), ("archdsl.backends.numpy", "nn", None)},
}
# Builtins a generated module may call by name; any other called name is defined in it.
BUILTIN_CALLS = {"ValueError", "any", "bool", "dict", "enumerate", "float", "hasattr",
                 "isinstance", "iter", "len", "list", "max", "min", "next", "range", "reversed",
                 "slice", "super", "tuple", "zip"}
# Dunder attributes a generated module may touch (`super().__init__`, a `__call__` override).
DUNDERS = {"__init__", "__call__"}
NEVER = {"eval", "exec", "compile", "__import__", "open", "getattr", "setattr", "delattr",
         "globals", "locals", "vars", "input", "breakpoint", "exit", "quit", "help"}


@cache
def _program(spec: Path) -> archdsl.Program:
    return archdsl.load(spec)


@cache
def generated(backend: str) -> dict[str, str]:
    """{"spec:model": source} for every target of every spec the backend accepts."""
    out = {}
    for spec in SPECS:
        program = _program(spec)
        for target in program.targets:
            try:
                out[f"{spec.as_posix()}:{target}"] = archdsl.compile(
                    program, backend, target)
            except archdsl.SpecError as err:  # a construct the backend cannot express
                assert set(err.codes) == {"E0901"}, str(err)
    return out


def _imports(tree: ast.Module) -> set[tuple[str, str | None, str | None]]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(a.name, None, a.asname) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module
            found |= {(node.module, a.name, a.asname) for a in node.names}
    return found


def _defined(tree: ast.Module) -> set[str]:
    """Every name the module binds: classes, functions, arguments, assignments, imports."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
    return names


def problems(source: str, backend: str) -> list[str]:
    tree = ast.parse(source)
    out = [f"import {i}" for i in sorted(_imports(tree) - IMPORTS[backend], key=str)]
    defined = _defined(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in NEVER:
            out.append(f"line {node.lineno}: `{node.id}`")
        elif isinstance(node, ast.Name) and node.id.startswith("__"):
            out.append(f"line {node.lineno}: name `{node.id}`")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") \
                and node.attr not in DUNDERS:
            out.append(f"line {node.lineno}: attribute `{node.attr}`")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name in dir(builtins) and name not in defined and name not in BUILTIN_CALLS:
                out.append(f"line {node.lineno}: call of `{name}`")
            elif name not in defined and name not in BUILTIN_CALLS:
                out.append(f"line {node.lineno}: call of undefined `{name}`")
    return out


@pytest.mark.parametrize("backend", TRAINABLE)
def test_generated_modules_use_only_allowed_imports_and_calls(backend: str) -> None:
    modules = generated(backend)
    assert len(modules) >= len(SPECS), "most specs must compile, or this proves little"
    found = {name: p for name, source in modules.items() if (p := problems(source, backend))}
    assert not found, found


@pytest.mark.parametrize("snippet, expected", [
    ("import os\n", "import ('os', None, None)"),
    ("import torch\nx = eval('1')\n", "line 2: `eval`"),
    ("import torch\nx = torch.__class__\n", "line 2: attribute `__class__`"),
    ("import torch\nx = __builtins__\n", "line 2: name `__builtins__`"),
    ("import torch\nprint(1)\n", "line 2: call of `print`"),
    ("import torch\nf(1)\n", "line 2: call of undefined `f`"),
])
def test_the_allowlist_catches(snippet: str, expected: str) -> None:
    """The walker itself: each forbidden construct is reported."""
    assert expected in problems(snippet, "torch")
