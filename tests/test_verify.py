"""Cross-backend equivalence: `archdsl verify` on every spec and every shared example."""

from __future__ import annotations

from pathlib import Path

import pytest
from contract import EXAMPLES as CONTRACT_EXAMPLES
from spec_sizes import small
from typer.testing import CliRunner

import archdsl
from archdsl.api import BACKENDS
from archdsl.cli import app
from archdsl.graph import GanGraph
from archdsl.verify import TOLERANCE, run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = CONTRACT_EXAMPLES
SPECS = sorted((ROOT / "specs").glob("*.arch")) + sorted(EXAMPLES.glob("*.arch"))
# Where float32 itself cannot reach the documented tolerances in train mode: BatchNorm over a
# handful of values per channel (a 64-pixel MobileNet's last stages are 2x2), then ReLU or
# Hardswish. verify raises those comparisons to their measured
# float32 noise. Elsewhere only gradients may be raised (a bias that feeds BatchNorm has a
# true gradient of zero and a float32 one of pure rounding); forward values never are.
NOISY = {"mobilenet_v3_small.arch", "resnet50.arch", "resnet_block.arch"}
FORWARD = {"output", "loss", "running stats"}


def graphs(path: Path):
    g = archdsl.load(path).graph(params=small(path))
    return [g.generator, g.discriminator] if isinstance(g, GanGraph) else [g]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_backend_matches_the_reference(path):
    for g in graphs(path):
        report = run(g, list(BACKENDS))
        assert not report.errors, report.errors
        bad = [r for r in report.rows if not r.ok]
        assert not bad, "\n".join(f"{r.check} {r.backend} {r.name}: {r.max_rel:.2e}"
                                  for r in bad[:10])
        checks = {r.check for r in report.rows}
        assert {"output", "loss", "gradient", "after SGD", "after Adam"} <= checks
        raised = [r for r in report.rows if r.tolerance > TOLERANCE[r.check]
                  and (r.name.endswith("(eval)") or path.name not in NOISY and r.check in FORWARD)]
        assert not raised, [(r.check, r.name, r.tolerance) for r in raised[:5]]


def test_a_wrong_backend_is_caught(monkeypatch):
    """verify must fail when a backend computes something else: perturb one output."""
    from archdsl.backends.torch import harness as torch_harness
    real = torch_harness.Harness.forward

    def skewed(self, inputs, train):
        return [y * 1.001 for y in real(self, inputs, train)]

    monkeypatch.setattr(torch_harness.Harness, "forward", skewed)
    g = archdsl.load(ROOT / "specs" / "cnn_digits.arch").graph()
    report = run(g, ["torch", "numpy"])
    assert not report.ok
    assert {r.backend for r in report.rows if not r.ok} == {"torch"}


def test_a_raised_tolerance_still_catches_a_wrong_gradient(monkeypatch):
    """Where float32 noise raises tolerances (ResNet-20's train-mode gradients, where a ReLU
    input within rounding of zero may flip and move a BatchNorm's gradients by about 0.1%,
    raising its tolerance to about 1%), they stay below the errors of a wrong backward pass:
    every gradient 10% off fails, and gradients without such noise fail at 1% off."""
    from archdsl.backends.torch import harness as torch_harness
    real = torch_harness.Harness.gradients
    skew = {"factor": 1.10}

    def skewed(self, inputs, target, loss):
        value, grads, input_grads = real(self, inputs, target, loss)
        return value, {k: g * skew["factor"] for k, g in grads.items()}, input_grads

    monkeypatch.setattr(torch_harness.Harness, "gradients", skewed)
    graph = archdsl.load(ROOT / "specs" / "resnet_block.arch").graph()
    gradients = [r for r in run(graph, ["torch"]).rows if r.check == "gradient"]
    assert any(r.tolerance > TOLERANCE["gradient"] for r in gradients)
    assert all(not r.ok for r in gradients if r.max_abs > 0)
    skew["factor"] = 1.01
    gradients = [r for r in run(graph, ["torch"]).rows if r.check == "gradient"]
    assert all(not r.ok for r in gradients if r.max_abs > 0 and r.tolerance < 0.005)
    assert sum(not r.ok for r in gradients) > len(gradients) / 2


def test_cli_exit_status_and_json(tmp_path):
    runner = CliRunner()
    spec = ROOT / "specs" / "cnn_digits.arch"
    ok = runner.invoke(app, ["verify", str(spec), "--backends", "torch,numpy", "-f", "json"])
    assert ok.exit_code == 0, ok.output
    assert '"ok": true' in ok.output
    bad = runner.invoke(app, ["verify", str(spec), "--backends", "torch,jax"])
    assert bad.exit_code == 2
