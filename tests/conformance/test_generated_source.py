"""What each Python target writes is a module a person would keep: for every spec in specs/,
every example of the language contract and a sample of the differential fuzzer's specs, the
torch, tensorflow and numpy modules pass `ruff check` (the rules generated code keeps) and
`ruff format --check`, and import. (test_fuzz.py and verify run them against each other.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from contract import EXAMPLE_FILES
from fuzz_specs import specs
from hypothesis import HealthCheck, given, settings

import archdsl

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "specs").glob("*.arch")) + EXAMPLE_FILES
TARGETS = ("torch", "tensorflow", "numpy")


def write(folder: Path, stem: str, spec: str | Path, backend: str) -> Path:
    path = folder / f"{stem}_{backend}.py"
    path.write_text(archdsl.compile(spec, backend=backend), encoding="utf-8")
    return path


def assert_clean(paths: list[Path], ruff) -> None:
    for command in ("check", "format"):
        out = ruff(command, paths)
        assert out.returncode == 0, out.stdout + out.stderr


def assert_imports(path: Path) -> None:
    spec = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]


@pytest.mark.parametrize("backend", TARGETS)
def test_every_spec_and_example_compiles_to_clean_python(backend: str, tmp_path: Path,
                                                          ruff) -> None:
    paths = [write(tmp_path, f.stem, f, backend) for f in FILES]
    assert_clean(paths, ruff)
    for path in paths:
        assert_imports(path)


@pytest.mark.parametrize("backend", TARGETS)
def test_fuzzed_specs_compile_to_clean_python(backend: str, tmp_path_factory, ruff) -> None:
    folder = tmp_path_factory.mktemp(backend)
    paths: list[Path] = []

    @settings(max_examples=25, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(text=specs())
    def collect(text: str) -> None:
        paths.append(write(folder, f"fuzz{len(paths)}", text, backend))

    collect()
    assert_clean(paths, ruff)
    for path in paths:
        assert_imports(path)
