"""Hostile data archives and checkpoints for the command-line corpus (corpus/cli), made at test
time: no binary file is committed, and a bomb never sits in the repository.

Each recipe writes one file at `path`; the case folder holds `mlp.arch` (`x: [B, 6]` to three
classes) or `emb.arch` (`tokens: i64[B, 8]` through `Embedding(12, 8)` to three classes).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

import archdsl
from archdsl import checkpoint
from archdsl.train import make_trainer, resolve

N = 20
X = np.random.default_rng(0).normal(size=(N, 6)).astype(np.float32)
Y = np.arange(N) % 3
TOKENS = np.random.default_rng(1).integers(0, 12, size=(N, 8))


def _npy(a: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, a)
    return out.getvalue()


def _header(shape: tuple[int, ...], dtype: str) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False,
                                               "shape": shape})
    return out.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _claim_4tb(path: Path) -> None:
    """An .npy header claiming 2**39 x 6 float32 (12 TB) over 16 bytes of data."""
    _zip(path, {"x.npy": _header((2**39, 6), "<f4") + bytes(16), "target.npy": _npy(Y)})


def _deflate_bomb(path: Path) -> None:
    """64 MB of zeros deflated to about 60 kB, shaped unlike the spec's input."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("x.npy", "w", force_zip64=True) as f:
            f.write(_header((2**23, 1), "<f8"))
            chunk = bytes(2**20)
            for _ in range(64):
                f.write(chunk)
        z.writestr("target.npy", _npy(Y))


def _npy_renamed(path: Path) -> None:
    path.write_bytes(_npy(X))


def _truncated(path: Path) -> None:
    out = io.BytesIO()
    np.savez(out, x=X, target=Y)
    path.write_bytes(out.getvalue()[: len(out.getvalue()) // 2])


def _object_array(path: Path) -> None:
    out = io.BytesIO()
    np.save(out, np.array([{"__reduce__": "os.system"}], dtype=object), allow_pickle=True)
    _zip(path, {"x.npy": out.getvalue(), "target.npy": _npy(Y)})


def _savez(**arrays: np.ndarray) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **arrays)


def _with_nan() -> np.ndarray:
    x = X.copy()
    x[3, 2] = np.nan
    return x


# ---- checkpoints: a valid one for the case's mlp.arch, then spoiled ------------------------
def valid_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """State and meta of a fresh numpy run of <folder>/mlp.arch, for <folder>/run/`path`."""
    spec = path.parent.parent / "mlp.arch"
    graph = archdsl.load(spec).graph()
    state = make_trainer("numpy", graph, resolve(graph)).state()
    row = {"epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "val_accuracy": 0.5, "seconds": 0.1,
           "examples_per_s": 100.0}
    meta = {"spec_hash": checkpoint.spec_hash(spec.read_text(encoding="utf-8"), graph.name,
                                              graph.params),
            "backend": "numpy", "epoch": 1, "step": 0, "model": graph.name, "dataset": "data.npz",
            "shuffle_state": np.random.default_rng(0).bit_generator.state, "history": [row],
            "epoch_losses": []}
    return state, meta


def _checkpoint(spoil: Callable[[dict[str, np.ndarray], dict], dict[str, np.ndarray]]
                ) -> Callable[[Path], None]:
    """A checkpoint written as `checkpoint.save` writes it, with its arrays spoiled."""
    def make(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        state, meta = valid_checkpoint(path)
        arrays = {f"state/{k}": v for k, v in state.items()}
        arrays["meta"] = _json(meta)
        np.savez(path, **spoil(arrays, meta))
    return make


def _json(value: object) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)


def _first_weight(arrays: dict[str, np.ndarray]) -> str:
    return next(k for k in arrays if k.startswith("state/model/"))


def _truncated_checkpoint(path: Path) -> None:
    _checkpoint(lambda a, m: a)(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 200])


RECIPES: dict[str, Callable[[Path], None]] = {
    "ok": _savez(x=X, target=Y),
    "claim_4tb": _claim_4tb,
    "deflate_bomb": _deflate_bomb,
    "npy_renamed": _npy_renamed,
    "empty_file": lambda path: path.write_bytes(b""),
    "truncated_zip": _truncated,
    "object_array": _object_array,
    "extra_member": lambda path: _zip(path, {"x.npy": _npy(X), "target.npy": _npy(Y),
                                             "notes.txt": b"not an array"}),
    "labels_out_of_range": _savez(x=X, target=Y + 5),
    "negative_labels": _savez(x=X, target=-Y),
    "float_labels": _savez(x=X, target=Y.astype(np.float64)),
    "bool_labels": _savez(x=X, target=Y > 0),
    "string_labels": _savez(x=X, target=np.array(["cat", "dog"] * (N // 2))),
    "zero_d_target": _savez(x=X, target=np.array(2)),
    "no_examples": _savez(x=X[:0], target=Y[:0]),
    "one_example": _savez(x=X[:1], target=Y[:1]),
    "count_mismatch": _savez(x=X, target=Y[:-1]),
    "nan_inputs": _savez(x=_with_nan(), target=Y),
    "int_inputs": _savez(x=(X * 10).astype(np.int64), target=Y),
    "bad_test_split": _savez(x=X, target=Y, test_x=X[:, :3], test_target=Y),
    "test_labels_out_of_range": _savez(x=X, target=Y, test_x=X, test_target=Y + 3),
    "partial_test_split": _savez(x=X, target=Y, test_x=X),
    "token_ids_out_of_range": _savez(tokens=TOKENS + 5, target=Y),
    "negative_token_ids": _savez(tokens=TOKENS - 3, target=Y),
    "ckpt_no_meta": _checkpoint(lambda a, m: {k: v for k, v in a.items() if k != "meta"}),
    "ckpt_list_meta": _checkpoint(lambda a, m: {**a, "meta": _json([1, 2])}),
    "ckpt_null_meta": _checkpoint(lambda a, m: {**a, "meta": _json(None)}),
    "ckpt_bad_json": _checkpoint(lambda a, m: {**a, "meta": np.frombuffer(b"{no", np.uint8)}),
    "ckpt_float_meta": _checkpoint(lambda a, m: {**a, "meta": np.zeros(3)}),
    "ckpt_no_epoch": _checkpoint(lambda a, m: {**a, "meta": _json(
        {k: v for k, v in m.items() if k != "epoch"})}),
    "ckpt_negative_step": _checkpoint(lambda a, m: {**a, "meta": _json({**m, "step": -3})}),
    "ckpt_bad_shuffle": _checkpoint(lambda a, m: {**a, "meta": _json(
        {**m, "shuffle_state": {"bit_generator": "MT19937"}})}),
    "ckpt_bad_history": _checkpoint(lambda a, m: {**a, "meta": _json(
        {**m, "history": [{"epoch": "one"}]})}),
    "ckpt_list_options": _checkpoint(lambda a, m: {**a, "meta": _json({**m, "options": [1]})}),
    "ckpt_bad_option": _checkpoint(lambda a, m: {**a, "meta": _json(
        {**m, "options": {"epochs": "many", "device": "cpu"}})}),
    "ckpt_missing_weight": _checkpoint(
        lambda a, m: {k: v for k, v in a.items() if k != _first_weight(a)}),
    "ckpt_wrong_shape": _checkpoint(
        lambda a, m: {**a, _first_weight(a): np.zeros((2, 2), np.float32)}),
    "ckpt_truncated": _truncated_checkpoint,
}
