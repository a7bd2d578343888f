"""`train --nproc 2 --strategy fsdp`: FSDP2 (`fully_shard` on each block and the root) in two
CPU processes over gloo trains the same weights as one process on the same global batch, and
its checkpoints hold the full state: one written in one process resumes under FSDP, and one
written under FSDP resumes in one process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archdsl import checkpoint

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
        optimizer = Adam(lr=1e-2)
        batch = 16
        epochs = 2
    }
}
"""


@pytest.fixture
def train(tmp_path: Path):
    (tmp_path / "net.arch").write_text(SPEC)
    x = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, target=(x[:, 0] > 0).astype(np.int64))

    def run(out: str, *options: str) -> str:
        done = subprocess.run([sys.executable, "-m", "archdsl.cli", "train",
                               str(tmp_path / "net.arch"), "--data", str(tmp_path / "d.npz"),
                               "--out", str(tmp_path / out), *options],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stderr
    return run


def assert_close(a: Path, b: Path, atol: float = 1e-5) -> None:
    first, _ = checkpoint.load(a / "checkpoint.npz")
    second, meta = checkpoint.load(b / "checkpoint.npz")
    assert first.keys() == second.keys() and meta["epoch"] == 2
    for k in first:
        if not k.startswith("rng/"):  # rank 0's generator: dropout-free here
            np.testing.assert_allclose(first[k], second[k], atol=atol, rtol=0, err_msg=k)


def test_fsdp_in_two_processes_equals_one_process_and_resumes_either_way(train, tmp_path):
    train("one")
    train("into_fsdp", "--epochs", "1")
    # a resumed run keeps its options (--epochs 1) unless given again
    log = train("into_fsdp", "--nproc", "2", "--strategy", "fsdp", "--resume", "--epochs", "2")
    assert "2 processes (fsdp)" in log
    assert_close(tmp_path / "one", tmp_path / "into_fsdp")
    train("out_of_fsdp", "--nproc", "2", "--strategy", "fsdp", "--epochs", "1")
    train("out_of_fsdp", "--resume", "--epochs", "2")
    assert_close(tmp_path / "one", tmp_path / "out_of_fsdp")


def test_fsdp_in_fp16_scales_the_loss_alike_on_every_rank(train, tmp_path):
    """fp16 under FSDP takes ShardedGradScaler, which skips a step on every rank when any
    shard overflowed; the result equals one process's fp16 run to fp16's precision."""
    train("one", "--precision", "fp16")
    train("two", "--precision", "fp16", "--nproc", "2", "--strategy", "fsdp")
    assert_close(tmp_path / "one", tmp_path / "two", atol=1e-3)


GAN = Path(__file__).resolve().parents[1] / "specs" / "digits_gan.arch"


@pytest.mark.parametrize(("spec", "options", "message"), [
    (SPEC, ["--strategy", "fsdp"], "--strategy fsdp shares the model over processes: add "
     "--nproc N"),
    (SPEC, ["--nproc", "2", "--strategy", "zero3"], "train --strategy is ddp or fsdp, not "
     "'zero3'"),
    (GAN.read_text(), ["--nproc", "2"], "`DigitsGAN` is a gan: it trains in one process"),
])
def test_misuse_is_refused_before_any_process_starts(tmp_path, spec, options, message):
    (tmp_path / "net.arch").write_text(spec)
    done = subprocess.run([sys.executable, "-m", "archdsl.cli", "train",
                           str(tmp_path / "net.arch"), "--out", str(tmp_path / "run"),
                           *options], capture_output=True, text=True)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()
