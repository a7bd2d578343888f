"""Fixtures shared by every test folder."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

GENERATED_RULES = "E,F,W,I,B,UP"


@pytest.fixture(scope="session")
def ruff() -> Callable[..., subprocess.CompletedProcess]:
    """Run ruff (a dev dependency: missing, it fails the test) on generated modules:
    `ruff("check", paths)` with the rules generated code must pass, `ruff("format", paths)`
    for a formatting diff."""

    def run(command: str, paths: list[Path], *options: str, select: str = GENERATED_RULES
            ) -> subprocess.CompletedProcess:
        args = ["--select", select] if command == "check" else ["--diff"]
        return subprocess.run([sys.executable, "-m", "ruff", command, "--isolated", *args,
                               *options, *map(str, paths)], capture_output=True, text=True)

    return run
