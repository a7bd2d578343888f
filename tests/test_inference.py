"""Trained weights out of a run: `model.safetensors` in PyTorch's names loads into the
generated PyTorch module as it is, and into every backend's build through
`archdsl.load_state_dict`, giving the run's held-out accuracy; `archdsl predict` and
`archdsl verify --weights` use them. A gan's run writes both of its models' weights."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from typer.testing import CliRunner

import archdsl
from archdsl.api import BACKENDS, TRAINABLE
from archdsl.cli import app
from archdsl.gan import fit as gan_fit
from archdsl.runs import RunError

runner = CliRunner()

SPEC = """
model Tiny(classes: int = 3) {
    input x: [B, 6]
    output logits: [B, classes] = x |> Linear(16) |> BatchNorm1d |> ReLU |> Dropout(0.1)
        |> Linear(classes)
    train {
        optimizer = Adam(lr=1e-2)
        batch = 16
        epochs = 2
    }
}
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """160 training examples and a fixed held-out split of 60."""
    folder = tmp_path_factory.mktemp("inference")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(220, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5).astype(np.int64)
    np.savez(folder / "tiny.npz", x=x[:160], target=y[:160], test_x=x[160:],
             test_target=y[160:])
    np.savez(folder / "held_out.npz", x=x[160:], target=y[160:])
    np.savez(folder / "new.npz", x=x[160:])  # inputs alone, as users predict
    (folder / "tiny.arch").write_text(SPEC)
    return folder


@pytest.fixture(scope="module", params=TRAINABLE)
def run(request: pytest.FixtureRequest, data: Path) -> tuple[str, Path]:
    """A run trained in each backend."""
    out = data / f"run-{request.param}"
    result = runner.invoke(app, ["train", str(data / "tiny.arch"), "--data",
                                 str(data / "tiny.npz"), "--backend", request.param, "--out",
                                 str(out)])
    assert result.exit_code == 0, result.output
    return request.param, out


def best_row(out: Path) -> dict:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return max(rows, key=lambda r: r["val_accuracy"])


def held_out(data: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(data / "tiny.npz") as f:
        return f["test_x"], f["test_target"]


def test_safetensors_load_into_the_generated_pytorch_module(run, data):
    backend, out = run
    graph = archdsl.load(str(data / "tiny.arch")).graph()
    assert set(archdsl.weights.load(out)) == {*graph.parameters("param"),
                                              *graph.parameters("buffer")}
    model = archdsl.build(str(data / "tiny.arch"), "torch")
    model.load_state_dict(safetensors.torch.load_file(out / "best" / "model.safetensors"))
    model.eval()
    x, y = held_out(data)
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(x)).argmax(1).numpy() == y).mean()
    assert accuracy == pytest.approx(best_row(out)["val_accuracy"], abs=1e-12), backend


@pytest.mark.parametrize("target", ["tensorflow", "numpy"])
def test_archdsl_load_state_dict_takes_them_in_the_other_backends(run, data, target):
    _, out = run
    model = archdsl.build(str(data / "tiny.arch"), target)
    archdsl.load_state_dict(model, archdsl.weights.load(out))
    x, y = held_out(data)
    if target == "numpy":
        logits = model.eval()(x)
    else:
        logits = model(x, training=False).numpy()
    assert (logits.argmax(1) == y).mean() == pytest.approx(best_row(out)["val_accuracy"],
                                                          abs=1e-12)


@pytest.mark.parametrize("target", BACKENDS)
def test_every_backend_loads_them_with_the_runs_accuracy(run, data, target):
    _, out = run
    result = runner.invoke(app, ["predict", str(data / "tiny.arch"), "--weights", str(out),
                                 "--data", str(data / "held_out.npz"), "--backend", target])
    assert result.exit_code == 0, result.output
    assert f"accuracy {best_row(out)['val_accuracy']:.2%} against its labels" in result.output


def test_predict_prints_or_saves_the_predictions(run, data, tmp_path):
    backend, out = run
    spec, new = str(data / "tiny.arch"), str(data / "new.npz")
    printed = runner.invoke(app, ["predict", spec, "-w", str(out), "--data", new])
    assert printed.exit_code == 0, printed.output
    table = printed.stdout.splitlines()
    assert table[0].split() == ["index", "predicted", "confidence"] and len(table) == 61
    assert runner.invoke(app, ["predict", spec, "-w", str(out), "--data", new, "-o",
                               str(tmp_path / "p.npz")]).exit_code == 0
    assert runner.invoke(app, ["predict", spec, "-w", str(out), "--data", new, "-o",
                               str(tmp_path / "p.csv")]).exit_code == 0
    with np.load(tmp_path / "p.npz") as f:
        logits, predicted = f["logits"], f["predicted"]
    assert logits.shape == (60, 3) and np.array_equal(predicted, logits.argmax(1))
    with open(tmp_path / "p.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["predicted"]) for r in rows] == predicted.tolist()
    assert [r["predicted"] for r in rows] == [line.split()[1] for line in table[1:]]
    p = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose([float(r["confidence"]) for r in rows],
                               (p / p.sum(1, keepdims=True)).max(1), atol=1e-4)


@pytest.mark.parametrize("args,code,message", [
    (["-w", "{out}/checkpoint.npz"], 1, "is a training checkpoint (for --resume)"),
    (["-w", "{data}/nothing.safetensors"], 1, "no weights file at"),
    (["-w", "{data}/tiny.npz", "--data", "{data}/tiny.npz"], 1, "cannot load"),
    (["-w", "{out}", "-o", "{data}/p.txt"], 2, "-o must end in .npz or .csv"),
    (["-w", "{out}", "--data", "{data}/tiny.arch"], 1, "or an existing .npz file"),
    (["-w", "{out}", "--data", "{data}/new.npz", "--set", "classes=4"], 1, "cannot load"),
])
def test_predict_refuses_what_does_not_fit(run, data, args, code, message):
    _, out = run
    result = runner.invoke(app, ["predict", str(data / "tiny.arch"),
                                 *[a.format(out=out, data=data) for a in args]])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_verify_compares_the_backends_on_trained_weights(run, data):
    _, out = run
    result = runner.invoke(app, ["verify", str(data / "tiny.arch"), "--weights", str(out),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and {r["backend"] for r in report["rows"]} == set(BACKENDS)
    other = runner.invoke(app, ["verify", str(data / "tiny.arch"), "--weights", str(out),
                                "--set", "classes=4"])
    assert other.exit_code == 1 and "cannot load" in other.output


@pytest.mark.parametrize("backend", TRAINABLE)
def test_a_gan_run_writes_both_models_weights_under_the_gan_modules_names(backend, tmp_path):
    """`generator.<key>` and `discriminator.<key>`: the PyTorch build of the gan loads them as
    they are; a second run into the folder is refused like a model's."""
    spec = Path(__file__).resolve().parents[1] / "specs" / "digits_gan.arch"
    tiny = {"nz": 8, "ngf": 4, "ndf": 4}
    gan = archdsl.load(spec).graph(params=tiny)
    out = tmp_path / "run"
    gan_fit(gan, spec.read_text(), backend, out, epochs=1, batch=256, max_steps=2,
            judge_samples=0, progress=False, log=lambda m: None)
    module = archdsl.build(spec, "torch", params=tiny)
    module.load_state_dict(safetensors.torch.load_file(out / "model.safetensors"))
    assert archdsl.weights.metadata(out)["epoch"] == "1"
    with pytest.raises(RunError, match="already holds a run"):
        gan_fit(gan, spec.read_text(), backend, out, epochs=1, judge_samples=0,
                progress=False, log=lambda m: None)


def test_predict_holds_out_what_the_run_held_out(tmp_path):
    """On an embedded dataset, the default split is the run's (its seed is in the weights)."""
    spec = tmp_path / "first.arch"
    spec.write_text("""
model First(vocab: int = 16) {
    input tokens: i64[B, T]
    output logits: [B, vocab] = mean(tokens |> Embedding(vocab, 8), dim=1) |> Linear(vocab)
}
""")
    out = tmp_path / "run"
    trained = runner.invoke(app, ["train", str(spec), "--seed", "3", "--epochs", "1",
                                  "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    accuracy = json.loads((out / "metrics.jsonl").read_text())["val_accuracy"]
    result = runner.invoke(app, ["predict", str(spec), "-w", str(out)])
    assert result.exit_code == 0, result.output
    assert "of first (seed 3)" in result.output
    assert f"accuracy {accuracy:.2%} against its labels" in result.output
