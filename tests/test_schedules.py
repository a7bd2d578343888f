"""Learning-rate schedules: each equals PyTorch's scheduler step by step, in the closed form
every backend follows and in what each backend's optimizer actually held during a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

from archdsl import schedules
from archdsl.api import TRAINABLE
from archdsl.cli import app
from archdsl.graph import Optimizer

runner = CliRunner()
SGD = Optimizer(name="SGD", args={"lr": 0.1, "momentum": 0.9})
ADAM = Optimizer(name="Adam", args={"lr": 1e-2, "betas": [0.9, 0.999]})


def pytorch(text: str, optimizer: Optimizer, total: int) -> torch.optim.Optimizer:
    """PyTorch's own scheduler for a schedule, as schedules.py documents it."""
    params = [torch.nn.Parameter(torch.zeros(1))]
    args = {**optimizer.args, **({"betas": tuple(optimizer.args["betas"])}
                                 if "betas" in optimizer.args else {})}
    opt = getattr(torch.optim, optimizer.name)(params, **args)
    a = schedules.parse(text).args
    lr_scheduler = torch.optim.lr_scheduler
    if text.startswith("Cosine"):
        cosine = lr_scheduler.CosineAnnealingLR(opt, T_max=total - a["warmup"],
                                                eta_min=a["eta_min"])
        if a["warmup"]:
            warmup = lr_scheduler.LinearLR(opt, start_factor=a["start_factor"],
                                           total_iters=a["warmup"])
            return opt, lr_scheduler.SequentialLR(opt, [warmup, cosine], [a["warmup"]])
        return opt, cosine
    if text.startswith("Step"):
        return opt, lr_scheduler.StepLR(opt, a["step_size"], a["gamma"])
    return opt, lr_scheduler.OneCycleLR(
        opt, max_lr=a["max_lr"] or optimizer.args["lr"], total_steps=total,
        **{k: v for k, v in a.items() if k != "max_lr"})


def pytorch_values(text: str, optimizer: Optimizer, total: int
                   ) -> tuple[list[float], list[float]]:
    """The learning rate and momentum (SGD's momentum, Adam's beta1) each optimizer step
    runs with."""
    opt, scheduler = pytorch(text, optimizer, total)
    lrs, momenta = [], []
    for _ in range(total):
        group = opt.param_groups[0]
        lrs.append(group["lr"])
        momenta.append(group["betas"][0] if "betas" in group else group["momentum"])
        opt.step()
        scheduler.step()
    return lrs, momenta


CASES = [
    ("Cosine", SGD, 40),
    ("Cosine(warmup=7, start_factor=0.1, eta_min=1e-4)", ADAM, 40),
    ("Cosine(warmup=1)", SGD, 5),
    ("Step(step_size=3)", SGD, 20),
    ("Step(4, gamma=0.5)", ADAM, 21),
    ("OneCycle", ADAM, 50),
    ("OneCycle(max_lr=0.3, anneal_strategy=\"linear\", three_phase=true)", SGD, 50),
    ("OneCycle(pct_start=0.5, div_factor=10, final_div_factor=100, cycle_momentum=false)",
     SGD, 13),
    ("OneCycle(base_momentum=0.8, max_momentum=0.9)", SGD, 7),
]


@pytest.mark.parametrize("text,optimizer,total", CASES)
def test_closed_form_equals_pytorchs_scheduler(text, optimizer, total):
    plan = schedules.plan(schedules.parse(text), optimizer, total)
    lrs, momenta = pytorch_values(text, optimizer, total)
    ours = [plan.at(t) for t in range(total)]
    np.testing.assert_allclose([lr for lr, _ in ours], lrs, rtol=1e-12, atol=0)
    if plan.cycles_momentum:
        np.testing.assert_allclose([m for _, m in ours], momenta, rtol=1e-12, atol=0)
    else:
        assert all(m is None for _, m in ours)


SPEC = """
model Tiny(classes: int = 3) {
    input x: [B, 6]
    output logits: [B, classes] = x |> Linear(16) |> ReLU |> Linear(classes)
    train {
        optimizer = %s
        batch = 16
        epochs = 2
        schedule = Cosine(warmup=3, eta_min=1e-4)
    }
}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    np.savez(tmp_path / "tiny.npz", x=x, target=(x[:, 0] > 0).astype(np.int64))
    return tmp_path / "tiny.npz", tmp_path


def logged(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a run's TensorBoard events, as TensorBoard reads them."""
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


# The spec's own schedule, and each one given on the command line (which overrides it).
RUNS = [(None, "Adam(lr=1e-2)", ADAM),
        ("Step(step_size=4, gamma=0.5)", "SGD(lr=0.1, momentum=0.9)", SGD),
        ("OneCycle(max_lr=0.05)", "Adam(lr=1e-2)", ADAM),
        ("OneCycle(three_phase=true)", "SGD(lr=0.1)", Optimizer(name="SGD", args={"lr": 0.1}))]


@pytest.mark.parametrize("backend", TRAINABLE)
@pytest.mark.parametrize("schedule,optimizer,spec_optimizer", RUNS,
                         ids=["spec-cosine", "step", "onecycle-adam", "onecycle-sgd"])
def test_each_backend_steps_with_pytorchs_rates(backend, schedule, optimizer, spec_optimizer,
                                               tiny):
    """The rates each backend's optimizer held at every step of `archdsl train` (logged to
    TensorBoard as float32) are PyTorch's; OneCycle cycles the momentum too, even for an SGD
    declared without one, as PyTorch's OneCycleLR does."""
    data, tmp = tiny
    spec = tmp / "tiny.arch"
    spec.write_text(SPEC % optimizer)
    out = tmp / "run"
    result = runner.invoke(app, ["train", str(spec), "--backend", backend, "--data", str(data),
                                 "--steps", "5", "--out", str(out),
                                 *(["--schedule", schedule] if schedule else [])])
    assert result.exit_code == 0, result.output
    text = schedule or "Cosine(warmup=3, eta_min=1e-4)"
    lrs, momenta = pytorch_values(text, spec_optimizer, 10)
    scalars = logged(out)
    assert [s for s, _ in scalars["train/lr"]] == list(range(1, 11))
    np.testing.assert_allclose([v for _, v in scalars["train/lr"]], lrs, rtol=1e-6)
    if "OneCycle" in text:
        np.testing.assert_allclose([v for _, v in scalars["train/momentum"]], momenta,
                                   rtol=1e-6)
    assert f"{text.split('(')[0]}(" in result.output  # the plan is announced


@pytest.mark.parametrize("argument,message", [
    ("Cosine(warmup=-1)", "`warmup` of `Cosine` must be a non-negative integer"),
    ("Step", "`Step` needs `step_size`"),
    ("Cosin(warmup=3)", "did you mean `Cosine`?"),
    ("OneCycle(max_lr=0.1, pct=0.2)", "`OneCycle` has no setting `pct`"),
    ("Cosine(warmup=x)", "numbers, strings, true or false"),
    ("cosine with warmup", "cannot read"),
])
def test_a_bad_schedule_on_the_command_line_is_a_clear_error(argument, message, tiny):
    data, tmp = tiny
    spec = tmp / "tiny.arch"
    spec.write_text(SPEC % "Adam(lr=1e-2)")
    result = runner.invoke(app, ["train", str(spec), "--data", str(data), "--schedule",
                                 argument, "--out", str(tmp / "run")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp / "run").exists()


@pytest.mark.parametrize("setting,message", [
    ("schedule = Step", "`Step` needs `step_size`, e.g. `Step(step_size=1000)`"),
    ("schedule = OneCycle(anneal_strategy=\"lin\")",
     "`anneal_strategy` of `OneCycle` must be \"cos\" or \"linear\", not \"lin\""),
    ("schedule = Adam(lr=1e-3)", "`schedule` must be Cosine(...), Step(...) or OneCycle(...)"),
])
def test_a_bad_schedule_in_the_spec_is_located(setting, message, tmp_path):
    spec = tmp_path / "bad.arch"
    spec.write_text(SPEC.replace("schedule = Cosine(warmup=3, eta_min=1e-4)", setting)
                    % "Adam(lr=1e-2)")
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 1
    assert "error[E0701]" in result.output and message in result.output
    assert "bad.arch:9:" in result.output


def test_a_warmup_longer_than_the_run_is_refused_before_training(tiny):
    data, tmp = tiny
    spec = tmp / "tiny.arch"
    spec.write_text(SPEC % "Adam(lr=1e-2)")
    result = runner.invoke(app, ["train", str(spec), "--data", str(data), "--steps", "2",
                                 "--schedule", "Cosine(warmup=4)", "--out", str(tmp / "run")])
    assert result.exit_code == 1
    assert "warmup (4 steps) must be shorter than the run (4 optimizer steps)" in result.output
    assert not (tmp / "run").exists()


def test_keras_fit_follows_the_specs_schedule(tiny):
    """`compile_for_fit` with `steps_per_epoch` returns the callback that sets the schedule's
    rates before each batch of `fit`."""
    import keras

    import archdsl
    from archdsl.backends import tensorflow as backend
    from archdsl.backends.tensorflow.training import compile_for_fit
    from archdsl.data import load_dataset
    data, _ = tiny
    graph = archdsl.load(SPEC.replace("Cosine(warmup=3, eta_min=1e-4)", "OneCycle(max_lr=0.05)")
                         % "SGD(lr=0.1)").graph()
    dataset = load_dataset(str(data), graph)
    model = backend.build(graph)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        compile_for_fit(model, graph)
    steps = len(dataset) // 16
    fit_args = compile_for_fit(model, graph, steps_per_epoch=steps)
    held: list[tuple[float, float]] = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            opt = self.model.optimizer
            held.append((float(opt.learning_rate.numpy()),
                         float(opt.scheduled_momentum.numpy())))

    fit_args["callbacks"].append(Record())
    x, y = dataset.xy("train")
    model.fit(x[:steps * 16], y[:steps * 16], shuffle=False, verbose=0, **fit_args)
    lrs, momenta = pytorch_values("OneCycle(max_lr=0.05)", Optimizer(name="SGD",
                                  args={"lr": 0.1}), 2 * steps)
    np.testing.assert_allclose([lr for lr, _ in held], lrs, rtol=1e-6)
    np.testing.assert_allclose([m for _, m in held], momenta, rtol=1e-6)


@pytest.mark.parametrize("option", [["--schedule", "Cosine"], ["--early-stop", "2"]])
def test_a_gan_refuses_what_only_models_take(option, tmp_path):
    spec = Path(__file__).resolve().parents[1] / "specs" / "digits_gan.arch"
    result = runner.invoke(app, ["train", str(spec), *option, "--out", str(tmp_path / "g")])
    assert result.exit_code == 2 and "is a gan: --schedule and --early-stop" in result.output
    assert not (tmp_path / "g").exists()
