"""The generated source: formatted, lint-clean, standalone, deterministic, and honest about gaps."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch_cases import ROOT, SPECS, spec_graph

import archdsl
from archdsl.backends.torch import generate
from archdsl.backends.torch.target import FORWARD
from archdsl.diagnostics import SpecError
from archdsl.names import MODULE_ATTRIBUTES

SPEC_IDS = [s.stem for s in SPECS]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("generated")
    paths = []
    for spec in SPECS:
        path = folder / f"{spec.stem}.py"
        path.write_text(generate(spec_graph(spec)), encoding="utf-8")
        paths.append(path)
    return paths


def test_generated_file_runs_standalone(written: list[Path]) -> None:
    path = next(p for p in written if p.stem == "cnn_digits")
    spec = importlib.util.spec_from_file_location("cnn_digits_generated", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sum(p.numel() for p in module.DigitsCNN().parameters()) == 93322


_DIGESTS = """
import hashlib, sys
import archdsl
from archdsl.backends.torch import generate
for path in sys.argv[1:]:
    print(hashlib.sha256(generate(archdsl.load(path).graph(trace=True)).encode()).hexdigest())
"""


def test_output_is_byte_identical_across_runs() -> None:
    here = [hashlib.sha256(generate(spec_graph(s)).encode()).hexdigest() for s in SPECS]
    again = [hashlib.sha256(generate(archdsl.load(s).graph(trace=True)).encode()).hexdigest()
             for s in SPECS]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", _DIGESTS, *map(str, SPECS)], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    assert here == again == other


def test_a_graph_without_code_records_is_refused_clearly() -> None:
    """Code is written from the definitions, so a graph read back from JSON cannot be
    compiled; the error says where to get one that can."""
    g = spec_graph(SPECS[0])
    again = type(g).model_validate_json(g.model_dump_json())
    with pytest.raises(ValueError, match="read from JSON"):
        generate(again)


def test_importing_the_backend_does_not_import_torch() -> None:
    code = "import sys, archdsl.backends.torch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_reserved_attribute_names_cover_nn_module() -> None:
    public = {n for n in dir(nn.Module()) if not n.startswith("_")}
    assert public <= MODULE_ATTRIBUTES


REFUSED = [
    ("a layer named like an nn.Module method",
     "model M() {\n    input x: [B, 4]\n    float = Linear(3)\n    output y = x |> float\n}\n",
     "`float` cannot name a submodule", 4),
    ("reflect padding of four dimensions, which F.pad cannot do",
     "model M() {\n    input x: [B, 2, 3, 3, 3, 3]\n"
     "    output y = pad(x, (1, 1, 1, 1, 1, 1, 1, 1), mode=\"reflect\")\n}\n",
     "F.pad pads at most 3 dimensions in mode \"reflect\"", 3),
]


@pytest.mark.parametrize(("what", "text", "message", "line"), REFUSED,
                         ids=[r[0] for r in REFUSED])
def test_refuses_what_pytorch_cannot_express(what: str, text: str, message: str,
                                             line: int) -> None:
    with pytest.raises(SpecError) as err:
        generate(archdsl.load(text).graph(trace=True))
    (diag,) = err.value.diagnostics
    assert diag.code == "E0901" and message in diag.message
    assert diag.loc is not None and diag.loc.line == line


def test_missing_rule_names_the_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(FORWARD, "GELU")
    text = "model M() {\n    input x: [B, 4]\n    output y = x |> GELU\n}\n"
    with pytest.raises(SpecError) as err:
        generate(archdsl.load(text).graph(trace=True))
    (diag,) = err.value.diagnostics
    assert diag.code == "E0901" and "`GELU`" in diag.message and diag.loc.line == 3


def test_a_shared_block_is_one_submodule_for_every_call() -> None:
    text = ("block Squash() {\n    input x: [B, C]\n    output y = x * 2.0 |> Tanh\n}\n"
            "model M() {\n    input a: [B, 4]\n    input b: [B, 6]\n    s = Squash()\n"
            "    output y = concat([s(a), s(b)], dim=1)\n}\n")
    source = generate(archdsl.load(text).graph(trace=True))
    assert source.count("class Squash") == 1
    assert "self.s(a)" in source and "self.s(b)" in source


def _module(spec: str) -> Any:
    source = archdsl.compile(ROOT / "specs" / spec, backend="torch")
    namespace: dict[str, Any] = {}
    exec(compile(source, spec, "exec"), namespace)
    return source, namespace


def test_one_class_per_block_definition() -> None:
    """ResNet-50's sixteen bottlenecks, of four widths and two strides, share one class."""
    source, names = _module("resnet50.arch")
    classes = [line.split("(")[0][6:] for line in source.splitlines()
               if line.startswith("class ")]
    assert classes == ["Bottleneck", "ResNet50"]
    model = names["ResNet50"](classes=10, size=64)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 10)


def test_a_block_class_builds_for_values_the_spec_never_used() -> None:
    """The class is written for any valid values: its constructor takes the block's
    parameters and the input sizes its layers are built from."""
    _, names = _module("resnet_block.arch")
    block = names["BasicBlock"](C=8, channels=24, stride=2)
    assert block(torch.zeros(2, 8, 16, 16)).shape == (2, 24, 8, 8)
    same = names["BasicBlock"](C=24, channels=24)
    assert same.shortcut is None and same(torch.zeros(1, 24, 5, 5)).shape == (1, 24, 5, 5)


def test_the_model_reads_its_parameters() -> None:
    _, names = _module("cnn_digits.arch")
    assert names["DigitsCNN"](classes=5)(torch.zeros(2, 1, 28, 28)).shape == (2, 5)
