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

`load` also takes a run folder (its best weights) or an `.npz` of one array per key,
wherever a command takes `--weights`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from archdsl.checkpoint import write_atomic
from archdsl.npz import ArchiveError, read_npz

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
    file = locate(Path(path))
    if file.suffix == ".npz":  # an archive of arrays or a checkpoint: no header to read
        return {}
    from safetensors import SafetensorError, safe_open
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
    """One array per key. A checkpoint of `archdsl train` is refused: it holds a backend's
    whole training state in that backend's layout; its run's weights are beside it."""
    try:
        arrays = read_npz(path)
    except ArchiveError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    if "meta" in arrays and any(n.startswith("state/") for n in arrays):
        raise WeightsError(f"{path} is a training checkpoint (for --resume); the weights are "
                           f"in {path.parent / BEST / FILE} (best) and {path.parent / FILE} "
                           "(last)")
    return arrays
