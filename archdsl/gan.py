"""`archdsl train` for a `gan`: the adversarial game, its pictures, and a judge.

The losses are defined once here, on the discriminator's logits for real (`r`) and generated
(`f`) examples, each a mean over the batch (`sp` is softplus, `σ` the sigmoid):

| loss | discriminator minimises | generator minimises |
| --- | --- | --- |
| minimax | sp(-r) + sp(f) | -sp(f), i.e. log(1 - σ(f)) |
| nonsaturating | sp(-r) + sp(f) | sp(-f), i.e. -log σ(f) |
| hinge | relu(1 - r) + relu(1 + f) | -f |
| wasserstein | f - r, then weights clipped to [-clip, clip] | -f |
| lsgan | ((r - 1)² + f²) / 2 | (f - 1)² / 2 |

Each backend implements `GanTrainer` (`backends/<name>/gan.py`) with these formulas; the
loop below alternates `n_critic` discriminator steps with one generator step.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archdsl import api, checkpoint, memory, runs, weights
from archdsl import backends as registry
from archdsl.data import NUMPY_DTYPES, digits_images
from archdsl.graph import GanGraph, Graph, Optimizer
from archdsl.limits import Limits

GAN_DEFAULTS = {"batch": 64, "epochs": 20, "n_critic": 1, "clip": 0.01}
ADAM_GAN = Optimizer(name="Adam", args={"lr": 2e-4, "betas": [0.5, 0.999], "eps": 1e-8,
                                        "weight_decay": 0.0})


def d_loss(loss: str, r: np.ndarray, f: np.ndarray) -> float:
    """The discriminator's loss in float64 NumPy: the reference the backends are tested on."""
    r, f = r.astype(np.float64).ravel(), f.astype(np.float64).ravel()
    sp = np.logaddexp  # sp(x) = logaddexp(0, x)
    value = {"minimax": sp(0, -r).mean() + sp(0, f).mean(),
             "nonsaturating": sp(0, -r).mean() + sp(0, f).mean(),
             "hinge": np.maximum(1 - r, 0).mean() + np.maximum(1 + f, 0).mean(),
             "wasserstein": f.mean() - r.mean(),
             "lsgan": 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean()}[loss]
    return float(value)


def g_loss(loss: str, f: np.ndarray) -> float:
    f = f.astype(np.float64).ravel()
    value = {"minimax": -np.logaddexp(0, f).mean(), "nonsaturating": np.logaddexp(0, -f).mean(),
             "hinge": -f.mean(), "wasserstein": -f.mean(),
             "lsgan": 0.5 * ((f - 1) ** 2).mean()}[loss]
    return float(value)


@dataclass
class GanSettings:
    loss: str
    g_optimizer: Optimizer
    d_optimizer: Optimizer
    batch: int
    epochs: int
    n_critic: int
    clip: float
    seed: int
    latent: list[int] | None  # the latent's shape without the batch; None: `latent = false`
    device: str = "cpu"  # resolved by archdsl.devices
    precision: str = "fp32"


def resolve(gan: GanGraph, epochs: int | None = None, batch: int | None = None,
            lr: float | None = None, seed: int = 0) -> GanSettings:
    cfg = gan.train
    base = (cfg.optimizer if cfg and cfg.optimizer else None) or ADAM_GAN
    g_opt = (cfg.g_optimizer if cfg and cfg.g_optimizer else None) or base
    d_opt = (cfg.d_optimizer if cfg and cfg.d_optimizer else None) or base
    if lr is not None:
        g_opt = Optimizer(name=g_opt.name, args={**g_opt.args, "lr": lr})
        d_opt = Optimizer(name=d_opt.name, args={**d_opt.args, "lr": lr})
    z = gan.generator.nodes[gan.generator.inputs[0]].type
    latent = [int(d) for d in z.shape[1:]] if gan.latent else None
    return GanSettings(
        loss=gan.loss, g_optimizer=g_opt, d_optimizer=d_opt,
        batch=batch or (cfg.batch if cfg and cfg.batch else GAN_DEFAULTS["batch"]),
        epochs=epochs if epochs is not None else (cfg.epochs if cfg and cfg.epochs
                                                  else GAN_DEFAULTS["epochs"]),
        n_critic=(cfg.n_critic if cfg and cfg.n_critic else
                  (5 if gan.loss == "wasserstein" else 1)),
        clip=cfg.clip if cfg and cfg.clip else GAN_DEFAULTS["clip"], seed=seed, latent=latent)


def real_images(gan: GanGraph) -> np.ndarray:
    """The embedded digits at the generator's output size, scaled to [-1, 1] (tanh's range)."""
    out = gan.generator.nodes[gan.generator.outputs[0]].type
    if out.rank != 4 or out.shape[1] != 1:
        raise ValueError(f"the embedded digits are grey images [B, 1, H, W]; `{gan.name}` "
                         f"makes {out}")
    images, _ = digits_images(int(out.shape[2]), int(out.shape[3]))
    return (images[:, None] * 2 - 1).astype(np.float32)


def real_conditions(gan: GanGraph) -> list[np.ndarray]:
    """The conditions of the real digits, one array per condition of `gan`, row for row with
    `real_images`: the embedded digits have one, their class label, so each condition must be
    a label `[B]` of an integer type (LANGUAGE.md 10.4)."""
    conditions = []
    for name in gan.conditions:
        t = gan.generator.nodes[gan.generator.inputs[gan.generator.input_names.index(name)]].type
        if t.rank != 1 or t.dtype not in ("i32", "i64"):
            raise ValueError(f"the embedded digits give one condition, the class label "
                             f"(i64[B]); `{gan.name}` conditions on `{name}`: {t.dtype}{t}")
        out = gan.generator.nodes[gan.generator.outputs[0]].type
        _, labels = digits_images(int(out.shape[2]), int(out.shape[3]))
        conditions.append(labels.astype(NUMPY_DTYPES[t.dtype]))
    return conditions


@dataclass
class Draws:
    """What the generator is given: latents (None without one) and conditions resampled from
    the data's, from one generator of random numbers."""

    rng: np.random.Generator
    latent: list[int] | None
    conditions: list[np.ndarray]

    def latents(self, n: int) -> np.ndarray | None:
        if self.latent is None:
            return None
        return self.rng.normal(size=(n, *self.latent)).astype(np.float32)

    def resampled(self, n: int) -> list[np.ndarray]:
        if not self.conditions:
            return []
        rows = self.rng.integers(0, len(self.conditions[0]), n)
        return [c[rows] for c in self.conditions]

    def classes(self) -> int | None:
        """The class count when the condition is a single label: the largest + 1."""
        return int(self.conditions[0].max()) + 1 if len(self.conditions) == 1 else None

    def grid(self, columns: int = 8) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """The inputs of the sample grids: one row per class for a labelled gan (the same
        latents in each column), else 64 draws."""
        classes = self.classes()
        if classes is None:
            return self.latents(64), self.resampled(64)
        z = self.latents(columns)
        z = None if z is None else np.tile(z, (classes, *([1] * (z.ndim - 1))))
        labels = np.repeat(np.arange(classes), columns).astype(self.conditions[0].dtype)
        return z, [labels]

    def balanced(self, n: int) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """`n` draws for the judge, every class equally often for a labelled gan."""
        classes = self.classes()
        if classes is None:
            return self.latents(n), self.resampled(n)
        return self.latents(n), [(np.arange(n) % classes).astype(self.conditions[0].dtype)]


def save_grid(images: np.ndarray, path: Path, columns: int = 8) -> None:
    """Samples in [-1, 1], [N, 1, H, W], as one PNG grid."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(images)
    rows = math.ceil(n / columns)
    h, w = images.shape[2:]
    grid = np.ones((rows * (h + 2), columns * (w + 2)))
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = (img[0] + 1) / 2
    plt.imsave(path, np.clip(grid, 0, 1), cmap="gray", vmin=0, vmax=1)


def plot_losses(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot([h["epoch"] for h in history], [h["d_loss"] for h in history], marker="o",
            label="discriminator")
    ax.plot([h["epoch"] for h in history], [h["g_loss"] for h in history], marker="o",
            label="generator")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def make_trainer(backend: str, gan: GanGraph, settings: GanSettings) -> Any:
    module = registry.get(backend).part("gan")
    return module.GanTrainer(gan, settings)


@dataclass
class GanResult:
    history: list[dict[str, Any]]
    out: Path
    judge: dict[str, Any] | None
    stopped: str | None = None


def fit(gan: GanGraph, spec_text: str, backend: str, out: Path, epochs: int | None = None,
        batch: int | None = None, lr: float | None = None, seed: int = 0,
        resume: bool = False, max_steps: int | None = None, judge_samples: int = 1000,
        progress: bool = True, log: Any = print, overwrite: bool = False,
        limits: Limits | None = None, device: str | None = None,
        precision: str | None = None) -> GanResult:
    """Train `gan` into the run folder `out` (runs.py: refused if it holds another run,
    unless `resume` or `overwrite`), on `device` in `precision` (archdsl/devices.py; left as
    None, a resumed run keeps its own, a new one takes auto and fp32); a gan trains in one
    process."""
    from archdsl import devices
    from archdsl.train import _progress, distributed_rank, say
    if distributed_rank()[1] > 1:
        raise ValueError(f"`{gan.name}` is a gan: it trains in one process (drop --nproc)")
    settings = resolve(gan, epochs, batch, lr, seed)
    real = real_images(gan)
    conditions = real_conditions(gan)
    for side in (gan.generator, gan.discriminator):
        memory.check_model(side, limits or Limits(), "training")
    ckpt = out / runs.CHECKPOINT
    spec_hash = checkpoint.spec_hash(spec_text, gan.name, gan.params)
    recorded: dict[str, Any] = {}  # the device and precision of the run resumed
    if resume:  # checked before the (slow) build
        if not ckpt.exists():
            raise checkpoint.CheckpointError(f"--resume: no checkpoint in {out}")
        state, meta = checkpoint.load(ckpt)
        checkpoint.require(meta, ckpt, epoch=int, rng=dict, history=list)
        checkpoint.require_numbers(meta, ckpt, "history", ("epoch", "d_loss", "g_loss"))
        if meta.get("spec_hash") != spec_hash or meta.get("backend") != backend:
            raise checkpoint.CheckpointError(f"{ckpt} was written for another spec or backend")
        recorded = checkpoint.recorded_options(meta, ckpt)
    precision = precision or recorded.get("precision") or "fp32"
    settings.device, how = devices.resolve_run(backend, device, recorded.get("device"),
                                               precision, str(ckpt))
    settings.precision = precision
    if warning := devices.caution(settings.device, precision):
        log(f"warning: {warning}")
    runs.claim(out, resume, overwrite)
    checkpoint.remove_stale_temporaries(ckpt)
    trainer = make_trainer(backend, gan, settings)
    rng = np.random.default_rng(seed)
    draws = Draws(rng, settings.latent, conditions)
    fixed = Draws(np.random.default_rng(seed + 1), settings.latent, conditions).grid()
    history: list[dict[str, Any]] = []
    start = 0
    if resume:
        checkpoint.restore(trainer, state, ckpt)
        try:
            rng.bit_generator.state = meta["rng"]
        except (TypeError, ValueError, KeyError) as exc:
            raise checkpoint.CheckpointError(f"{ckpt}: its meta has no valid rng ({exc})"
                                             ) from None
        start, history = meta["epoch"], meta["history"]
        log(f"resuming {gan.name} after epoch {start}, on {settings.device}{how}")
    log(f"training {gan.name} ({settings.loss}) on {len(real)} real digits with {backend}: "
        f"{settings.epochs} epochs, batch {settings.batch}, {settings.n_critic} critic step(s) "
        f"per generator step, on {settings.device} in {precision}")
    steps = min(len(real) // settings.batch, max_steps or len(real))
    stopped = None
    bar = _progress(progress)
    with bar:
        task = bar.add_task(gan.name, total=steps * settings.epochs, completed=steps * start,
                            loss=float("nan"), rate=0.0)
        for epoch in range(start, settings.epochs):
            t0 = time.perf_counter()
            order = rng.permutation(len(real))
            d_losses, g_losses = [], []
            for i in range(steps):
                rows = order[i * settings.batch:(i + 1) * settings.batch]
                n = len(rows)
                d_losses.append(trainer.d_step(real[rows], draws.latents(n),
                                               [c[rows] for c in conditions],
                                               draws.resampled(n)))
                if (i + 1) % settings.n_critic == 0:
                    g_losses.append(trainer.g_step(draws.latents(n), draws.resampled(n)))
                if not (math.isfinite(d_losses[-1]) and all(map(math.isfinite, g_losses[-1:]))):
                    stopped = f"a non-finite loss at epoch {epoch + 1}, step {i + 1}"
                    break
                bar.update(task, advance=1, loss=d_losses[-1],
                           rate=(i + 1) * settings.batch / (time.perf_counter() - t0))
            if stopped:
                break
            row = {"epoch": epoch + 1, "d_loss": float(np.mean(d_losses)),
                   "g_loss": float(np.mean(g_losses)) if g_losses else float("nan"),
                   "seconds": round(time.perf_counter() - t0, 2)}
            history.append(row)
            save_grid(trainer.sample(*fixed), out / f"samples_epoch{epoch + 1:03d}.png")
            checkpoint.save(ckpt, trainer.state(), {
                "spec_hash": spec_hash, "backend": backend, "epoch": epoch + 1,
                "rng": rng.bit_generator.state, "history": history,
                "options": {"device": settings.device, "precision": precision}})
            weights.save(out / weights.FILE, {
                **{f"generator.{k}": v for k, v in api.state_dict(trainer.g).items()},
                **{f"discriminator.{k}": v for k, v in api.state_dict(trainer.d).items()}},
                {"model": gan.name, "spec_sha256": spec_hash, "backend": backend,
                 "epoch": str(epoch + 1)})
            say(bar, progress, log, f"epoch {epoch + 1}/{settings.epochs}: D loss "
                f"{row['d_loss']:.4f}, G loss {row['g_loss']:.4f} ({row['seconds']:.1f} s)")
    if history:
        save_grid(trainer.sample(*fixed), out / "samples.png")
        plot_losses(history, out / "losses.png")
        with open(out / "metrics.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(h) + "\n" for h in history)
    verdict = None
    if judge_samples and history and not stopped:
        z, given = Draws(np.random.default_rng(seed + 2), settings.latent,
                         conditions).balanced(judge_samples)
        samples = np.concatenate([
            trainer.sample(None if z is None else z[i:i + 250], [c[i:i + 250] for c in given])
            for i in range(0, judge_samples, 250)])
        verdict = judge(samples, log, labels=given[0] if len(given) == 1 else None)
        (out / "judge.json").write_text(json.dumps(verdict, indent=2))
    return GanResult(history, out, verdict, stopped)


# ---- the judge ----------------------------------------------------------------------------
def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "archdsl"


def trained_judge(seed: int = 0, log: Any = print) -> tuple[Graph, Any, float]:
    """The classifier of specs/cnn_digits.arch trained with torch on the real digits' training
    split, and its held-out accuracy, measured on every call. The trained weights are cached
    in `cache_dir()` under the spec's hash and the seed."""
    from importlib import resources

    from archdsl.api import load
    from archdsl.data import label_key, load_dataset
    from archdsl.train import evaluate
    from archdsl.train import fit as fit_classifier
    from archdsl.train import make_trainer as make_classifier
    from archdsl.train import resolve as resolve_classifier
    spec = resources.files("archdsl.specs").joinpath("cnn_digits.arch")
    text = spec.read_text(encoding="utf-8")
    g = load(str(spec)).graph()
    settings = resolve_classifier(g, seed=seed, label=label_key(g))
    spec_hash = checkpoint.spec_hash(text, g.name, g.params)
    folder = cache_dir() / f"judge-{spec_hash[:16]}-seed{seed}"
    trainer = None
    try:
        state, meta = checkpoint.load(folder / "checkpoint.npz")
        if (meta.get("spec_hash"), meta.get("epoch"), meta.get("step")) == \
                (spec_hash, settings.epochs, 0):
            trainer = make_classifier("torch", g, settings)
            trainer.load_state(state)
    except checkpoint.CheckpointError:
        pass  # none cached yet, or unreadable: train it again
    if trainer is None:
        log(f"training the judge ({spec.name}, cached in {folder})")
        trainer = fit_classifier(g, text, "torch", folder, data="digits", seed=seed,
                                 progress=False, log=lambda m: None, overwrite=True).trainer
    _, accuracy = evaluate(trainer, load_dataset("digits", g, seed=seed), settings)
    return g, trainer, accuracy


def judge(samples: np.ndarray, log: Any = print, seed: int = 0,
          labels: np.ndarray | None = None) -> dict[str, Any]:
    """Label generated digits (in [-1, 1]) with the classifier of specs/cnn_digits.arch (its
    held-out accuracy on the real digits must reach 95%); report the class histogram, the mean
    confidence (an Inception-score analogue) and the Fréchet distance between the judge's
    penultimate features of the samples and of the real digits it never trained on, beside
    two reference points: as many real digits it trained on, and uniform noise. Given the
    class `labels` the samples were generated for, also how often the judge reads that class."""
    from archdsl.data import digits_images, split_indices
    from archdsl.frechet import frechet_distance, logits_and_features
    g, classifier, accuracy = trained_judge(seed, log)
    if accuracy < 0.95:
        raise RuntimeError(f"the judge reached only {accuracy:.1%} held-out accuracy "
                           "on the real digits; its verdict would not be trustworthy")

    def seen_by_judge(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return logits_and_features(classifier, g, judge_input(g, images))

    logits, features = seen_by_judge(samples)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    read = p.argmax(axis=1)
    histogram = np.bincount(read, minlength=10).tolist()
    # the real digits at the samples' size, as the gan saw them; split as the judge's data
    real = digits_images(*samples.shape[2:])[0][:, None] * 2 - 1
    trained_on, held_out = split_indices(len(real), seed)
    reference = seen_by_judge(real[held_out])[1]
    noise = np.random.default_rng(seed).uniform(-1, 1, size=samples.shape).astype(np.float32)
    distances = {name: round(frechet_distance(f, reference), 3) for name, f in (
        ("frechet_distance", features),
        ("frechet_real", seen_by_judge(real[trained_on[:len(samples)]])[1]),
        ("frechet_noise", seen_by_judge(noise)[1]))}
    verdict = {"samples": len(samples), "judge_accuracy": round(accuracy, 4),
               "histogram": histogram, "classes_found": int(sum(c > 0 for c in histogram)),
               "mean_confidence": round(float(p.max(axis=1).mean()), 4), **distances,
               "frechet_reference_digits": len(held_out)}
    if labels is not None:
        verdict["condition_agreement"] = round(float((read == labels).mean()), 4)
    log(f"judge (held-out accuracy {verdict['judge_accuracy']:.1%}): "
        f"{verdict['classes_found']} of 10 digit classes, mean confidence "
        f"{verdict['mean_confidence']:.2f}, histogram {histogram}; Fréchet distance "
        f"{verdict['frechet_distance']:.2f} (real digits {verdict['frechet_real']:.2f}, "
        f"noise {verdict['frechet_noise']:.2f}; lower is closer to real digits)")
    if labels is not None:
        log(f"the judge reads the class each sample was generated for in "
            f"{verdict['condition_agreement']:.1%} of them")
    return verdict


def judge_input(g: Graph, images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] as the judge reads them: in [0, 1], resized to its input size and
    standardised like the real digits."""
    from archdsl.data import digits_standardize
    h, w = g.nodes[g.inputs[0]].type.shape[2:]
    return digits_standardize(resize_samples((images + 1) / 2, int(h), int(w)))


def resize_samples(images: np.ndarray, h: int, w: int) -> np.ndarray:
    from archdsl.data import resize_bilinear
    if images.shape[2:] == (h, w):
        return images.astype(np.float32)
    return resize_bilinear(images[:, 0].astype(np.float64), h, w)[:, None].astype(np.float32)
