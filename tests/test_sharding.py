"""`analyze --devices N --strategy S`: one device's training memory under DDP, ZeRO-2,
ZeRO-3 and FSDP2, against figures worked out by hand (docs/analyze.md has the formulas),
through the real CLI, without torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app

runner = CliRunner()

# 543 parameters (2,172 bytes): Linear(6->10) 70 and Linear(10->3) 33 outside blocks (the
# root's 103), two Mlp blocks of 2 x 110 = 220 each. Activations per example: 10 + 2 x 30 + 3
# floats = 73, i.e. 292 bytes.
SPEC = """
block Mlp(d: int) {
    input x: [B, d]
    output y = x |> Linear(d) |> ReLU |> Linear(d)
}
model Net {
    input x: [B, 6]
    h = x |> Linear(10) |> Mlp(10) |> Mlp(10)
    output y: [B, 3] = h |> Linear(3)
    train {
        optimizer = Adam(lr=1e-3)
        batch = 8
    }
}
"""
P = 543 * 4
GATHERED = 2 * (103 + 220) * 4  # the root and the largest block, parameters and gradients
# FSDP2 splits dim 0 of each parameter over 4 devices, padding the last rows: [10, 6] keeps 3
# rows, [10] 3, [10, 10] 3 rows, [3, 10] 1 row, [3] 1
FSDP_SHARD = (3 * 6 + 3 + 4 * (3 * 10 + 3) + 1 * 10 + 1) * 4

# strategy: (weights, gradients, Adam state, gathered), 4 devices, global batch 8
EXPECTED = {
    "ddp": (P, P, 2 * P, 0),
    "zero2": (P, P // 4, 2 * (P // 4), 0),
    "zero3": (P // 4, P // 4, 2 * (P // 4), GATHERED),
    "fsdp": (FSDP_SHARD, FSDP_SHARD, 2 * FSDP_SHARD, GATHERED),
}


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "net.arch"
    path.write_text(SPEC)
    return path


@pytest.mark.parametrize("strategy", sorted(EXPECTED))
def test_one_device_holds_its_share(spec, strategy):
    result = runner.invoke(app, ["analyze", str(spec), "--devices", "4", "--strategy",
                                 strategy, "--format", "json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)["devices"]
    weights, gradients, state, gathered = EXPECTED[strategy]
    assert (plan["weights"], plan["gradients"], plan["optimizer_state"], plan["gathered"]) == \
        (weights, gradients, state, gathered)
    assert (plan["batch"], plan["batch_per_device"], plan["activations"]) == (8, 2, 2 * 292)
    assert plan["total"] == weights + gradients + state + gathered + 2 * 292


@pytest.mark.parametrize("strategy", sorted(EXPECTED))
def test_one_device_is_single_device_training(strategy):
    report = archdsl.analyze(SPEC, devices=1, strategy=strategy)
    assert report.devices.total == report.train.total
    assert report.train.activations == 8 * 292  # at the spec's batch


def test_table_line_and_batch_that_does_not_divide(spec):
    table = runner.invoke(app, ["analyze", str(spec), "--devices", "4", "--strategy", "fsdp"])
    assert table.exit_code == 0, table.output
    assert "per device (fsdp)" in table.output and "4 devices, batch 2 of 8 on each" in \
        table.output
    bad = runner.invoke(app, ["analyze", str(spec), "--devices", "3"])
    assert bad.exit_code == 2
    assert "the global batch B=8 must be a multiple of --devices 3" in bad.output
    unknown = runner.invoke(app, ["analyze", str(spec), "--strategy", "zero1"])
    assert unknown.exit_code == 2 and "--strategy is one of ddp, fsdp, zero2, zero3" in \
        unknown.output


def test_planning_never_imports_a_framework(spec):
    code = ("import sys; import archdsl; archdsl.analyze(sys.argv[1], devices=8, "
            "strategy='fsdp', bind={'B': 64}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow')))")
    done = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"
