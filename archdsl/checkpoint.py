"""Checkpoints you can trust: one `.npz` of plain arrays (never a pickle), written atomically.

A checkpoint holds `state/<name>` arrays (weights, optimizer state, RNG states: whatever the
backend's trainer returns) and a `meta` JSON document (epoch, step, spec hash, ...). It is
written to a temporary file in the same folder, flushed and fsynced, then renamed over the
old one, so a crash mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


class CheckpointError(ValueError):
    pass


def spec_hash(spec_text: str, name: str, params: dict[str, Any]) -> str:
    """What a run trains: the spec's text, the model chosen in it and the parameter values it
    was compiled with (`--set`); a checkpoint resumes only the run with the same hash."""
    identity = json.dumps({"spec": spec_text, "model": name, "params": params}, sort_keys=True,
                          default=str)
    return hashlib.sha256(identity.encode()).hexdigest()


def save(path: Path, state: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    arrays = {f"state/{k}": np.asarray(v) for k, v in state.items()}
    arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    for k, v in arrays.items():
        if v.dtype == object:
            raise CheckpointError(f"{k} is an object array; checkpoints hold plain arrays only")
    write_atomic(path, lambda f: np.savez(f, **arrays))


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """`write(f)` into a temporary file beside `path`, fsynced, then renamed over `path`: a
    crash mid-write leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def copy_atomic(source: Path, path: Path) -> None:
    """A copy of `source` at `path`, written as `write_atomic` writes."""
    with open(source, "rb") as src:
        write_atomic(path, lambda f: shutil.copyfileobj(src, f))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_UNREADABLE = (OSError, KeyError, ValueError, zipfile.BadZipFile, json.JSONDecodeError)


def meta(path: Path) -> dict[str, Any]:
    """The `meta` document alone, without reading the arrays."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return json.loads(f["meta"].tobytes().decode())
    except _UNREADABLE as exc:
        raise CheckpointError(f"{path} is not a readable archdsl checkpoint ({exc})") from None


def load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(f["meta"].tobytes().decode())
            state = {k[len("state/"):]: f[k] for k in f.files if k.startswith("state/")}
    except _UNREADABLE as exc:
        raise CheckpointError(f"{path} is not a readable archdsl checkpoint ({exc})") from None
    return state, meta
