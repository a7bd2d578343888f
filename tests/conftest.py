"""Fixtures shared by every test folder, and each test process's share of the cores."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

GENERATED_RULES = "E,F,W,I,B,UP"


def _share_the_cores() -> None:
    """Size torch, TensorFlow and BLAS thread pools to this pytest-xdist worker's share of the
    machine, before any of them loads: pools sized for every core, one per worker, mostly wait
    on one another (tenfold slowdowns on 2 cores)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    share = str(max(1, (os.cpu_count() or 1) // workers))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(var, share)


_share_the_cores()


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
