"""`archdsl train` on a `gan`: the five losses agree with their one definition in every
backend, one adversarial step is the same in all three, and a run writes its pictures, metrics
and the judge's verdict (whose Fréchet distance tells noise from trained digits), resumes
bit-for-bit and honours `n_critic` and `clip`."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import archdsl
from archdsl import checkpoint
from archdsl import gan as gan_mod
from archdsl.backends.numpy import gan as numpy_gan
from archdsl.backends.tensorflow import gan as tf_gan
from archdsl.backends.torch import gan as torch_gan
from archdsl.cli import app
from archdsl.devices import DeviceError
from archdsl.graph import GAN_LOSSES, GanGraph, Optimizer

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "digits_gan.arch"
CONDITIONAL = ROOT / "specs" / "cdcgan_digits.arch"
TINY = {"nz": 8, "ngf": 4, "ndf": 4}
BACKENDS = ("torch", "tensorflow", "numpy")


@pytest.fixture(scope="module")
def tiny() -> GanGraph:
    return archdsl.load(SPEC).graph(params=TINY)


@pytest.fixture(scope="module")
def judge_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache of this module's own: the first test that judges trains the judge afresh."""
    return tmp_path_factory.mktemp("cache")


def quiet(message: str) -> None:
    pass


@pytest.mark.parametrize("loss", GAN_LOSSES)
def test_losses_match_their_definition_in_every_backend(loss):
    import tensorflow as tf
    import torch
    rng = np.random.default_rng(1)
    r, f = rng.normal(scale=2, size=(2, 32, 1)).astype(np.float32)
    want_d, want_g = gan_mod.d_loss(loss, r, f), gan_mod.g_loss(loss, f)
    got = {
        "torch": (torch_gan.d_loss(loss, torch.from_numpy(r), torch.from_numpy(f)),
                  torch_gan.g_loss(loss, torch.from_numpy(f))),
        "tensorflow": (tf_gan.d_loss(loss, tf.constant(r), tf.constant(f)),
                       tf_gan.g_loss(loss, tf.constant(f))),
        "numpy": (numpy_gan.d_real(loss, r)[0] + numpy_gan.d_fake(loss, f)[0],
                  numpy_gan.g_loss(loss, f)[0]),
    }
    for backend, (d, g) in got.items():
        assert float(d) == pytest.approx(want_d, rel=1e-5, abs=1e-6), backend
        assert float(g) == pytest.approx(want_g, rel=1e-5, abs=1e-6), backend


def all_weights(trainer) -> dict[str, np.ndarray]:
    return {**{f"g.{k}": v for k, v in archdsl.state_dict(trainer.g).items()},
            **{f"d.{k}": v for k, v in archdsl.state_dict(trainer.d).items()}}


@pytest.mark.parametrize(("loss", "optimizer"), [(loss, "SGD") for loss in GAN_LOSSES]
                         + [("nonsaturating", "Adam")])
def test_one_adversarial_step_is_the_same_in_every_backend(tiny, loss, optimizer):
    settings = dataclasses.replace(gan_mod.resolve(tiny), loss=loss)  # the spec's Adam
    if optimizer == "SGD":  # Adam's first step ignores the gradients' scale; SGD's does not
        sgd = Optimizer(name="SGD", args={"lr": 0.1, "momentum": 0.9})
        settings = dataclasses.replace(settings, g_optimizer=sgd, d_optimizer=sgd)
    after = one_step_in_every_backend(tiny, settings)
    if loss == "wasserstein":
        for backend in BACKENDS:
            clipped = [v for k, v in after[backend].items() if k.startswith("d.")
                       and k.endswith(("weight", "bias"))]
            assert max(np.abs(v).max() for v in clipped) == pytest.approx(settings.clip)


def test_a_conditional_step_is_the_same_in_every_backend():
    """The labels reach both models: the real batch with its own, generated samples with the
    ones they were generated for."""
    gan = archdsl.load(CONDITIONAL).graph(params=TINY)
    sgd = Optimizer(name="SGD", args={"lr": 0.1, "momentum": 0.9})
    one_step_in_every_backend(gan, dataclasses.replace(gan_mod.resolve(gan), g_optimizer=sgd,
                                                       d_optimizer=sgd))


def one_step_in_every_backend(gan: GanGraph, settings) -> dict[str, dict[str, np.ndarray]]:
    """One discriminator and one generator step from the same weights and draws in each
    backend: the same losses and weights after, every weight moved. Returns the weights."""
    trainers = {b: gan_mod.make_trainer(b, gan, settings) for b in BACKENDS}
    g_state = archdsl.state_dict(trainers["torch"].g)
    d_state = archdsl.state_dict(trainers["torch"].d)
    for trainer in trainers.values():
        archdsl.load_state_dict(trainer.g, g_state)
        archdsl.load_state_dict(trainer.d, d_state)
    rows = np.random.default_rng(0).permutation(len(gan_mod.real_images(gan)))[:16]
    real = gan_mod.real_images(gan)[rows]
    real_cond = [c[rows] for c in gan_mod.real_conditions(gan)]
    draws = gan_mod.Draws(np.random.default_rng(1), settings.latent,
                          gan_mod.real_conditions(gan))
    z_d, cond_d, z_g, cond_g = draws.latents(16), draws.resampled(16), draws.latents(16), \
        draws.resampled(16)
    losses = {b: (t.d_step(real, z_d, real_cond, cond_d), t.g_step(z_g, cond_g))
              for b, t in trainers.items()}
    after = {b: all_weights(t) for b, t in trainers.items()}
    assert after["torch"].keys() == after["tensorflow"].keys() == after["numpy"].keys()
    before = {f"g.{k}": v for k, v in g_state.items()} | {f"d.{k}": v for k, v in d_state.items()}
    for name, want in after["torch"].items():
        assert not name.endswith("weight") or not np.array_equal(want, before[name]), name
        for backend in ("tensorflow", "numpy"):
            got = after[backend][name]
            error = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-12)
            assert error < 1e-4, f"{backend} {name}: relative error {error:.2e}"
    for backend in ("tensorflow", "numpy"):
        np.testing.assert_allclose(losses[backend], losses["torch"], rtol=1e-4, atol=1e-6)
    return after


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_conditional_gan_draws_each_class_it_is_asked_for(backend, tmp_path, monkeypatch,
                                                              judge_cache):
    """Six epochs on the embedded digits and their labels: samples.png has one row per class
    (the largest label + 1), and the judge reads the class each sample was generated for."""
    import matplotlib.image
    monkeypatch.setenv("XDG_CACHE_HOME", str(judge_cache))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(CONDITIONAL), "--backend", backend,
                                      "--epochs", "6", "--out", str(out)])
    assert result.exit_code == 0, result.output
    side = 16 + 2
    assert matplotlib.image.imread(out / "samples.png").shape[:2] == (10 * side, 8 * side)
    verdict = json.loads((out / "judge.json").read_text())
    assert verdict["histogram"] == pytest.approx([100] * 10, abs=40), verdict
    assert verdict["condition_agreement"] >= 0.8, verdict
    assert "generated for in" in result.output


def test_a_condition_the_digits_do_not_have_is_refused():
    gan = archdsl.load("""
model G() {
    input z: [B, 8]
    input style: [B, 3]
    output image: [B, 1, 4, 4] = concat([z, style], dim=1) |> Linear(16) |> Reshape(1, 4, 4)
}
model D() {
    input image: [B, 1, 4, 4]
    input style: [B, 3]
    output score: [B, 1] = concat([image |> Flatten, style], dim=1) |> Linear(1)
}
gan Styled() {
    generator = G()
    discriminator = D()
}
""").graph()
    with pytest.raises(ValueError, match=r"one condition, the class label .*`style`: f32\[B, 3\]"):
        gan_mod.real_conditions(gan)


def test_train_writes_samples_losses_metrics_and_the_verdict(tiny, tmp_path, monkeypatch,
                                                             judge_cache):
    import matplotlib.image
    monkeypatch.setenv("XDG_CACHE_HOME", str(judge_cache))
    out = tmp_path / "run"
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(app, ["train", str(SPEC), "--epochs", "1", "--batch", "256",
                                      "--out", str(out), *sets])
    assert result.exit_code == 0, result.output
    assert "epoch 1/1: D loss" in result.output and "digit classes" in result.output
    side = tiny.generator.nodes[tiny.generator.outputs[0]].type.shape[2] + 2
    for name in ("samples_epoch001.png", "samples.png"):
        assert matplotlib.image.imread(out / name).shape[:2] == (8 * side, 8 * side), name
    assert matplotlib.image.imread(out / "losses.png").ndim == 3
    (row,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert row["epoch"] == 1 and np.isfinite([row["d_loss"], row["g_loss"]]).all()
    verdict = json.loads((out / "judge.json").read_text())
    assert verdict["samples"] == sum(verdict["histogram"]) == 1000
    assert verdict["classes_found"] == sum(c > 0 for c in verdict["histogram"])
    assert verdict["judge_accuracy"] >= 0.95 and 0.1 <= verdict["mean_confidence"] <= 1
    assert verdict["frechet_reference_digits"] == 359  # the real digits the judge never saw
    assert 0 < verdict["frechet_real"] < verdict["frechet_noise"]
    assert "Fréchet distance" in result.output
    messages: list[str] = []
    _, _, accuracy = gan_mod.trained_judge(log=messages.append)  # from the cache, re-measured
    assert messages == [] and accuracy == pytest.approx(verdict["judge_accuracy"], abs=1e-4)


def test_tensorflow_gan_training_writes_no_framework_log_lines(tmp_path, judge_cache):
    """TensorFlow's C++ logs (absl's `E0000 ... remapper failed` on the discriminator step
    among them) stay off the terminal of a TensorFlow GAN run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env["XDG_CACHE_HOME"] = str(judge_cache)
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    done = subprocess.run([sys.executable, "-m", "archdsl.cli", "train", str(SPEC), "--backend",
                           "tensorflow", "--epochs", "1", "--batch", "256", *sets, "--out",
                           str(tmp_path / "run")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert done.returncode == 0, done.stdout
    absl = re.compile(r"[IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.-]+:\d+\]")
    assert not [line for line in done.stdout.splitlines() if absl.match(line)], done.stdout


def test_the_distance_ranks_noise_one_epoch_a_trained_run_and_real_digits(
        tmp_path, monkeypatch, judge_cache):
    """The judge of issue 16 read pure noise as 10 of 10 digits. The Fréchet distance ranks
    uniform noise, this GAN after one epoch (blurred first strokes), the same run after five
    and real digits the judge trained on, each clearly nearer the held-out digits than the
    one before (docs/gan.md measures 983, 476, 189 and 22)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(judge_cache))

    def train(*options: str) -> dict:
        result = CliRunner().invoke(app, ["train", str(SPEC), "--out", str(tmp_path), *options])
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / "judge.json").read_text())

    one = train("--epochs", "1")
    five = train("--epochs", "5", "--resume")
    assert one["frechet_noise"] == five["frechet_noise"]  # the same noise, the same judge
    assert one["frechet_real"] == five["frechet_real"]
    assert one["frechet_noise"] > 1.5 * one["frechet_distance"]
    assert one["frechet_distance"] > 1.5 * five["frechet_distance"]
    assert five["frechet_distance"] > 2 * five["frechet_real"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_continues_bit_for_bit(tiny, tmp_path, backend):
    text = SPEC.read_text(encoding="utf-8")

    def run(out: Path, epochs: int, resume: bool = False, spec: str = text):
        return gan_mod.fit(tiny, spec, backend, out, epochs=epochs, batch=256, resume=resume,
                           judge_samples=0, progress=False, log=quiet)

    run(tmp_path / "straight", 2)
    run(tmp_path / "resumed", 1)
    assert [h["epoch"] for h in run(tmp_path / "resumed", 2, resume=True).history] == [1, 2]
    straight, _ = checkpoint.load(tmp_path / "straight" / "checkpoint.npz")
    resumed, _ = checkpoint.load(tmp_path / "resumed" / "checkpoint.npz")
    assert straight.keys() == resumed.keys()
    for k in straight:
        np.testing.assert_array_equal(straight[k], resumed[k], err_msg=k)
    with pytest.raises(checkpoint.CheckpointError, match="another spec"):
        run(tmp_path / "resumed", 3, resume=True, spec=text + "\n")


def test_resume_keeps_the_device_and_precision_unless_given(tiny, tmp_path, monkeypatch):
    """As a model's run, a gan's records its device and precision and a resume keeps them; a
    recorded device this machine lacks is refused by name until `device` chooses another."""
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    text = SPEC.read_text(encoding="utf-8")
    said: list[str] = []

    def run(epochs: int, **options):
        return gan_mod.fit(tiny, text, "torch", tmp_path, epochs=epochs, batch=256,
                           max_steps=1, judge_samples=0, progress=False, log=said.append,
                           **options)

    run(1, device="cpu", precision="bf16")
    run(2, resume=True)
    assert "resuming DigitsGAN after epoch 1, on cpu (as recorded)" in said
    assert said[-2].endswith("on cpu in bf16")
    state, meta = checkpoint.load(tmp_path / "checkpoint.npz")
    checkpoint.save(tmp_path / "checkpoint.npz", state,
                    {**meta, "options": {**meta["options"], "device": "cuda:0"}})
    with pytest.raises(DeviceError, match="the run in .* trained on cuda:0: no CUDA device"):
        run(3, resume=True)
    run(3, resume=True, device="cpu")
    assert "resuming DigitsGAN after epoch 2, on cpu (--device cpu; the run trained on " \
        "cuda:0)" in said


def test_resume_without_a_checkpoint_is_an_error_not_a_crash(tmp_path):
    result = CliRunner().invoke(app, ["train", str(SPEC), "--resume", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "no checkpoint" in result.output


def wasserstein(extra: str = "") -> str:
    text = SPEC.read_text(encoding="utf-8").replace('"nonsaturating"', '"wasserstein"')
    return text.replace("train {", "train {\n" + extra, 1)


def test_n_critic_and_clip_default_for_wasserstein_only(tiny):
    plain = gan_mod.resolve(tiny)
    assert (plain.n_critic, plain.clip) == (1, 0.01)
    default = gan_mod.resolve(archdsl.load(wasserstein()).graph(params=TINY))
    assert (default.loss, default.n_critic, default.clip) == ("wasserstein", 5, 0.01)


def test_critic_steps_per_generator_step_and_clipping(tmp_path, monkeypatch):
    text = wasserstein("n_critic = 3\nclip = 0.02\n")
    g = archdsl.load(text).graph(params=TINY)
    calls: list[str] = []
    make = gan_mod.make_trainer

    def counting(backend, gan, settings):
        trainer = make(backend, gan, settings)
        for name in ("d_step", "g_step"):
            step = getattr(trainer, name)
            setattr(trainer, name, lambda *a, _step=step, _name=name:
                    calls.append(_name) or _step(*a))
        return trainer

    monkeypatch.setattr(gan_mod, "make_trainer", counting)
    gan_mod.fit(g, text, "torch", tmp_path / "capped", epochs=1, batch=256, max_steps=4,
                judge_samples=0, progress=False, log=quiet)  # `--steps 4`
    assert calls == ["d_step"] * 3 + ["g_step", "d_step"]
    calls.clear()
    gan_mod.fit(g, text, "torch", tmp_path, epochs=1, batch=256, judge_samples=0,
                progress=False, log=quiet)
    assert calls == (["d_step"] * 3 + ["g_step"]) * 2 + ["d_step"]  # 1797 // 256 = 7 steps
    state, _ = checkpoint.load(tmp_path / "checkpoint.npz")
    critic = [v for k, v in state.items() if k.startswith("d/") and k.endswith(("weight", "bias"))]
    assert max(np.abs(v).max() for v in critic) == pytest.approx(0.02)
