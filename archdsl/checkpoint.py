"""Checkpoints you can trust: one `.npz` of plain arrays (never a pickle), written atomically.

A checkpoint holds `state/<name>` arrays (weights, optimizer state, RNG states: whatever the
backend's trainer returns) and a `meta` JSON document (epoch, step, spec hash, ...). It is
written to a temporary file in the same folder, flushed and fsynced, then renamed over the
old one, so a crash mid-save leaves the previous checkpoint intact; the temporary file a
`kill -9` leaves is removed by the next run in that folder. Loading trusts nothing: sizes are
checked from the archive's headers first (archdsl/npz.py), `meta` must be a JSON object with
the fields the caller needs, and the state must fit the model it is loaded into.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from archdsl.npz import ArchiveError, read_npz


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


def meta(path: Path) -> dict[str, Any]:
    """The `meta` document of a checkpoint, checked as `load` checks it."""
    return load(path)[1]


def _temporaries(path: Path) -> list[Path]:
    return list(path.parent.glob(f".{path.name}.*.tmp"))


def remove_stale_temporaries(path: Path) -> None:
    """Temporary files of saves to `path` whose process is gone (killed mid-save)."""
    for tmp in _temporaries(path):
        pid = tmp.name[len(path.name) + 2:-len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    try:
        arrays = read_npz(path)
    except ArchiveError as exc:
        raise CheckpointError(f"{path} is not a readable archdsl checkpoint: {exc}") from None
    raw = arrays.pop("meta", None)
    if raw is None:
        raise CheckpointError(f"{path} is not an archdsl checkpoint: it has no `meta`")
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"it is {raw.dtype}{list(raw.shape)}, not JSON text")
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise CheckpointError(f"{path}: its `meta` is not a JSON document ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its `meta` is {json.dumps(meta)[:40]}, not a JSON "
                              "object")
    state = {k[len("state/"):]: v for k, v in arrays.items() if k.startswith("state/")}
    return state, meta


def require(meta: dict[str, Any], path: Path, **fields: type) -> None:
    """`meta` has each field with the type given (an int also at least 0)."""
    for key, kind in fields.items():
        v = meta.get(key)
        ok = isinstance(v, kind) and not (kind is not bool and isinstance(v, bool))
        if ok and kind is int:
            ok = v >= 0
        if not ok:
            raise CheckpointError(f"{path}: its meta has no valid `{key}` (a "
                                  f"{'non-negative ' if kind is int else ''}{kind.__name__} "
                                  f"is needed, found {json.dumps(v)[:60]})")


def restore(trainer: Any, state: dict[str, np.ndarray], path: Path) -> None:
    """Load `state` into a trainer after `check_state`; what the framework still rejects is a
    CheckpointError too."""
    check_state(state, trainer.state(), path)
    try:
        trainer.load_state(state)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise CheckpointError(f"{path} does not fit this model ({exc})") from None


# What a run records of its options, for `--resume` to take those it is not given again
_INT, _NUMBER, _TEXT, _OBJECT = ((int,), "an integer"), ((int, float), "a number"), \
    ((str,), "a string"), ((dict,), "an object")
OPTION_TYPES = {"data": _TEXT, "epochs": _INT, "batch": _INT, "lr": _NUMBER, "seed": _INT,
                "steps": _INT, "early_stop": _INT, "precision": _TEXT, "schedule": _OBJECT,
                "device": _TEXT}


def recorded_options(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """The options the run recorded (none in older runs), each of its type or null."""
    options = meta.get("options", {})
    if not isinstance(options, dict):
        raise CheckpointError(f"{path}: its meta's `options` should be an object, found "
                              f"{json.dumps(options)[:60]}")
    for key, v in options.items():
        if key not in OPTION_TYPES or v is None:
            continue
        kinds, name = OPTION_TYPES[key]
        if not isinstance(v, kinds) or isinstance(v, bool):
            raise CheckpointError(f"{path}: its meta's option `{key}` should be {name}, "
                                  f"found {json.dumps(v)[:60]}")
    return options


def require_numbers(meta: dict[str, Any], path: Path, key: str, row_keys: tuple[str, ...] = ()
                    ) -> None:
    """`meta[key]` is a list of numbers, or (with `row_keys`) of objects holding those keys as
    numbers, such as the history rows that metrics.jsonl and the plots are made from."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    for item in meta.get(key) or []:
        ok = all(isinstance(item, dict) and number(item.get(k)) for k in row_keys) \
            if row_keys else number(item)
        if not ok:
            want = f"rows of {', '.join(row_keys)}" if row_keys else "numbers"
            raise CheckpointError(f"{path}: its meta's `{key}` holds {json.dumps(item)[:60]}; "
                                  f"it should hold {want}")


def check_state(state: dict[str, np.ndarray], fresh: dict[str, np.ndarray], path: Path) -> None:
    """Every array a fresh trainer has is in `state` with its shape and dtype (a trainer may
    hold more after its first step, such as Adam's moments)."""
    missing = [k for k in fresh if k not in state]
    wrong = [f"{k} {state[k].dtype}{list(state[k].shape)} (the model has "
             f"{fresh[k].dtype}{list(fresh[k].shape)})" for k in fresh
             if k in state and (state[k].shape != fresh[k].shape or
                                state[k].dtype != fresh[k].dtype)]
    if missing or wrong:
        parts = ([f"missing {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")]
                 if missing else []) + wrong[:5]
        raise CheckpointError(f"{path} does not fit this model: {'; '.join(parts)}")
