"""`train --device` and `--precision`: which device `auto` takes and what is refused (by name,
before anything runs), mixed precision that really computes in bf16/fp16 with float32
weights, an fp16 loss scale that survives a resume, and bf16 digits at 95% on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import archdsl
from archdsl import checkpoint
from archdsl import train as train_mod
from archdsl.cli import app
from archdsl.devices import DeviceError, pick

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

MLP = """
model Tiny(classes: int = 3) {
    input x: [B, 6]
    output logits: [B, classes] = x |> Linear(16) |> ReLU |> Dropout(0.2) |> Linear(classes)
    train {
        optimizer = Adam(lr=1e-2)
        batch = 16
        epochs = 2
    }
}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    np.savez(tmp_path / "tiny.npz", x=x, target=(x[:, 0] > 0).astype(np.int64))
    spec = tmp_path / "tiny.arch"
    spec.write_text(MLP)
    return spec, tmp_path / "tiny.npz"


# (--device, accelerators the backend found, LOCAL_RANK, the device used)
PICKED = [
    ("auto", {}, 0, "cpu"),
    ("auto", {"cuda": 0, "mps": 0}, 0, "cpu"),
    ("auto", {"cuda": 2, "mps": 0}, 0, "cuda:0"),
    ("auto", {"cuda": 2}, 1, "cuda:1"),  # torchrun: one GPU per process
    ("auto", {"cuda": 0, "mps": 1}, 0, "mps"),
    ("cpu", {"cuda": 2}, 0, "cpu"),
    ("cuda", {"cuda": 1}, 0, "cuda:0"),
    ("cuda:1", {"cuda": 2}, 0, "cuda:1"),
    ("CUDA:1", {"cuda": 2}, 1, "cuda:1"),
    ("mps", {"mps": 1}, 0, "mps"),
]
REFUSED = [
    ("cuda", {"cuda": 0}, "no CUDA device is available"),
    ("cuda:2", {"cuda": 2}, "this machine has 2 CUDA devices (cuda:0 to cuda:1)"),
    ("mps", {"cuda": 1}, "no Apple GPU (mps) device"),
    ("gpu", {"cuda": 1}, "--device is auto, cpu, cuda, cuda:N or mps, not 'gpu'"),
    ("mps:0", {"mps": 1}, "--device is auto, cpu, cuda, cuda:N or mps"),
]


@pytest.mark.parametrize(("device", "found", "rank", "expected"), PICKED)
def test_device_resolution(device, found, rank, expected):
    assert pick(device, found, rank) == expected


@pytest.mark.parametrize(("device", "found", "message"), REFUSED)
def test_device_refusals_name_what_is_missing(device, found, message):
    with pytest.raises(DeviceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pick(device, found)


def test_auto_trains_on_the_cpu_and_cuda_is_refused_without_a_gpu(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    spec, data = tiny
    common = ["train", str(spec), "--data", str(data), "--epochs", "1"]
    done = runner.invoke(app, [*common, "--out", str(tmp_path / "a")])
    assert done.exit_code == 0, done.output
    assert "on cpu in fp32" in done.output
    for device, missing in (("cuda", "CUDA"), ("cuda:1", "CUDA"), ("mps", "Apple GPU")):
        refused = runner.invoke(app, [*common, "--device", device, "--out", str(tmp_path / "b")])
        assert refused.exit_code == 2, refused.output
        assert f"--device {device}: no {missing}" in refused.output
        assert "Traceback" not in refused.output and not (tmp_path / "b").exists()


@pytest.mark.parametrize(("options", "message"), [
    (["--backend", "numpy", "--device", "cuda"], "the numpy backend runs on cpu only"),
    (["--backend", "numpy", "--precision", "bf16"], "the numpy backend trains in fp32 only"),
    (["--precision", "fp8"], "--precision is fp32, bf16, fp16, not 'fp8'"),
    (["--device", "tpu"], "--device is auto, cpu, cuda, cuda:N or mps, not 'tpu'"),
])
def test_what_a_backend_cannot_do_is_refused_before_training(tiny, tmp_path, options, message):
    spec, data = tiny
    result = runner.invoke(app, ["train", str(spec), "--data", str(data), "--out",
                                 str(tmp_path / "run"), *options])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run").exists()


def _dtypes_seen(trainer: train_mod.Trainer, batch: dict[str, np.ndarray]) -> set[str]:
    """The dtypes of every Linear layer's output during one training step."""
    seen: set[str] = set()
    hooks = [m.register_forward_hook(lambda m, i, o: seen.add(str(o.dtype)))
             for m in trainer.model.modules() if isinstance(m, torch.nn.Linear)]
    trainer.step(batch)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", "torch.float32"),
                                                  ("bf16", "torch.bfloat16"),
                                                  ("fp16", "torch.float16")])
def test_torch_computes_in_the_precision_asked_with_float32_weights(precision, dtype):
    graph = archdsl.load(MLP).graph()
    settings = train_mod.resolve(graph)
    settings.precision = precision
    trainer = train_mod.make_trainer("torch", graph, settings)
    batch = {"x": np.ones((16, 6), np.float32), "target": np.zeros(16, np.int64)}
    assert _dtypes_seen(trainer, batch) == {dtype}
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
    assert ("amp/scale" in trainer.state()) == (precision == "fp16")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_keras_layers_compute_in_the_precision_asked_with_float32_weights(precision):
    graph = archdsl.load(MLP).graph()
    settings = train_mod.resolve(graph)
    settings.precision = precision
    trainer = train_mod.make_trainer("tensorflow", graph, settings)
    expected = {"bf16": "bfloat16", "fp16": "float16"}[precision]
    dense = [layer for layer in trainer.model._flatten_layers() if layer.weights]
    assert dense and {layer.compute_dtype for layer in dense} == {expected}
    assert {v.dtype for v in trainer.model.trainable_variables} == {"float32"}
    batch = {"x": np.ones((16, 6), np.float32), "target": np.zeros(16, np.int64)}
    assert np.isfinite(trainer.step(batch))
    import keras
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_fp16_resume_continues_bit_for_bit_with_its_loss_scale(backend, tiny, tmp_path):
    spec, data = tiny
    graph = archdsl.load(MLP).graph()

    def fit(out: str, **options):
        return train_mod.fit(graph, MLP, backend, tmp_path / out, data=str(data),
                             precision="fp16", progress=False, log=lambda m: None, **options)

    straight = fit("a")
    fit("b", epochs=1)
    # --resume alone keeps the interrupted run's options, fp16 among them
    resumed = train_mod.fit(graph, MLP, backend, tmp_path / "b", resume=True,
                            epochs=len(straight.history), progress=False, log=lambda m: None)
    first, second = (checkpoint.load(tmp_path / o / "checkpoint.npz")[0] for o in "ab")
    assert first.keys() == second.keys()
    for k in first:
        np.testing.assert_array_equal(first[k], second[k], err_msg=k)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in straight.history]


def test_bf16_digits_reach_95_percent_on_the_cpu(tmp_path):
    """The README's main job in bfloat16 autocast on the CPU (torch) reaches 95% held-out
    accuracy. The last epoch's figure moves with the thread count and the seed (95.5% to
    97.8% in docs/training.md), the best epoch's stays above 96%."""
    result = runner.invoke(app, ["train", str(ROOT / "specs" / "cnn_digits.arch"), "--device",
                                 "cpu", "--precision", "bf16", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "on cpu in bf16" in result.output
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert len(rows) == 10 and max(r["val_accuracy"] for r in rows) >= 0.95


def _record_device(ckpt: Path, device: str) -> None:
    state, meta = checkpoint.load(ckpt)
    checkpoint.save(ckpt, state, {**meta, "options": {**meta["options"], "device": device}})


def test_a_resumed_run_keeps_its_device_unless_given_another(tiny, tmp_path, monkeypatch):
    """Like its precision, a run's device is recorded and kept by `--resume`; a recorded
    device this machine lacks is refused by name (the run stays as it was) until `--device`
    chooses another, which the run's first line announces."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    spec, data = tiny
    ckpt = tmp_path / "run" / "checkpoint.npz"
    common = ["train", str(spec), "--data", str(data), "--out", str(tmp_path / "run")]

    def train(*options: str, code: int = 0) -> str:
        result = runner.invoke(app, [*common, *options])
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    train("--epochs", "1", "--device", "cpu")
    assert checkpoint.meta(ckpt)["options"]["device"] == "cpu"
    assert "resuming Tiny at epoch 2, step 0, on cpu (as recorded)\n" in train(
        "--resume", "--epochs", "2")
    _record_device(ckpt, "cuda:0")  # as if trained on a GPU machine
    before = ckpt.read_bytes()
    refused = train("--resume", "--epochs", "3", code=2)
    assert f"error: the run in {ckpt} trained on cuda:0: no CUDA device is available" in refused
    assert "use --device cpu" in refused and ckpt.read_bytes() == before
    moved = train("--resume", "--epochs", "3", "--device", "cpu")
    assert "resuming Tiny at epoch 3, step 0, on cpu (--device cpu; the run trained on " \
        "cuda:0)\n" in moved
    assert checkpoint.meta(ckpt)["options"]["device"] == "cpu" and \
        checkpoint.meta(ckpt)["epoch"] == 3
