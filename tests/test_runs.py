"""Runs that are never lost, best and last, early stopping, the logs of a run, and a terminal
free of framework noise: `archdsl train` as Keras and Lightning users expect it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

from archdsl import checkpoint, weights
from archdsl.cli import app

runner = CliRunner()

SPEC = """
model Tiny(classes: int = 2) {
    input x: [B, 6]
    output logits: [B, classes] = x |> Linear(16) |> BatchNorm1d |> ReLU |> Dropout(0.1)
        |> Linear(classes)
    train {
        optimizer = Adam(lr=1e-2)
        batch = 16
        epochs = 3
    }
}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    """The spec and its data: 160 training examples; a fixed held-out split."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    np.savez(tmp_path / "tiny.npz", x=x[:160], target=y[:160], test_x=x[160:],
             test_target=y[160:])
    (tmp_path / "tiny.arch").write_text(SPEC)
    return tmp_path / "tiny.arch", tmp_path / "tiny.npz"


def train(spec: Path, data: Path, *options: str) -> object:
    result = runner.invoke(app, ["train", str(spec), "--data", str(data), *options])
    return result


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("seconds", "examples_per_s")}
            for row in rows]


def metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def logged(folder: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_a_second_run_into_a_run_folder_refuses_and_keeps_it_byte_for_byte(tiny, tmp_path):
    spec, data = tiny
    out = tmp_path / "run"
    assert train(spec, data, "--out", str(out)).exit_code == 0
    before = files(out)
    assert {"checkpoint.npz", "model.safetensors", "best/model.safetensors",
            "best/checkpoint.npz", "metrics.jsonl", "metrics.csv", "curves.png"} <= set(before)
    again = train(spec, data, "--out", str(out), "--epochs", "1")
    assert again.exit_code == 2
    assert f"{out} already holds a run (Tiny after epoch 3, best held-out accuracy" in \
        again.output
    assert "--resume" in again.output and "--overwrite" in again.output
    assert files(out) == before
    both = train(spec, data, "--out", str(out), "--resume", "--overwrite")
    assert both.exit_code == 2 and "choose one" in both.output
    assert files(out) == before


def test_overwrite_replaces_the_run_and_nothing_else(tiny, tmp_path):
    spec, data = tiny
    out = tmp_path / "run"
    assert train(spec, data, "--out", str(out)).exit_code == 0
    (out / "notes.txt").write_text("mine")
    replaced = train(spec, data, "--out", str(out), "--overwrite", "--epochs", "1")
    assert replaced.exit_code == 0, replaced.output
    assert [row["epoch"] for row in metrics(out)] == [1]
    assert checkpoint.meta(out / "checkpoint.npz")["epoch"] == 1
    assert len(list(out.glob("events.out.tfevents.*"))) == 1
    assert (out / "notes.txt").read_text() == "mine"


def test_each_run_gets_a_folder_of_its_own_and_resume_finds_the_latest(tiny, tmp_path,
                                                                         monkeypatch):
    spec, data = tiny
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert train(spec, data, "--epochs", "1", "--steps", "2").exit_code == 0
    first, second = sorted((tmp_path / "runs" / "tiny").iterdir(),
                           key=lambda p: (p / "checkpoint.npz").stat().st_mtime)
    for run in (first, second):  # runs/<spec>/<YYYY-MM-DD_HH-MM-SS>, -2 within a second
        assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-2)?", run.name), run.name
    resumed = train(spec, data, "--resume", "--epochs", "2")
    assert resumed.exit_code == 0, resumed.output
    assert [row["epoch"] for row in metrics(second)] == [1, 2]
    assert [row["epoch"] for row in metrics(first)] == [1]
    assert str(Path("runs") / "tiny" / second.name) in resumed.output
    other = spec.with_name("other.arch")
    other.write_text(SPEC)
    bad = train(other, data, "--resume")
    assert bad.exit_code == 2 and "no run of other.arch in runs/other" in bad.output


def test_a_resumed_run_logs_each_epoch_and_step_once(tiny, tmp_path):
    """Metrics and TensorBoard events after a resume equal an uninterrupted run's, even when
    the interrupted run had logged past its last checkpoint (killed before saving it)."""
    spec, data = tiny
    straight = tmp_path / "straight"
    assert train(spec, data, "--out", str(straight)).exit_code == 0
    out = tmp_path / "resumed"
    assert train(spec, data, "--out", str(out), "--epochs", "1").exit_code == 0
    after_one = (out / "checkpoint.npz").read_bytes()
    assert train(spec, data, "--out", str(out), "--resume", "--epochs", "2").exit_code == 0
    # as if killed after logging epoch 2 and before its checkpoint replaced epoch 1's
    (out / "checkpoint.npz").write_bytes(after_one)
    resumed = train(spec, data, "--out", str(out), "--resume", "--epochs", "3")
    assert resumed.exit_code == 0, resumed.output
    assert without_timing(metrics(out)) == without_timing(metrics(straight))
    csv = (out / "metrics.csv").read_text().splitlines()
    assert csv[0].startswith("epoch,train_loss,val_loss,val_accuracy,lr")
    assert [line.split(",")[0] for line in csv[1:]] == ["1", "2", "3"]
    ours, theirs = logged(out), logged(straight)
    assert ours.keys() == theirs.keys() >= {"train/loss", "train/lr", "val/loss",
                                             "val/accuracy", "epoch/train_loss"}
    for tag in ours:
        assert [s for s, _ in ours[tag]] == [s for s, _ in theirs[tag]], tag
        np.testing.assert_allclose([v for _, v in ours[tag]], [v for _, v in theirs[tag]],
                                   rtol=1e-6, err_msg=tag)
    assert [s for s, _ in ours["val/accuracy"]] == [10, 20, 30]  # 160 / 16 steps an epoch


@pytest.fixture
def overfitting(tmp_path: Path) -> tuple[Path, Path]:
    """Held-out labels that contradict the training labels: the more the model learns, the
    worse it does on them, so the first epoch is the best."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "flipped.npz", x=x[:160], target=y[:160], test_x=x[160:],
             test_target=1 - y[160:])
    (tmp_path / "tiny.arch").write_text(SPEC.replace("epochs = 3", "epochs = 8"))
    return tmp_path / "tiny.arch", tmp_path / "flipped.npz"


def test_best_and_last_with_early_stopping(overfitting, tmp_path):
    spec, data = overfitting
    out = tmp_path / "run"
    result = train(spec, data, "--out", str(out), "--early-stop", "2")
    assert result.exit_code == 0, result.output
    rows = metrics(out)
    best = max(rows, key=lambda r: r["val_accuracy"])  # the first of equals
    assert best["epoch"] == 1 and len(rows) == 3  # two epochs without a better one
    last = rows[-1]
    assert last["val_accuracy"] < best["val_accuracy"]
    summary = [line for line in result.stdout.splitlines() if line.startswith("Tiny:")]
    assert summary == [f"Tiny: best held-out accuracy {best['val_accuracy']:.2%} (loss "
                       f"{best['val_loss']:.4f}) at epoch 1, last {last['val_accuracy']:.2%} "
                       f"(loss {last['val_loss']:.4f}) at epoch 3 (torch)"]
    assert "early stop: no better held-out accuracy for 2 epochs after epoch 1" in \
        result.stdout
    assert weights.metadata(out / "best" / "model.safetensors")["epoch"] == "1"
    assert weights.metadata(out / "model.safetensors")["epoch"] == "3"
    assert checkpoint.meta(out / "best" / "checkpoint.npz")["epoch"] == 1
    assert checkpoint.meta(out / "checkpoint.npz")["best"]["epoch"] == 1
    best_w = weights.load(out / "best" / "model.safetensors")
    last_w = weights.load(out / "model.safetensors")
    assert best_w.keys() == last_w.keys()
    assert any(not np.array_equal(best_w[k], last_w[k]) for k in best_w)
    by_folder = weights.load(out)  # a run folder means its best weights
    assert all(np.array_equal(by_folder[k], best_w[k]) for k in best_w)
    # resumed with more epochs, the spent patience still stops it; --early-stop 0 lifts it
    again = train(spec, data, "--out", str(out), "--resume")
    assert again.exit_code == 0 and len(metrics(out)) == 3 and "early stop" in again.stdout
    longer = train(spec, data, "--out", str(out), "--resume", "--early-stop", "0")
    assert longer.exit_code == 0 and len(metrics(out)) == 8


def test_regression_keeps_the_lowest_held_out_loss(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    np.savez(tmp_path / "r.npz", x=x, target=x[:, :2] * 2)
    spec = tmp_path / "reg.arch"
    spec.write_text(SPEC.replace("train {", 'train {\n        loss = "mse"'))
    result = train(spec, tmp_path / "r.npz", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    rows = metrics(tmp_path / "run")
    best = min(rows, key=lambda r: r["val_loss"])
    assert f"best held-out loss {best['val_loss']:.4f} at epoch {best['epoch']}" in \
        result.stdout


def test_the_terminal_gets_epochs_then_the_summary_and_no_framework_logs(tiny, tmp_path):
    """TensorFlow's absl, oneDNN and cpu_feature_guard lines stay out; the epoch lines go
    to stderr and the summary to stdout, after them."""
    spec, data = tiny
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    done = subprocess.run([sys.executable, "-m", "archdsl.cli", "train", str(spec), "--data",
                           str(data), "--backend", "tensorflow", "--epochs", "2", "--steps",
                           "2", "--out", str(tmp_path / "run")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    for noise in ("absl", "oneDNN", "cpu_feature_guard", "instructions", "I0000", "W0000"):
        assert not any(noise in line for line in lines), (noise, done.stdout)
    starts = ("training Tiny on tiny.npz", "epoch 1/2:", "epoch 2/2:", "Tiny: best held-out",
              "weights:")
    assert len(lines) == len(starts)
    assert all(line.startswith(start) for line, start in zip(lines, starts, strict=True))


def test_resume_alone_continues_an_interrupted_run_as_it_was_started(tiny, tmp_path,
                                                                     monkeypatch):
    """Ctrl-C, then `--resume` with no other option: the run's epochs, schedule and seed
    come from its checkpoint, and it ends where the uninterrupted run ends."""
    import signal

    from archdsl import train as train_mod
    spec, data = tiny
    options = ["--epochs", "4", "--schedule", "OneCycle(max_lr=0.05)", "--seed", "2"]
    straight = tmp_path / "straight"
    assert train(spec, data, "--out", str(straight), *options).exit_code == 0
    real, calls = train_mod.make_trainer, {"n": 0}

    def interrupting(*args):
        trainer = real(*args)
        step = trainer.step

        def wrapped(batch):
            calls["n"] += 1
            if calls["n"] == 15:  # Ctrl-C during the second epoch
                signal.raise_signal(signal.SIGINT)
            return step(batch)
        trainer.step = wrapped
        return trainer

    monkeypatch.setattr(train_mod, "make_trainer", interrupting)
    out = tmp_path / "run"
    stopped = train(spec, data, "--out", str(out), *options)
    assert stopped.exit_code == 0 and "interrupted" in stopped.output
    monkeypatch.setattr(train_mod, "make_trainer", real)
    resumed = train(spec, data, "--out", str(out), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "OneCycle(max_lr=0.05) over 40 steps" in resumed.output
    assert without_timing(metrics(out)) == without_timing(metrics(straight))
    a, b = weights.load(straight / "model.safetensors"), weights.load(out / "model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)
