"""Differential fuzzing: random small specs must parse, check, build in every backend and give
the float64 reference's numbers; the cases it once found are kept in regressions/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fuzz_specs import specs, structured_specs
from hypothesis import HealthCheck, given, settings

import archdsl
from archdsl.api import BACKENDS
from archdsl.verify import run

REGRESSIONS = sorted((Path(__file__).parent / "regressions").glob("*.arch"))
# Under two minutes of CI time; ARCHDSL_FUZZ_EXAMPLES=2000 runs a longer fuzz locally.
EXAMPLES = int(os.environ.get("ARCHDSL_FUZZ_EXAMPLES", "150"))
BIND = {"B": 4}  # BatchNorm over two examples is ill-conditioned (see fuzz_specs)


def assert_backends_agree(source: str | Path) -> None:
    report = run(archdsl.load(source).graph(), list(BACKENDS), bind=BIND)
    assert not report.errors, report.errors
    bad = [r for r in report.rows if not r.ok]
    assert not bad, "\n".join(f"{r.check} {r.backend} {r.name}: {r.max_rel:.2e}" for r in bad)


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=specs())
def test_random_specs_agree_in_every_backend(text):
    assert_backends_agree(text)


@settings(max_examples=max(EXAMPLES // 5, 10), derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=structured_specs())
def test_blocks_repeated_looped_and_shared_across_sizes_agree(text):
    """What caught issue 14's generator bugs: long names in repeats and loops, string
    arguments, and one block applied to two sizes."""
    assert_backends_agree(text)


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_regression(path):
    assert_backends_agree(path)


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_regression_at_another_batch_size(path):
    """A size fixed when the module was built shows only at another batch size."""
    report = run(archdsl.load(path).graph(), list(BACKENDS), bind={"B": 3})
    assert not report.errors, report.errors
    assert all(r.ok for r in report.rows)
