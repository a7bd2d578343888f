"""`archdsl train`: checkpoints that survive crashes, resume that continues bit-for-bit,
clear stops on a non-finite loss, and clear errors for data that does not fit the spec."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import archdsl
from archdsl import checkpoint
from archdsl import train as train_mod
from archdsl.api import TRAINABLE
from archdsl.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

MLP = """
model Tiny(classes: int = 3) {
    input x: [B, 6]
    output logits: [B, classes] = x |> Linear(16) |> ReLU |> Dropout(0.2) |> Linear(classes)
    train {
        loss = "cross_entropy"
        optimizer = Adam(lr=1e-2)
        batch = 16
        epochs = 3
    }
}
"""


# Every source of randomness in training: dropout after a layer, between stacked LSTM layers
# and on attention weights; a resumed run must continue each stream where it stopped.
SEQ = """
model Tagger(vocab: int = 12) {
    input tokens: i64[B, T]
    h = tokens |> Embedding(vocab, 16) |> LSTM(16, layers=2, dropout=0.3)
    h = h |> MultiHeadAttention(2, dropout=0.3) |> Dropout(0.2)
    output logits: [B, 3] = mean(h, dim=1) |> Linear(3)
    train {
        optimizer = Adam(lr=1e-2)
        batch = 16
        epochs = 3
    }
}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[archdsl.Graph, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)
    data = tmp_path / "tiny.npz"
    np.savez(data, x=x, target=y)
    return archdsl.load(MLP).graph(), data


@pytest.fixture
def tagger(tmp_path: Path) -> tuple[archdsl.Graph, Path]:
    tokens = np.random.default_rng(0).integers(0, 12, size=(200, 8))
    data = tmp_path / "tagger.npz"
    np.savez(data, tokens=tokens, target=tokens[:, 0] % 3)
    return archdsl.load(SEQ).graph(), data


def weights(out: Path) -> dict[str, np.ndarray]:
    state, _ = checkpoint.load(out / "checkpoint.npz")
    return state


def assert_same_state(a: Path, b: Path) -> None:
    """Weights, optimizer state and random generators, bit for bit."""
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for k in first:
        np.testing.assert_array_equal(first[k], second[k], err_msg=k)


def quiet_fit(graph: archdsl.Graph, spec: str, backend: str, out: Path, data: Path,
              **options) -> train_mod.Result:
    return train_mod.fit(graph, spec, backend, out, data=str(data), progress=False,
                         log=lambda m: None, **options)


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("seconds", "examples_per_s")}
            for row in history]


@pytest.mark.parametrize("backend", TRAINABLE)
def test_resume_continues_bit_for_bit(backend, tagger, tmp_path):
    graph, data = tagger
    straight = quiet_fit(graph, SEQ, backend, tmp_path / "a", data)
    quiet_fit(graph, SEQ, backend, tmp_path / "b", data, epochs=1)
    # a resumed run keeps its options (epochs=1) unless given again
    resumed = quiet_fit(graph, SEQ, backend, tmp_path / "b", data, resume=True, epochs=3)
    assert_same_state(tmp_path / "a", tmp_path / "b")
    assert without_timing(resumed.history) == without_timing(straight.history)


@pytest.mark.parametrize("backend", TRAINABLE)
def test_ctrl_c_finishes_the_step_saves_and_resume_matches(backend, tagger, tmp_path,
                                                           monkeypatch):
    graph, data = tagger
    straight = quiet_fit(graph, SEQ, backend, tmp_path / "a", data)
    real = train_mod.make_trainer
    calls = {"n": 0}

    def interrupting(backend, g, settings):
        trainer = real(backend, g, settings)
        step = trainer.step

        def wrapped(batch):
            calls["n"] += 1
            if calls["n"] == 17:  # Ctrl-C as the 7th step of the second epoch starts
                signal.raise_signal(signal.SIGINT)
            return step(batch)
        trainer.step = wrapped
        return trainer

    monkeypatch.setattr(train_mod, "make_trainer", interrupting)
    stopped = quiet_fit(graph, SEQ, backend, tmp_path / "b", data)
    assert stopped.stopped and "interrupted" in stopped.stopped
    meta = checkpoint.load(tmp_path / "b" / "checkpoint.npz")[1]
    assert (meta["epoch"], meta["step"]) == (1, 7)  # that step was finished, not cut short
    monkeypatch.setattr(train_mod, "make_trainer", real)
    resumed = quiet_fit(graph, SEQ, backend, tmp_path / "b", data, resume=True)
    assert_same_state(tmp_path / "a", tmp_path / "b")
    assert without_timing(resumed.history) == without_timing(straight.history)


def test_resume_refuses_a_changed_spec(tiny, tmp_path):
    graph, data = tiny
    train_mod.fit(graph, MLP, "torch", tmp_path / "a", data=str(data), epochs=1,
                  progress=False, log=lambda m: None)
    changed = MLP.replace("Linear(16)", "Linear(17)")
    with pytest.raises(checkpoint.CheckpointError, match="different spec"):
        train_mod.fit(archdsl.load(changed).graph(), changed, "torch", tmp_path / "a",
                      data=str(data), resume=True, progress=False, log=lambda m: None)


def test_resume_refuses_other_set_values(tagger, tmp_path):
    """The same text compiled with another `--set` is another model: its checkpoint is not
    this one's."""
    graph, data = tagger
    quiet_fit(graph, SEQ, "numpy", tmp_path / "a", data, epochs=1, steps=2)
    other = archdsl.load(SEQ).graph(params={"vocab": 13})
    with pytest.raises(checkpoint.CheckpointError, match="--set values"):
        quiet_fit(other, SEQ, "numpy", tmp_path / "a", data, resume=True)


def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    checkpoint.save(path, {"w": np.arange(4.0)}, {"epoch": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError):
        checkpoint.save(path, {"w": np.zeros(4)}, {"epoch": 2})
    state, meta = checkpoint.load(path)
    assert meta["epoch"] == 1
    np.testing.assert_array_equal(state["w"], np.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]  # no temp file left


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on overflowing values
@pytest.mark.parametrize("backend", TRAINABLE)
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(backend, tiny, tmp_path):
    graph, data = tiny
    quiet_fit(graph, MLP, backend, tmp_path / "run", data, epochs=1)
    # a step of Adam moves every weight by about lr: the next logits overflow float32
    result = quiet_fit(graph, MLP, backend, tmp_path / "run", data, resume=True, lr=1e30,
                       epochs=3)
    assert result.stopped and "the loss became" in result.stopped
    assert "at epoch 2, step 2" in result.stopped and "last good checkpoint" in result.stopped
    state, meta = checkpoint.load(tmp_path / "run" / "checkpoint.npz")
    assert meta["epoch"] == 1  # the checkpoint written before the loss went bad
    assert all(np.isfinite(v).all() for v in state.values() if v.dtype.kind == "f")


@pytest.mark.parametrize("arrays,message", [
    ({"inputs": np.zeros((4, 6), np.float32), "target": np.zeros(4, np.int64)},
     "missing array(s) x"),
    ({"x": np.zeros((4, 5), np.float32), "target": np.zeros(4, np.int64)},
     "dimension 1 differs"),
    ({"x": np.zeros((4, 6), np.float32), "target": np.zeros(3, np.int64)},
     "has 4 examples but `target` has 3"),
    ({"x": np.zeros((4, 2, 3), np.float32), "target": np.zeros(4, np.int64)},
     "declares rank 2"),
])
def test_bad_npz_is_a_clear_error(arrays, message, tmp_path):
    data = tmp_path / "bad.npz"
    np.savez(data, **arrays)
    spec = tmp_path / "tiny.arch"
    spec.write_text(MLP)
    result = runner.invoke(app, ["train", str(spec), "--data", str(data), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_metrics_and_plot_are_written(tiny, tmp_path):
    graph, data = tiny
    train_mod.fit(graph, MLP, "torch", tmp_path / "run", data=str(data), epochs=2,
                  progress=False, log=lambda m: None)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"val_accuracy"' in lines[0]
    assert (tmp_path / "run" / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_digits_main_job_reaches_95_percent(tmp_path):
    """The README's main job: the digits classifier on the embedded digits, torch."""
    result = runner.invoke(app, ["train", str(ROOT / "specs" / "cnn_digits.arch"), "--out",
                                 str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    history = [line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    import json
    assert json.loads(history[-1])["val_accuracy"] >= 0.95
    assert "held-out accuracy" in result.output


def test_two_processes_equal_one_process_on_the_same_global_batch(tmp_path):
    """--nproc 2 (torchrun, gloo on the CPU): each rank trains on half of every global batch
    and DDP averages the gradients, so the weights equal single-process training."""
    spec = tmp_path / "ddp.arch"
    spec.write_text(MLP.replace(" |> Dropout(0.2)", ""))  # dropout draws differ per rank
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, target=(x[:, 0] > 0).astype(np.int64))
    import subprocess
    import sys
    common = [sys.executable, "-m", "archdsl.cli", "train", str(spec), "--data",
              str(tmp_path / "d.npz"), "--epochs", "2"]
    subprocess.run([*common, "--out", str(tmp_path / "one")], check=True, capture_output=True)
    done = subprocess.run([*common, "--out", str(tmp_path / "two"), "--nproc", "2"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    for k in a:
        if k.startswith("model/"):
            np.testing.assert_allclose(a[k], b[k], atol=1e-5, rtol=0, err_msg=k)
