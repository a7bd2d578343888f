"""Specs that are valid however odd they look, from the hostile rounds: each one loads, every
backend generates a module that Python compiles, and every backend builds the model from it.

The checks are on the module's validity and on the model it builds (its weights are the
graph's, by key and shape), never on its text (the generators' output is theirs to shape):
strings that collide under NFKC or case folding, a superscript digit in a string that
a generator may turn into a name, extreme but finite floats, Unicode in strings and comments,
CR line endings, and the cases the checker decides by PyTorch's rules (`dim=[]`, slices past a
concrete end, bool arithmetic).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archdsl
from archdsl.api import BACKENDS, TRAINABLE

CASES = sorted((Path(__file__).parent / "corpus" / "compile").glob("*.arch"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_compiles_and_builds(case: Path, backend: str) -> None:
    program = archdsl.load(case)
    source = archdsl.compile(program, backend=backend)
    if backend in TRAINABLE:  # a Python module: a SyntaxError fails here
        compile(source, f"<{backend} module of {case.name}>", "exec")
    else:  # an ONNX model: the checker's full check
        import onnx
        onnx.checker.check_model(onnx.load_from_string(source), full_check=True)
    model = archdsl.build(program, backend=backend)
    built = {k: list(v.shape) for k, v in archdsl.state_dict(model).items()}
    graph = program.graph()
    wanted = {k: list(p.shape) for kind in ("param", "buffer")
              for k, p in graph.parameters(kind).items()}
    assert built == wanted
