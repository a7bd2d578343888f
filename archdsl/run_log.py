"""What a run logs: `metrics.jsonl` and `metrics.csv` (a row per epoch) and TensorBoard events.

The metric files are rewritten whole from the run's history (which the checkpoint keeps) after
every epoch, atomically, so a resumed run lists each epoch once whatever happened after its
checkpoint was written. TensorBoard gets every step's training loss and learning rate and
every epoch's metrics, at the number of optimizer steps done so far; a resumed run opens a new
event file that starts with a purge marker at its first step (PyTorch's
`SummaryWriter(purge_step=...)`), so TensorBoard drops what the interrupted run logged beyond
its checkpoint. Events are written with the `tensorboard` package's record writer and protocol
buffers: TensorFlow is never imported.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import time
from itertools import count
from pathlib import Path
from typing import Any

from archdsl.checkpoint import write_atomic

_FILES = count()
COLUMNS = ("epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds",
           "examples_per_s")
EPOCH_SCALARS = {"train_loss": "epoch/train_loss", "val_loss": "val/loss",
                 "val_accuracy": "val/accuracy"}


class TensorBoard:
    """An event file in `folder`: `scalars()` after each optimizer step, `epoch()` after each
    evaluation, `close()` at the end. `steps_done`: the optimizer steps a resumed run's
    checkpoint had taken (0 for a new run)."""

    def __init__(self, folder: Path, steps_done: int = 0):
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
        self._event = event_pb2.Event
        name = (f"events.out.tfevents.{time.time():017.6f}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_FILES)}")
        self._events = RecordWriter(open(folder / name, "wb"))
        self._write(self._event(wall_time=time.time(), file_version="brain.Event:2"))
        if steps_done:
            self._write(self._event(wall_time=time.time(), step=steps_done + 1,
                                    session_log=event_pb2.SessionLog(
                                        status=event_pb2.SessionLog.START)))

    def _write(self, event: Any) -> None:
        self._events.write(event.SerializeToString())

    def scalars(self, step: int, values: dict[str, float]) -> None:
        event = self._event(wall_time=time.time(), step=step)
        for tag, value in values.items():
            event.summary.value.add(tag=tag, simple_value=value)
        self._write(event)

    def epoch(self, step: int, row: dict[str, Any]) -> None:
        """An epoch's row of metrics (NaN accuracies of regression losses left out)."""
        self.scalars(step, {tag: row[k] for k, tag in EPOCH_SCALARS.items()
                            if row.get(k) is not None and row[k] == row[k]})
        self._events.flush()

    def close(self) -> None:
        self._events.close()


def write_metrics(folder: Path, history: list[dict[str, Any]]) -> None:
    """`metrics.jsonl` and `metrics.csv` with one row per epoch of `history`, columns in
    `COLUMNS` order (a checkpoint's JSON keeps its rows' keys sorted)."""
    columns = [*COLUMNS, *sorted({k for row in history for k in row} - set(COLUMNS))]
    rows = [{k: row[k] for k in columns if k in row} for row in history]
    write_atomic(folder / "metrics.jsonl", lambda f: f.write(
        "".join(json.dumps(row) + "\n" for row in rows).encode()))
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(folder / "metrics.csv", lambda f: f.write(text.getvalue().encode()))
