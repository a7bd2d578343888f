"""`archdsl predict`: a trained model's outputs on data, printed or saved (docs/inference.md).

The weights are a `model.safetensors` (a run folder means its best weights), loaded into the
spec's build in any backend; the data are an .npz with arrays named after the spec's inputs,
every example in the file's order (labels optional: with them the accuracy is reported), or an
embedded dataset, of which the split `train` held out with the same `--seed` is predicted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archdsl.data import EMBEDDED, DataError, default_dataset, load_dataset, load_inputs
from archdsl.graph import Graph
from archdsl.weights import WeightsError


@dataclass
class Predictions:
    outputs: dict[str, np.ndarray]  # every output of the model by name, examples in order
    loss: str  # the spec's loss: how the first output reads (logits, a value)
    labels: np.ndarray | None = None

    @property
    def first(self) -> np.ndarray:
        return next(iter(self.outputs.values()))

    def predicted(self) -> np.ndarray | None:
        """Classes (cross entropy: the largest logit; binary: a positive logit), else None."""
        if self.loss == "cross_entropy":
            return self.first.argmax(axis=-1)
        if self.loss == "bce_with_logits":
            return (self.first > 0).astype(np.int64)
        return None

    def confidence(self) -> np.ndarray | None:
        """The probability of the predicted class when there is one per example."""
        if self.loss == "cross_entropy" and self.first.ndim == 2:
            z = self.first.astype(np.float64)
            p = np.exp(z - z.max(axis=1, keepdims=True))
            return (p / p.sum(axis=1, keepdims=True)).max(axis=1)
        if self.loss == "bce_with_logits" and self.first.size == len(self.first):
            p = 1 / (1 + np.exp(-self.first.astype(np.float64).reshape(-1)))
            return np.maximum(p, 1 - p)
        return None

    def accuracy(self) -> float | None:
        predicted = self.predicted()
        if predicted is None or self.labels is None:
            return None
        return float((predicted.reshape(-1) == self.labels.reshape(-1)).mean())

    def table(self) -> tuple[list[str], list[list[str]]]:
        """One row per example, as printed and as written to CSV."""
        n = len(self.first)
        columns: dict[str, list[str]] = {"index": [str(i) for i in range(n)]}
        predicted, confidence = self.predicted(), self.confidence()
        if predicted is not None:
            columns["predicted"] = [_cell(p) for p in predicted.reshape(n, -1)]
            if confidence is not None:
                columns["confidence"] = [f"{c:.4f}" for c in confidence]
        elif self.first.ndim <= 2:
            name = next(iter(self.outputs))
            values = self.first.reshape(n, -1)
            for j in range(values.shape[1]):
                columns[name if values.shape[1] == 1 else f"{name}_{j}"] = \
                    [f"{v:.6g}" for v in values[:, j]]
        else:
            raise ValueError(f"the output is {list(self.first.shape[1:])} per example: save it "
                             "with -o FILE.npz")
        if self.labels is not None:
            columns["target"] = [_cell(t) for t in self.labels.reshape(n, -1)]
        return list(columns), [list(r) for r in zip(*columns.values(), strict=True)]

    def arrays(self) -> dict[str, np.ndarray]:
        """What `-o FILE.npz` holds: every output by name, and `predicted` classes."""
        predicted = self.predicted()
        return {**self.outputs, **({"predicted": predicted} if predicted is not None else {})}


def _cell(values: np.ndarray) -> str:
    return " ".join(str(int(v)) for v in values.reshape(-1))


def load_data(graph: Graph, data: str | None, seed: int = 0, seq_len: int = 32
              ) -> tuple[list[np.ndarray], np.ndarray | None, str]:
    """(inputs in the model's order, labels or None, a description) for `--data`."""
    name = data or (graph.train.data if graph.train and graph.train.data else None) \
        or default_dataset(graph)
    if name in EMBEDDED:
        dataset = load_dataset(name, graph, seed=seed, seq_len=seq_len)
        test = dataset.test
        return ([test[n] for n in graph.input_names], test[dataset.label],
                f"the held-out split of {name} (seed {seed})")
    path = Path(name)
    if path.suffix != ".npz" or not path.is_file():
        raise DataError(f"--data is one of {', '.join(EMBEDDED)} or an existing .npz file, "
                        f"not {name!r}")
    inputs, labels = load_inputs(path, graph)
    return inputs, labels, str(path)


def predict(graph: Graph, backend: str, state: dict[str, np.ndarray],
            inputs: list[np.ndarray], batch: int = 256,
            advance: Callable[[int], Any] = lambda n: None) -> dict[str, np.ndarray]:
    """Every output of `graph` built in `backend` with `state` loaded, in evaluation mode, in
    batches of `batch` examples; `advance(n)` after each. WeightsError when `state` does not
    fit the graph."""
    from archdsl.verify import harness
    h = harness(backend, graph)
    try:
        h.load(state)
    except ValueError as exc:
        raise WeightsError(str(exc)) from None
    parts: list[list[np.ndarray]] = []
    for start in range(0, len(inputs[0]), batch):
        parts.append(h.forward([x[start:start + batch] for x in inputs], train=False))
        advance(len(parts[-1][0]))
    return {name: np.concatenate([np.asarray(p[i]) for p in parts])
            for i, name in enumerate(graph.output_names)}


def write(predictions: Predictions, path: Path) -> None:
    """`-o`: an .npz of arrays or a .csv of the printed table, written atomically."""
    from archdsl.checkpoint import write_atomic
    if path.suffix == ".npz":
        arrays = predictions.arrays()
        write_atomic(path, lambda f: np.savez(f, **arrays))
        return
    header, rows = predictions.table()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_atomic(path, lambda f: f.write(text.getvalue().encode()))


def render(predictions: Predictions) -> str:
    """The table for the terminal: columns aligned, one line per example."""
    header, rows = predictions.table()
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [header, *rows])
