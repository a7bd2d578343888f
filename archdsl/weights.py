"""Trained weights in the ecosystem's format: `model.safetensors`, PyTorch's names and layouts.

Every run writes the weights of its last epoch to `model.safetensors` and those of its best
epoch to `best/model.safetensors`: the canonical state dict (the keys `graph.parameters()`
and a built model's `state_dict()` give), which PyTorch loads as it is and every backend loads
through `archdsl.load_state_dict`. safetensors holds raw arrays and a JSON header, so reading
weights never unpickles anything.

    import safetensors.torch
    model = archdsl.build("specs/cnn_digits.arch", "torch")
    model.load_state_dict(safetensors.torch.load_file(".../best/model.safetensors"))

    model = archdsl.build("specs/cnn_digits.arch", "numpy")       # or "tensorflow"
    archdsl.load_state_dict(model, archdsl.weights.load(".../best/model.safetensors"))

`load` also takes a run folder (its best weights), an `.npz` of one array per key, or a
training checkpoint (its model's weights), wherever a command takes `--weights`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from archdsl import checkpoint
from archdsl.checkpoint import write_atomic

FILE = "model.safetensors"
BEST = "best"  # the folder of a run's best epoch


class WeightsError(ValueError):
    pass


def save(path: Path, state: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write `state` atomically; `metadata` lands in the header (`"format": "pt"` added, as
    Hugging Face's loaders expect of PyTorch weights)."""
    from safetensors.numpy import save as to_bytes
    data = to_bytes({k: np.asarray(v, order="C") for k, v in state.items()},
                    metadata={"format": "pt", **metadata})
    write_atomic(path, lambda f: f.write(data))


def load(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a weights file, or of a run folder's best weights (`locate`)."""
    file = locate(Path(path))
    if file.suffix == ".npz":
        return _npz(file)
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError:
        raise WeightsError("reading .safetensors needs the safetensors package: "
                           "pip install 'archdsl[train]'") from None
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{file} is not a readable safetensors file ({exc})") from None


def metadata(path: str | Path) -> dict[str, str]:
    """The header's metadata (model, spec hash, epoch, held-out metrics of a run's weights)."""
    from safetensors import SafetensorError, safe_open
    file = locate(Path(path))
    try:
        with safe_open(str(file), framework="numpy") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{file} is not a readable safetensors file ({exc})") from None


def locate(path: Path) -> Path:
    """A weights file as given, or for a run folder its best weights (its last without a
    best, as in a gan's run)."""
    if path.is_dir():
        for candidate in (path / BEST / FILE, path / FILE):
            if candidate.is_file():
                return candidate
        raise WeightsError(f"{path} holds no {FILE} (a run writes {BEST}/{FILE} and {FILE} "
                           "after its first epoch)")
    if not path.is_file():
        raise WeightsError(f"no weights file at {path}")
    if path.suffix not in (".safetensors", ".npz"):
        raise WeightsError(f"{path}: weights are a .safetensors or an .npz file, or a run "
                           "folder")
    return path


def _npz(path: Path) -> dict[str, np.ndarray]:
    """One array per key, or a checkpoint of `archdsl train` (its model's weights)."""
    if not zipfile.is_zipfile(path):  # NumPy would try it as a pickle, and say so
        raise WeightsError(f"{path} is not an .npz archive")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not ("meta" in f.files and any(n.startswith("state/") for n in f.files)):
                return {name: f[name] for name in f.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{path} is not a readable .npz file ({exc})") from None
    state, _ = checkpoint.load(path)
    return {k[len("model/"):]: v for k, v in state.items() if k.startswith("model/")}
