"""`archdsl train`: one loop for every backend.

The loop owns data, epochs, progress, metrics and checkpoints; each backend supplies a small
trainer (`backends/<name>/training.py`, class `Trainer`) that takes one optimisation step on a
batch of NumPy arrays, predicts, exports its weights in PyTorch's layout, takes a schedule's
learning rate, and exports or restores its whole state (weights, optimizer, RNG) as plain
arrays. Resuming replays the interrupted epoch's shuffle and skips the batches already done,
so an interrupted run continues bit-for-bit.

A run writes into a folder of its own (runs.py): the checkpoint, the last and best epochs'
weights (weights.py), the metrics and TensorBoard events (run_log.py).
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from archdsl import backends as registry
from archdsl import checkpoint, memory, runs, schedules, weights
from archdsl.data import Dataset, check_labels, default_dataset, load_dataset, symbol_sizes
from archdsl.graph import Graph, Optimizer, Schedule, TrainConfig
from archdsl.limits import Limits
from archdsl.run_log import TensorBoard, write_metrics

DEFAULTS = {"loss": "cross_entropy", "batch": 64, "epochs": 5}
HISTORY_KEYS = ("epoch", "train_loss", "val_loss", "val_accuracy")  # what the plot reads


@dataclass
class Settings:
    """Resolved training settings: the spec's `train` block, then command-line overrides."""

    loss: str
    optimizer: Optimizer
    batch: int
    epochs: int
    inputs: list[str]
    label: str = "target"
    seed: int = 0
    rank: int = 0
    world: int = 1  # > 1 under torchrun: each rank trains on its shard of every batch
    schedule: Schedule | None = None
    device: str = "cpu"  # resolved by archdsl.devices: cpu, cuda:N or mps
    precision: str = "fp32"  # fp32, bf16 or fp16
    strategy: str = "ddp"  # with world > 1: ddp replicates the model, fsdp shards it
    extra: dict[str, Any] = field(default_factory=dict)


def resolve(graph: Graph, epochs: int | None = None, batch: int | None = None,
            lr: float | None = None, seed: int = 0, label: str = "target",
            schedule: Schedule | None = None) -> Settings:
    cfg = graph.train or TrainConfig()
    opt = cfg.optimizer or Optimizer(name="Adam", args={"lr": 1e-3, "betas": (0.9, 0.999),
                                                         "eps": 1e-8, "weight_decay": 0.0})
    if lr is not None:
        opt = Optimizer(name=opt.name, args={**opt.args, "lr": lr})
    return Settings(loss=cfg.loss or DEFAULTS["loss"], optimizer=opt,
                    batch=batch or cfg.batch or DEFAULTS["batch"],
                    epochs=epochs if epochs is not None else (cfg.epochs or DEFAULTS["epochs"]),
                    inputs=list(graph.input_names), label=label, seed=seed,
                    schedule=schedule or cfg.schedule)


class Trainer(Protocol):
    def step(self, batch: dict[str, np.ndarray]) -> float: ...
    def predict(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...
    def state(self) -> dict[str, np.ndarray]: ...
    def load_state(self, state: dict[str, np.ndarray]) -> None: ...

    def weights(self) -> dict[str, np.ndarray]:
        """The model's canonical state dict: PyTorch's keys and layouts."""

    def set_hyperparameters(self, lr: float, momentum: float | None = None) -> None:
        """A schedule's values for the next step; `momentum` is SGD's momentum or Adam's
        beta1 (None: leave it)."""

    def hyperparameters(self) -> dict[str, float]:
        """`{"lr": ..., "momentum": ...}` as the optimizer holds them now."""


def make_trainer(backend: str, graph: Graph, settings: Settings) -> Trainer:
    module = registry.get(backend).part("training")
    return module.Trainer(graph, settings)


class NonFiniteLoss(RuntimeError):
    pass


# ---- metrics ------------------------------------------------------------------------------
def loss_and_accuracy(logits: np.ndarray, target: np.ndarray, loss: str) -> tuple[float, float]:
    """Held-out loss (same definition as training) and accuracy for classification losses."""
    logits = logits.astype(np.float64)
    if loss == "cross_entropy":
        flat = logits.reshape(-1, logits.shape[-1])
        labels = target.reshape(-1).astype(np.int64)
        shifted = flat - flat.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        value = -logp[np.arange(len(labels)), labels].mean()
        return float(value), float((flat.argmax(axis=1) == labels).mean())
    t = target.astype(np.float64).reshape(logits.shape)
    if loss == "bce_with_logits":
        value = np.mean(np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits))))
        return float(value), float(((logits > 0) == (t > 0.5)).mean())
    if loss == "mse":
        return float(np.mean((logits - t) ** 2)), float("nan")
    return float(np.mean(np.abs(logits - t))), float("nan")


def eval_batch(graph: Graph, data: Dataset, batch: int) -> int:
    """Held-out batches of up to 256 examples while their logits stay small (2**22 values),
    and never smaller than the training batch."""
    classes = graph.nodes[graph.outputs[0]].type.shape[-1]
    per_example = math.prod(data.test[data.label].shape[1:])
    if isinstance(classes, int):
        per_example *= max(classes, 1)
    return max(batch, min(256, 2**22 // per_example))


def evaluate(trainer: Trainer, data: Dataset, settings: Settings, batch: int | None = None,
             limit: int | None = None) -> tuple[float, float]:
    """Loss and accuracy on the held-out split in batches of `batch` (default the training
    batch), on its first `limit` batches when given."""
    total_loss = total_acc = 0.0
    n = 0
    for i, batch_arrays in enumerate(data.batches("test", batch or settings.batch)):
        if i == limit:
            break
        out = trainer.predict(batch_arrays)
        labels = batch_arrays[data.label]
        batch_loss, batch_acc = loss_and_accuracy(out, labels, settings.loss)
        k = len(labels)
        total_loss += batch_loss * k
        total_acc += batch_acc * k
        n += k
    return total_loss / max(n, 1), total_acc / max(n, 1)


def plot(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], marker="o", label="held-out")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(epochs, [h["val_accuracy"] for h in history], marker="o", color="tab:green")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("held-out accuracy")
    ax2.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- the loop -----------------------------------------------------------------------------
def monitored(loss: str) -> str:
    """The held-out metric that picks a run's best epoch: the accuracy of a classification
    loss, else the loss itself."""
    return "val_accuracy" if loss in ("cross_entropy", "bce_with_logits") else "val_loss"


def best_epoch(history: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The row of the first epoch with the best `key` (higher accuracy, lower loss)."""
    best = None
    for row in history:
        value = row[key]
        if value != value:  # NaN
            continue
        if best is None or (value > best[key] if key == "val_accuracy" else value < best[key]):
            best = row
    return best


@dataclass
class Result:
    history: list[dict[str, Any]]
    accuracy: float  # the last epoch's held-out accuracy and loss
    loss: float
    out: Path
    stopped: str | None = None
    trainer: Any = None
    best: dict[str, Any] | None = None  # the best epoch's row of `history`
    early_stop: str | None = None  # why `--early-stop` ended the run before its last epoch


def fit(graph: Graph, spec_text: str, backend: str, out: Path, data: str | None = None,
        epochs: int | None = None, batch: int | None = None, lr: float | None = None,
        seed: int | None = None, resume: bool = False, seq_len: int = 32,
        progress: bool = True, log: Any = print, steps: int | None = None,
        schedule: Schedule | None = None, early_stop: int | None = None,
        overwrite: bool = False, limits: Limits | None = None, device: str | None = None,
        precision: str | None = None, strategy: str = "ddp") -> Result:
    """Train `graph` with `backend` into the run folder `out` (runs.py: refused if it holds
    another run, unless `resume` or `overwrite`). `steps` (a smoke run) caps the optimizer
    steps of each epoch and the held-out batches; `schedule` overrides the spec's;
    `early_stop` ends the run after that many epochs without a better held-out metric;
    `limits` bound the parameters (docs/limits.md) before anything is allocated.
    Resuming, the options left as None take the interrupted run's values (`seed` 0,
    `precision` fp32 and `device` auto when neither gives one; a recorded device this machine
    lacks is refused: devices.resolve_run). `device` and `precision` are described in
    archdsl/devices.py, `strategy` (ddp or fsdp, under torchrun) in
    backends/torch/distributed.py."""
    from archdsl import devices
    from archdsl.data import label_key
    from archdsl.sharding import TRAIN_STRATEGIES
    spec_hash = checkpoint.spec_hash(spec_text, graph.name, graph.params)
    ckpt = out / runs.CHECKPOINT
    options = {"data": data, "epochs": epochs, "batch": batch, "lr": lr, "seed": seed,
               "steps": steps, "early_stop": early_stop, "precision": precision,
               "schedule": schedule.model_dump() if schedule else None}
    recorded = None  # the device of the run resumed
    if resume:
        if not ckpt.exists():
            raise checkpoint.CheckpointError(f"--resume: no checkpoint in {out}")
        state, meta = checkpoint.load(ckpt)
        checkpoint.require(meta, ckpt, epoch=int, step=int, shuffle_state=dict, history=list,
                           epoch_losses=list)
        kept = checkpoint.recorded_options(meta, ckpt)
        recorded = kept.get("device")
        checkpoint.require_numbers(meta, ckpt, "history", HISTORY_KEYS)
        checkpoint.require_numbers(meta, ckpt, "epoch_losses")
        if meta.get("spec_hash") != spec_hash:
            raise checkpoint.CheckpointError(
                f"{ckpt} was written for a different spec, model or --set values (they "
                "changed since); start a new run with another --out, or drop --resume")
        if meta.get("backend") != backend:
            raise checkpoint.CheckpointError(f"{ckpt} is a {meta.get('backend')} checkpoint")
        options = {k: v if v is not None else kept.get(k) for k, v in options.items()}
    seed, precision = options["seed"] or 0, options["precision"] or "fp32"
    steps, early_stop = options["steps"], options["early_stop"]
    settings = resolve(graph, options["epochs"], options["batch"], options["lr"], seed,
                       label_key(graph), options["schedule"] and Schedule(**options["schedule"]))
    settings.rank, settings.world = distributed_rank()
    settings.device, how = devices.resolve_run(backend, device, recorded, precision, str(ckpt),
                                               local_rank())
    options["device"] = devices.to_record(settings.device, settings.world)
    settings.precision, settings.strategy = precision, strategy
    if (warning := devices.caution(settings.device, precision)) and settings.rank == 0:
        log(f"warning: {warning}")
    if strategy not in TRAIN_STRATEGIES:
        raise ValueError(f"the strategy is ddp or fsdp, not {strategy!r}")
    if settings.world > 1:
        if backend != "torch":
            raise ValueError("--nproc runs the PyTorch build; use --backend torch")
        if settings.batch % settings.world:
            raise ValueError(f"the batch ({settings.batch}) must be a multiple of the number "
                             f"of processes ({settings.world})")
    lead = settings.rank == 0
    if not lead:
        progress, log = False, (lambda message: None)
    dataset_name = options["data"] or (graph.train.data if graph.train and graph.train.data
                                       else None) or default_dataset(graph)
    dataset = load_dataset(dataset_name, graph, seed=seed, seq_len=seq_len)
    check_labels(dataset, graph, settings.loss)
    memory.check_training(graph, limits or Limits(),
                          symbol_sizes(graph, dataset, settings.batch))
    steps_per_epoch = max(1, len(dataset) // settings.batch)
    if steps is not None:
        steps_per_epoch = min(steps_per_epoch, steps)
    plan = schedules.plan(settings.schedule, settings.optimizer,
                          steps_per_epoch * settings.epochs)
    if lead:
        runs.claim(out, resume, overwrite)
        checkpoint.remove_stale_temporaries(ckpt)
    trainer = make_trainer(backend, graph, settings)
    key = monitored(settings.loss)
    history: list[dict[str, Any]] = []
    shuffle = np.random.default_rng(seed)
    start_epoch, skip = 0, 0
    done: list[float] = []  # losses of the steps an interrupted epoch has taken
    if resume:
        checkpoint.restore(trainer, state, ckpt)
        try:
            shuffle.bit_generator.state = meta["shuffle_state"]
        except (TypeError, ValueError, KeyError) as exc:
            raise checkpoint.CheckpointError(f"{ckpt}: its meta has no valid shuffle_state "
                                             f"({exc})") from None
        start_epoch, skip = meta["epoch"], meta["step"]
        history = meta["history"]
        done = meta["epoch_losses"]
        if lead:  # rows written after the checkpoint (a kill in between) are not run yet
            write_metrics(out, history)
        log(f"resuming {graph.name} at epoch {start_epoch + 1}, step {skip}, on "
            f"{settings.device}{how}")
    log(f"training {graph.name} on {dataset.name} ({dataset.description}) with {backend}: "
        f"{settings.epochs} epochs, batch {settings.batch}, {settings.optimizer.name} "
        f"lr={settings.optimizer.args.get('lr')}"
        + (f", {schedules.describe(plan.schedule)} over {plan.total} steps" if plan else "")
        + f", on {settings.device} in {precision}"
        + (f", {settings.world} processes ({strategy})" if settings.world > 1 else ""))

    # under FSDP every rank takes part in the held-out passes and in gathering the state
    # and weights, which the lead alone writes
    sharded = getattr(trainer, "sharded", False)

    def save(epoch: int, step: int, shuffle_state: dict[str, Any],
             losses: list[float] | None = None) -> None:
        state = trainer.state() if lead or sharded else {}
        if not lead:
            return
        best = best_epoch(history, key)
        checkpoint.save(ckpt, state, {
            "spec_hash": spec_hash, "backend": backend, "epoch": epoch, "step": step,
            "shuffle_state": shuffle_state, "history": history, "model": graph.name,
            "dataset": dataset.name, "epoch_losses": [float(v) for v in losses or []],
            "options": options,
            "best": best and {"epoch": best["epoch"], "loss": best["val_loss"],
                              "accuracy": None if key == "val_loss" else best[key]}})

    # a smoke run (`steps`) evaluates `steps` training-sized batches
    held_out_batch = settings.batch if steps else eval_batch(graph, dataset, settings.batch)
    stopped = early = None
    bar = _progress(progress)
    with ExitStack() as cleanup:
        cleanup.enter_context(bar)
        ctrl_c = cleanup.enter_context(_StopBetweenSteps())
        events = TensorBoard(out, steps_per_epoch * start_epoch + skip) if lead else None
        if events:
            cleanup.callback(events.close)
        task = bar.add_task(graph.name, total=steps_per_epoch * settings.epochs,
                            completed=steps_per_epoch * start_epoch + skip, loss=float("nan"),
                            rate=0.0)
        for epoch in range(start_epoch, settings.epochs):
            best = best_epoch(history, key)
            if early_stop and best and history[-1]["epoch"] - best["epoch"] >= early_stop:
                early = (f"no better held-out {key[4:]} for {early_stop} epoch"
                         f"{'s' if early_stop > 1 else ''} after epoch {best['epoch']}")
                break
            shuffle_state = shuffle.bit_generator.state
            t0 = time.perf_counter()
            losses, done = done, []
            step = taken = 0  # taken: steps run by this process (for the throughput)
            try:
                shard = (settings.rank, settings.world)
                for step, b in enumerate(dataset.batches("train", settings.batch, shuffle,
                                                         shard)):
                    if step == steps_per_epoch:
                        break
                    if step < skip:
                        continue
                    if ctrl_c.pressed:
                        raise KeyboardInterrupt
                    t = epoch * steps_per_epoch + step
                    if plan:
                        trainer.set_hyperparameters(*plan.at(t))
                    value = trainer.step(b)
                    if not math.isfinite(value):
                        raise NonFiniteLoss(f"the loss became {value} at epoch {epoch + 1}, "
                                            f"step {step + 1}")
                    losses.append(value)
                    taken += 1
                    if events:
                        events.scalars(t + 1, step_scalars(value, trainer, plan))
                    rate = taken * settings.batch / (time.perf_counter() - t0)
                    bar.update(task, advance=1, loss=value, rate=rate)
            except KeyboardInterrupt:
                if ctrl_c.pressed > 1:  # pressed again mid-step: the weights may be half-updated
                    stopped = f"interrupted twice; the last checkpoint is kept in {ckpt}" \
                        if ckpt.exists() else "interrupted twice; no checkpoint was written"
                    break
                save(epoch, step, shuffle_state, losses)
                stopped = f"interrupted; saved {ckpt} (resume with --resume)"
                break
            except NonFiniteLoss as exc:
                stopped = f"{exc}; the last good checkpoint is kept in {ckpt}" if \
                    ckpt.exists() else f"{exc}; no checkpoint was written"
                break
            skip = 0
            if not lead and not sharded:
                continue
            val_loss, val_acc = evaluate(trainer, dataset, settings, held_out_batch, steps)
            seconds = time.perf_counter() - t0
            row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else
                   float("nan"), "val_loss": val_loss, "val_accuracy": val_acc,
                   "lr": trainer.hyperparameters()["lr"], "seconds": round(seconds, 3),
                   "examples_per_s": round(taken * settings.batch / seconds, 1)}
            history.append(row)
            if events:
                events.epoch((epoch + 1) * steps_per_epoch, row)
            save(epoch + 1, 0, shuffle.bit_generator.state)
            improved = best_epoch(history, key) is row
            last_weights = trainer.weights()
            if not lead:
                continue
            keep_weights(out, last_weights, {
                "model": graph.name, "spec_sha256": spec_hash, "backend": backend,
                "seed": str(seed), "epoch": str(row["epoch"]), "val_loss": repr(row["val_loss"]),
                "val_accuracy": repr(row["val_accuracy"])}, improved)
            write_metrics(out, history)
            say(bar, progress, log, f"epoch {epoch + 1}/{settings.epochs}: train loss "
                f"{row['train_loss']:.4f}, held-out loss {val_loss:.4f}, accuracy "
                f"{val_acc:.2%}" + (" (best)" if improved and len(history) > 1 else "")
                + (f", lr {row['lr']:.3g}" if plan else "") + f" ({seconds:.1f} s)")
    if hasattr(trainer, "close"):
        trainer.close()
    if history and lead:
        plot(history, out / "curves.png")
    last = history[-1] if history else {"val_accuracy": float("nan"), "val_loss": float("nan")}
    return Result(history, last["val_accuracy"], last["val_loss"], out, stopped, trainer,
                  best_epoch(history, key), early)


def step_scalars(loss: float, trainer: Trainer, plan: schedules.Plan | None
                 ) -> dict[str, float]:
    """What TensorBoard gets after each step: the loss, the learning rate the optimizer
    holds, and the momentum when the schedule cycles it."""
    rates = trainer.hyperparameters()
    out = {"train/loss": loss, "train/lr": rates["lr"]}
    if plan and plan.cycles_momentum:
        out["train/momentum"] = rates["momentum"]
    return out


def keep_weights(out: Path, state: dict[str, np.ndarray], metadata: dict[str, str],
                 best: bool) -> None:
    """The epoch's weights as the run's last (`model.safetensors`); when `best`, its weights
    and checkpoint as the run's best too (`best/`)."""
    path = out / weights.FILE
    weights.save(path, state, metadata)
    if best:
        checkpoint.copy_atomic(path, out / weights.BEST / weights.FILE)
        checkpoint.copy_atomic(out / runs.CHECKPOINT, out / weights.BEST / runs.CHECKPOINT)


def say(bar: Any, progress: bool, log: Any, message: str) -> None:
    """A line above the live progress bar, or through `log` when there is no bar."""
    if progress:
        bar.console.print(message, markup=False)
    else:
        log(message)


class _StopBetweenSteps:
    """Ctrl-C lets the current step finish (a checkpoint never holds a half-applied update) and
    stops the loop before the next one; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.pressed = 0
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.pressed += 1
        if self.pressed > 1:
            raise KeyboardInterrupt

    def __enter__(self) -> _StopBetweenSteps:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) when launched by torchrun, else (0, 1)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def local_rank() -> int:
    """This process's index on its machine under torchrun (its GPU), else 0."""
    import os
    return int(os.environ.get("LOCAL_RANK", 0))


def _progress(enabled: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}"),
                    TextColumn("{task.fields[rate]:.0f} ex/s"), TimeRemainingColumn(),
                    disable=not enabled, transient=False)
