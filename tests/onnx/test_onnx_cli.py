"""`archdsl compile --backend onnx` and `archdsl verify --backends torch,onnx` as a user runs
them: a binary file (never to a terminal), weights from a file or a training checkpoint,
clear refusals, and no framework imported on the way."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.weights import load as read

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "specs" / "cnn_digits.arch"
IMAGES = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def run_file(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})[0]


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a - b).max()) <= 1e-5 * float(np.abs(b).max())


def test_compile_writes_a_model_file_or_pipes_its_bytes(tmp_path: Path) -> None:
    out = tmp_path / "deploy" / "digits.onnx"
    result = invoke("compile", str(DIGITS), "--backend", "onnx", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (onnx, DigitsCNN)" in result.output
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    piped = invoke("compile", str(DIGITS), "--backend", "onnx")
    assert piped.exit_code == 0
    assert piped.stdout_bytes == out.read_bytes()  # the same weights: drawn from seed 0


def test_compile_refuses_to_write_binary_to_a_terminal(tmp_path: Path) -> None:
    leader, terminal = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "archdsl.cli", "compile", str(DIGITS),
                               "--backend", "onnx"], stdout=terminal, stderr=subprocess.PIPE,
                              cwd=tmp_path, timeout=120, text=True)
    finally:
        os.close(leader)
        os.close(terminal)
    assert done.returncode == 2
    assert "an ONNX model is binary: write it to a file with -o model.onnx" in done.stderr


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_weights_from_a_file_are_the_models(tmp_path: Path, suffix: str) -> None:
    source = archdsl.build(DIGITS, "torch").eval()
    state = archdsl.state_dict(source)
    weights = tmp_path / f"digits{suffix}"
    if suffix == ".npz":
        np.savez(weights, **state)
    else:
        from safetensors.numpy import save_file
        save_file(state, str(weights))
    out = tmp_path / "digits.onnx"
    result = invoke("compile", str(DIGITS), "--backend", "onnx", "--weights", str(weights),
                    "-o", str(out))
    assert result.exit_code == 0, result.output
    with torch.no_grad():
        want = source(torch.from_numpy(IMAGES)).numpy()
    assert close(run_file(out, IMAGES), want)


def test_weights_from_a_training_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained = invoke("train", str(DIGITS), "--backend", "numpy", "--epochs", "1", "--steps",
                     "1", "--batch", "4", "--out", str(run))
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "digits.onnx"
    result = invoke("compile", str(DIGITS), "--backend", "onnx", "--weights", str(run),
                    "-o", str(out))
    assert result.exit_code == 0, result.output
    reference = archdsl.build(DIGITS, "numpy").eval()
    archdsl.load_state_dict(reference, read(run))
    got = run_file(out, IMAGES)
    assert close(got, reference(IMAGES))
    assert not close(got, archdsl.build(DIGITS, "onnx")(IMAGES))  # trained, not initial


def test_weights_that_do_not_fit_are_named(tmp_path: Path) -> None:
    state = archdsl.state_dict(archdsl.build(DIGITS, "onnx"))
    dropped = next(iter(state))
    del state[dropped]
    weights = tmp_path / "partial.npz"
    np.savez(weights, **state)
    result = invoke("compile", str(DIGITS), "--backend", "onnx", "--weights", str(weights),
                    "-o", str(tmp_path / "m.onnx"))
    assert result.exit_code == 1
    assert f"these weights do not fit DigitsCNN: missing keys: {dropped}" in result.output
    assert not (tmp_path / "m.onnx").exists()
    missing = invoke("compile", str(DIGITS), "--backend", "onnx", "--weights",
                     str(tmp_path / "none.safetensors"), "-o", str(tmp_path / "m.onnx"))
    assert missing.exit_code == 1 and "no weights file at" in missing.output


def test_misuse_is_refused_with_what_to_do_instead(tmp_path: Path) -> None:
    weights = invoke("compile", str(DIGITS), "--backend", "torch", "--weights", "w.npz")
    assert weights.exit_code == 2 and "--weights goes with --backend onnx" in weights.output
    train = invoke("train", str(DIGITS), "--backend", "onnx", "--out", str(tmp_path))
    assert train.exit_code == 2
    assert "runs inference only" in train.output and "--backend onnx --weights" in train.output


def test_verify_compares_eval_outputs_and_says_training_does_not_apply() -> None:
    table = invoke("verify", str(DIGITS), "--backends", "torch,onnx")
    assert table.exit_code == 0, table.output
    assert "n/a: onnx runs inference only" in table.output
    report = json.loads(invoke("verify", str(DIGITS), "--backends", "torch,onnx", "--format",
                               "json").stdout)
    onnx_rows = [r for r in report["rows"] if r["backend"] == "onnx"]
    assert [r["name"] for r in onnx_rows] == ["logits (eval)"] and onnx_rows[0]["ok"]
    assert "inference only" in report["not_applicable"]["onnx"]
    assert len([r for r in report["rows"] if r["backend"] == "torch"]) > 10


def test_compile_imports_no_framework(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "archdsl.cli", "compile",
                           str(DIGITS), "--backend", "onnx", "-o", str(tmp_path / "m.onnx")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "onnx" in imported
    assert sorted(m for m in imported if m.split(".")[0] in ("torch", "tensorflow", "keras")) \
        == []


def test_a_model_over_two_gigabytes_keeps_its_weights_beside_it(tmp_path: Path,
                                                                 monkeypatch) -> None:
    """protobuf writes no message over 2 GiB; a lower limit stands in for it here."""
    from archdsl.backends.onnx import generator
    want = archdsl.build(DIGITS, "onnx")(IMAGES)
    monkeypatch.setattr(generator, "MAX_BYTES", 10_000)
    out = tmp_path / "digits.onnx"
    result = invoke("compile", str(DIGITS), "--backend", "onnx", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"its weights in {out}.data" in result.output
    assert out.stat().st_size < 10_000 < (tmp_path / "digits.onnx.data").stat().st_size
    assert close(run_file(out, IMAGES), want)
    assert close(archdsl.build(DIGITS, "onnx")(IMAGES), want)  # the runtime does the same
    piped = invoke("compile", str(DIGITS), "--backend", "onnx")
    assert piped.exit_code == 1
    assert "more than the 2 GiB one ONNX file can hold: write it to a file" in piped.output


@pytest.mark.parametrize(("name", "says"), [
    ("junk.npz", "junk.npz: it is not a valid zip archive"),
    ("junk.safetensors", "junk.safetensors is not a readable safetensors file"),
    ("junk.pt", "junk.pt: weights are a .safetensors or an .npz file"),
])
def test_unreadable_weights_exit_1_with_what_is_wrong(tmp_path: Path, name: str,
                                                      says: str) -> None:
    (tmp_path / name).write_bytes(b"not weights")
    result = invoke("compile", str(DIGITS), "--backend", "onnx", "--weights",
                    str(tmp_path / name), "-o", str(tmp_path / "m.onnx"))
    assert result.exit_code == 1 and says in result.output
    assert "Traceback" not in result.output
