"""Weight files given on the command line (`archdsl compile --backend onnx --weights FILE`).

A weight file holds a state dict in PyTorch's keys and layouts, as `archdsl.state_dict`
returns it: a `.safetensors` file (read with `safetensors.numpy`, never a pickle), an `.npz`
of one array per key, or a checkpoint `archdsl train` wrote (its model's weights are taken).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from archdsl import checkpoint


class WeightsError(ValueError):
    pass


def read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        return _safetensors(path)
    if path.suffix == ".npz":
        return _npz(path)
    raise WeightsError(f"{path}: weights are a .safetensors or an .npz file")


def _safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise WeightsError("reading .safetensors needs the safetensors package: "
                           "pip install 'archdsl[train]'") from None
    try:
        return load_file(path)
    except Exception as exc:  # safetensors reports a bad file with its own exception types
        raise WeightsError(f"{path} is not a readable .safetensors file ({exc})") from None


def _npz(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):  # NumPy would try it as a pickle, and say so
        raise WeightsError(f"{path} is not an .npz archive")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not ("meta" in f.files and any(n.startswith("state/") for n in f.files)):
                return {name: f[name] for name in f.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{path} is not a readable .npz file ({exc})") from None
    state, _ = checkpoint.load(path)  # a checkpoint of `archdsl train`: its model's weights
    return {k[len("model/"):]: v for k, v in state.items() if k.startswith("model/")}
