"""The fuzzer's specs compiled for NumPy are modules a person would keep: `ruff check` and
`ruff format` find nothing (test_fuzz.py runs them against the reference)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fuzz_specs import specs
from hypothesis import HealthCheck, given, settings

import archdsl

EXAMPLES = 40  # one ruff run per example; the numbers are test_fuzz.py's


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=specs())
def test_fuzzed_numpy_modules_are_clean_python(text: str, ruff) -> None:
    source = archdsl.compile(text, backend="numpy")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.py"
        path.write_text(source, encoding="utf-8")
        for command in ("check", "format"):
            out = ruff(command, [path])
            assert out.returncode == 0, f"{text}\n{source}\n{out.stdout}{out.stderr}"
