"""Run folders: each `archdsl train` writes into a folder of its own, never over another run.

Without `--out`, a run gets `runs/<spec>/<YYYY-MM-DD_HH-MM-SS>` (`<spec>` the file's name
without `.arch`), and `--resume` alone continues the newest run of that spec. A folder that
already holds a run is refused unless `--resume` continues it or `--overwrite` replaces it;
`--overwrite` removes only what a run writes (`RUN_FILES`), never other files in the folder.
"""

from __future__ import annotations

import shutil
import time
from itertools import count
from pathlib import Path

from archdsl import checkpoint

ROOT = Path("runs")
CHECKPOINT = "checkpoint.npz"
# What train.py and gan.py write into a run folder.
RUN_FILES = (CHECKPOINT, "model.safetensors", "best", "metrics.jsonl", "metrics.csv",
             "curves.png", "losses.png", "samples.png", "samples_epoch*.png", "judge.json",
             "events.out.tfevents.*")


class RunError(ValueError):
    pass


def new_folder(spec: Path, root: Path = ROOT) -> Path:
    """A fresh `root/<spec>/<local time>` folder, created; `-2`, `-3`, ... for runs started
    within the same second."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    for n in count(1):
        folder = root / spec.stem / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def latest(spec: Path, root: Path = ROOT) -> Path:
    """The run of `spec` under `root` whose checkpoint was written last."""
    folder = root / spec.stem
    found = list(folder.glob(f"*/{CHECKPOINT}"))
    if not found:
        raise RunError(f"--resume: no run of {spec.name} in {folder}; give the run's folder "
                       "with --out")
    return max(found, key=lambda p: p.stat().st_mtime).parent


def holds_run(folder: Path) -> bool:
    return (folder / CHECKPOINT).exists() or (folder / "metrics.jsonl").exists()


def claim(folder: Path, resume: bool = False, overwrite: bool = False) -> None:
    """Make `folder` this run's: one holding another run is refused unless `resume` continues
    it or `overwrite` replaces it."""
    if resume and overwrite:
        raise RunError("--resume continues the run in the folder and --overwrite replaces it; "
                       "choose one")
    if resume:
        return
    if folder.exists() and not folder.is_dir():
        raise RunError(f"{folder} is a file, not a folder for the run")
    if holds_run(folder):
        if not overwrite:
            raise RunError(f"{folder} already holds a run ({describe(folder)}); continue it "
                           "with --resume, replace it with --overwrite, or choose another "
                           "--out")
        for pattern in RUN_FILES:
            for path in folder.glob(pattern):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def describe(folder: Path) -> str:
    """`epoch 10 of 10, best held-out accuracy 98.33% at epoch 7`, from the checkpoint."""
    try:
        meta = checkpoint.meta(folder / CHECKPOINT)
    except checkpoint.CheckpointError:
        return "metrics but no readable checkpoint"
    text = f"{meta.get('model', 'a model')} after epoch {meta.get('epoch', '?')}"
    best = meta.get("best")
    if best and best.get("accuracy") is not None:
        text += f", best held-out accuracy {best['accuracy']:.2%} at epoch {best['epoch']}"
    elif best:
        text += f", best held-out loss {best['loss']:.4f} at epoch {best['epoch']}"
    return text
