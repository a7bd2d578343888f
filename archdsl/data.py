"""Training data that needs no download: embedded datasets, synthetic tasks, user `.npz` files.

A `Dataset` holds arrays named after the model's inputs plus `target`, already split into a
training and a held-out part. Which embedded dataset fits a spec is decided from its inputs
and outputs (`default_dataset`); `--data NAME|PATH` or the spec's `train { data = ... }`
override it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from archdsl.graph import FLOAT_DTYPES, Graph
from archdsl.npz import Archive, ArchiveError, Header, read_npz
from archdsl.symbolic import Sym, format_shape

NUMPY_DTYPES = {"f16": np.float16, "bf16": np.float32, "f32": np.float32, "f64": np.float64,
                "i32": np.int32, "i64": np.int64, "bool": np.bool_}
EMBEDDED = ("digits", "chars", "copy", "reverse", "sort", "first")


class DataError(ValueError):
    """Data that does not fit the spec; the message says what and how to fix it."""


def label_key(graph: Graph) -> str:
    """The labels' array name: `target`, or `labels` when an input is itself named target."""
    return "labels" if "target" in graph.input_names else "target"


@dataclass
class Dataset:
    """Arrays named after the model's inputs, in their order, then the labels (`label`)."""

    name: str
    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    task: str  # "classify" (labels [N]) or "sequence" (labels [N, T])
    label: str = "target"
    description: str = ""

    def __len__(self) -> int:
        return len(self.train[self.label])

    def xy(self, split: str) -> tuple[np.ndarray | tuple[np.ndarray, ...], np.ndarray]:
        """(inputs, labels) of `split` ("train" or "test") as Keras's `fit` takes them: the
        input array, or a tuple of them in the model's input order."""
        data = self.train if split == "train" else self.test
        inputs = tuple(v for k, v in data.items() if k != self.label)
        return (inputs[0] if len(inputs) == 1 else inputs), data[self.label]

    def batches(self, split: str, batch: int, rng: np.random.Generator | None = None,
                shard: tuple[int, int] = (0, 1)):
        """Minibatches of `split`, shuffled when `rng` is given; `shard=(rank, world)` takes
        every world-th example of each global batch, so shards add up to the global batch."""
        data = self.train if split == "train" else self.test
        n = len(data[self.label])
        order = rng.permutation(n) if rng is not None else np.arange(n)
        rank, world = shard
        # Training drops a last partial batch so every step sees the same batch size.
        stop = max(n - batch + 1, 1) if split == "train" else n
        for start in range(0, stop, batch):
            idx = order[start:start + batch][rank::world]
            yield {k: v[idx] for k, v in data.items()}


def _input_shapes(graph: Graph, bind: dict[str, int]) -> list[tuple[str, str, list[int]]]:
    out = []
    for name, node_id in zip(graph.input_names, graph.inputs, strict=True):
        t = graph.nodes[node_id].type
        dims = []
        for d in t.shape:
            if isinstance(d, Sym):
                dims.append(d.substitute(bind))
            else:
                dims.append(d)
        out.append((name, t.dtype, dims))
    return out


def default_dataset(graph: Graph) -> str:
    """The embedded dataset that fits the spec's inputs and outputs."""
    ins = [graph.nodes[i].type for i in graph.inputs]
    out = graph.nodes[graph.outputs[0]].type
    if len(ins) == 1 and ins[0].dtype in FLOAT_DTYPES and ins[0].rank == 4:
        return "digits"
    if all(t.dtype in ("i32", "i64") for t in ins):
        if len(ins) == 2 and out.rank == 3:
            return "reverse"
        if len(ins) == 1 and out.rank == 3:
            return "chars"
        if len(ins) == 1 and out.rank == 2:
            return "first"
    raise DataError(f"no embedded dataset fits `{graph.name}`: give one with --data PATH.npz "
                    f"(arrays named {', '.join(graph.input_names)} and target)")


def load_dataset(name_or_path: str, graph: Graph, seed: int = 0, seq_len: int = 32,
                 size: int = 4096) -> Dataset:
    if name_or_path in EMBEDDED:
        return _embedded(name_or_path, graph, seed, seq_len, size)
    path = Path(name_or_path)
    if path.suffix != ".npz" or not path.exists():
        raise DataError(f"--data is one of {', '.join(EMBEDDED)} or an existing .npz file, "
                        f"not {name_or_path!r}")
    return load_npz(path, graph, seed)


# ---- embedded datasets --------------------------------------------------------------------
def _split(arrays: dict[str, np.ndarray], seed: int, test_fraction: float = 0.2
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    n = len(next(iter(arrays.values())))
    order = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * (1 - test_fraction)))
    return ({k: v[order[:cut]] for k, v in arrays.items()},
            {k: v[order[cut:]] for k, v in arrays.items()})


def resize_bilinear(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """[N, H, W] -> [N, height, width] with half-pixel centres (PyTorch align_corners=False)."""
    n, h, w = images.shape

    def axis(out: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(out) + 0.5) * size / out - 0.5, 0, size - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, size - 1)
        return lo, hi, pos - lo

    y0, y1, fy = axis(height, h)
    x0, x1, fx = axis(width, w)
    top = images[:, y0][:, :, x0] * (1 - fx) + images[:, y0][:, :, x1] * fx
    bottom = images[:, y1][:, :, x0] * (1 - fx) + images[:, y1][:, :, x1] * fx
    return top * (1 - fy)[None, :, None] + bottom * fy[None, :, None]


@cache
def digits_images(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 real 8x8 handwritten digits (shipped inside the package), scaled
    to [0, 1] and resized to the spec's size."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - part of the `train` extra
        raise DataError("the digits dataset needs scikit-learn: pip install "
                        "'archdsl[train]'") from exc
    d = load_digits()
    images = resize_bilinear(d.images.astype(np.float64) / 16.0, height, width)
    out = images.astype(np.float32), d.target.astype(np.int64)
    for a in out:
        a.flags.writeable = False  # cached: shared by every caller
    return out


def digits_standardize(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1], [N, 1, H, W] or [N, H, W], standardised with the mean and spread of
    the real digits at that size: what classifiers trained here see, and so anything judged
    by one."""
    real, _ = digits_images(*images.shape[-2:])
    return ((images - real.mean()) / real.std()).astype(np.float32)


def longest_sequence(graph: Graph) -> int | None:
    """The longest sequence the model takes: the smallest `max_len` of its position tables."""
    limits = [n.args["max_len"] for n in graph.nodes if isinstance(n.args.get("max_len"), int)]
    return min(limits, default=None)


def _embedded(name: str, graph: Graph, seed: int, seq_len: int, size: int) -> Dataset:
    key = label_key(graph)
    seq_len = min(seq_len, longest_sequence(graph) or seq_len)
    shapes = _input_shapes(graph, {"T": seq_len, "S": seq_len, "B": 1})
    out = graph.nodes[graph.outputs[0]].type
    if name == "digits":
        (iname, dtype, dims), = shapes if len(shapes) == 1 else [(None, None, None)]
        if iname is None or len(dims) != 4 or dims[1] not in (1, 3) or \
                dtype not in FLOAT_DTYPES:
            raise DataError(f"digits are images [B, 1 or 3, H, W]; `{graph.name}` takes "
                            + ", ".join(f"{n}: {t}{d}" for n, t, d in shapes))
        channels, height, width = (int(d) for d in dims[1:])
        images, labels = digits_images(height, width)
        images = digits_standardize(images)
        classes = out.shape[-1]
        if isinstance(classes, int) and classes < 10:
            raise DataError(f"digits have 10 classes; `{graph.name}` outputs {classes}")
        # colour models see the grey digits in every channel
        images = np.repeat(images[:, None], channels, axis=1)
        train, test = _split({iname: images, key: labels}, seed)
        return Dataset("digits", train, test, "classify", key,
                       f"{len(labels)} real 8x8 handwritten digits (scikit-learn) resized to "
                       f"{height}x{width}" + (", grey in 3 channels" if channels == 3 else ""))
    vocab = out.shape[-1]
    if not isinstance(vocab, int):
        raise DataError(f"`{graph.name}` has a symbolic output width")
    if name == "chars":
        text = corpus()
        chars = sorted(set(text))
        if len(chars) > vocab:
            raise DataError(f"the character corpus has {len(chars)} symbols; `{graph.name}` "
                            f"predicts {vocab}")
        ids = np.array([chars.index(c) for c in text], dtype=np.int64)
        (iname, _, _), = shapes
        rng = np.random.default_rng(seed)
        starts = rng.integers(0, len(ids) - seq_len - 1, size=size)
        x = np.stack([ids[s:s + seq_len] for s in starts])
        y = np.stack([ids[s + 1:s + seq_len + 1] for s in starts])
        train, test = _split({iname: x, key: y}, seed)
        return Dataset("chars", train, test, "sequence", key,
                       f"{len(text):,} characters of public-domain English text")
    rng = np.random.default_rng(seed)
    n_tokens = min(vocab, 16)
    if name == "first":
        (iname, _, _), = shapes
        x = rng.integers(0, n_tokens, size=(size, seq_len)).astype(np.int64)
        train, test = _split({iname: x, key: x[:, 0] % vocab}, seed)
        return Dataset("first", train, test, "classify", key,
                       "synthetic: recall the first token of the sequence")
    if name in ("copy", "reverse", "sort"):
        if len(shapes) != 2:
            raise DataError(f"`{name}` is a sequence-to-sequence task: the model takes "
                            "(source, target) token sequences")
        (src_name, _, _), (tgt_name, _, _) = shapes
        # token 0 starts the decoder input; data tokens are 1..n_tokens-1
        src = rng.integers(1, n_tokens, size=(size, seq_len)).astype(np.int64)
        goal = {"copy": src, "reverse": src[:, ::-1],
                "sort": np.sort(src, axis=1)}[name].copy()
        dec_in = np.concatenate([np.zeros((size, 1), np.int64), goal[:, :-1]], axis=1)
        train, test = _split({src_name: src, tgt_name: dec_in, key: goal}, seed)
        return Dataset(name, train, test, "sequence", key,
                       f"synthetic: {name} a sequence of {seq_len} tokens (teacher forcing)")
    raise DataError(f"unknown dataset {name!r}")  # pragma: no cover


def corpus() -> str:
    return resources.files("archdsl").joinpath("corpus.txt").read_text(encoding="utf-8")


# ---- user data ----------------------------------------------------------------------------
def load_npz(path: Path, graph: Graph, seed: int) -> Dataset:
    """An .npz whose arrays are named after the spec's inputs plus `target` (`labels` when an
    input is named target), optionally with `test_<name>` arrays for a fixed held-out split.
    Names, dtypes, shapes and example counts are checked from the archive's headers before any
    array is read (archdsl/npz.py; nothing is unpickled), then the values: finite numbers,
    token ids inside their embedding table."""
    try:
        with Archive(path) as archive:
            heads = archive.headers
            key = label_key(graph)
            wanted = [*graph.input_names, key]
            missing = [n for n in wanted if n not in heads]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)}; the spec's "
                                f"inputs are {', '.join(graph.input_names)}, plus `{key}`. "
                                f"Found: {', '.join(sorted(heads)) or 'nothing'}")
            given_test = sorted(k for k in heads if k.startswith("test_"))
            missing_test = [f"test_{k}" for k in wanted if f"test_{k}" not in heads]
            if given_test and missing_test:
                raise DataError(f"{path}: has {', '.join(given_test)} but not "
                                f"{', '.join(missing_test)}: give a test_ array for every input "
                                "and the labels, or none (then a fifth of the examples is held "
                                "out)")
            prefixes = ["", "test_"] if given_test else [""]
            for prefix in prefixes:
                _check_headers(path, heads, prefix, graph, key)
            arrays = archive.read([prefix + k for prefix in prefixes for k in wanted])
    except ArchiveError as exc:
        raise DataError(f"{path}: {exc}") from None
    train = _checked(path, arrays, "", graph, key)
    if given_test:
        test = _checked(path, arrays, "test_", graph, key)
    else:
        if len(train[key]) < 2:
            raise DataError(f"{path}: {len(train[key])} example(s); at least 2 are needed to "
                            "hold some out for evaluation")
        train, test = _split(train, seed)
    n = len(train[key])
    task = "classify" if train[key].ndim == 1 else "sequence"
    return Dataset(path.name, train, test, task, key, f"{n} examples from {path}")


def _check_headers(path: Path, heads: dict[str, Header], prefix: str, graph: Graph, key: str
                   ) -> None:
    """Names, dtypes, ranks, sizes and example counts, from the headers alone."""
    label = heads[prefix + key]
    if label.ndim == 0:
        raise DataError(f"{path}: `{prefix}{key}` is a single value; give one label per "
                        f"example, shape [N] or [N, ...]")
    if label.dtype.kind not in "biuf":
        raise DataError(f"{path}: `{prefix}{key}` is {label.dtype}; labels are numbers "
                        "(class indices or targets)")
    n = label.shape[0]
    if n == 0:
        raise DataError(f"{path}: `{prefix}{key}` holds no examples")
    for name, dtype, dims in _input_shapes(graph, {}):
        a = heads[prefix + name]
        shown = f"`{prefix}{name}`"
        if a.dtype.kind not in _KINDS[dtype]:
            raise DataError(f"{path}: {shown} is {a.dtype}; the spec declares {dtype}")
        if a.ndim != len(dims):
            raise DataError(f"{path}: {shown} has shape {list(a.shape)}; the spec declares "
                            f"rank {len(dims)}: [{', '.join(map(str, dims))}]")
        for axis, (have, want) in enumerate(zip(a.shape, dims, strict=True)):
            if axis and isinstance(want, int) and have != want:
                raise DataError(f"{path}: {shown} has shape {list(a.shape)}; the spec declares "
                                f"[{', '.join(map(str, dims))}] (dimension {axis} differs)")
        if a.shape[0] != n:
            raise DataError(f"{path}: {shown} has {a.shape[0]} examples but `{prefix}{key}` has "
                            f"{n}")


def _checked(path: Path, arrays: dict[str, np.ndarray], prefix: str, graph: Graph, key: str
             ) -> dict[str, np.ndarray]:
    """The inputs and labels named `prefix + name` (their headers checked), their values
    checked and the inputs cast to the spec's dtypes."""
    label = arrays[prefix + key]
    if label.dtype.kind == "f" and not np.isfinite(label).all():
        raise DataError(f"{path}: `{prefix}{key}` holds NaN or infinite values")
    out = {}
    for name, dtype, _ in _input_shapes(graph, {}):
        a = arrays[prefix + name]
        shown = f"`{prefix}{name}`"
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise DataError(f"{path}: {shown} holds NaN or infinite values")
        if a.dtype.kind in "iu" and a.size:
            _check_ids(path, shown, a, dtype, _embedding_rows(graph, name))
        out[name] = a.astype(NUMPY_DTYPES[dtype], copy=False)
    out[key] = label
    return out


# numpy dtype kinds an array may have for an input of each spec dtype
_KINDS = {**{d: "f" for d in FLOAT_DTYPES}, "i32": "iu", "i64": "iu", "bool": "b"}


def _embedding_rows(graph: Graph, name: str) -> int | None:
    """The fewest rows of an Embedding that reads input `name` directly, if any does."""
    node = graph.inputs[graph.input_names.index(name)]
    rows = [n.args["num"] for n in graph.nodes if n.op == "Embedding" and n.inputs[0] == node]
    return min(rows, default=None)


def _check_ids(path: Path, shown: str, a: np.ndarray, dtype: str, rows: int | None) -> None:
    lo, hi = int(a.min()), int(a.max())
    info = np.iinfo(NUMPY_DTYPES[dtype])
    if lo < info.min or hi > info.max:
        raise DataError(f"{path}: {shown} holds {lo if lo < info.min else hi}, outside {dtype}")
    if rows is not None and (lo < 0 or hi >= rows):
        raise DataError(f"{path}: {shown} holds token id {lo if lo < 0 else hi}; its Embedding "
                        f"has {rows} rows, so ids are 0 to {rows - 1}")


def symbol_sizes(graph: Graph, data: Dataset, batch: int) -> dict[str, int]:
    """A value for each symbolic dimension: the batch on a batch axis, else the data's size."""
    sizes = {}
    for name, source in graph.symbols.items():
        array = data.train[graph.input_names[source.input]]
        sizes[name] = batch if source.axis == 0 else int(array.shape[source.axis])
    return sizes


def check_labels(data: Dataset, graph: Graph, loss: str) -> None:
    """Labels that fit the loss and the model's output, in both splits: class indices inside
    the output's classes for cross_entropy, 0..1 targets for bce_with_logits, numbers shaped
    like the output for mse and l1."""
    out = graph.nodes[graph.outputs[0]].type
    for split, arrays in (("training", data.train), ("held-out", data.test)):
        y = arrays[data.label]
        where = f"the {split} labels (`{data.label}`)"
        if len(y) == 0:
            raise DataError(f"{data.name}: no {split} examples")
        if loss == "cross_entropy":
            _check_classes(data.name, where, y, out.shape)
        elif loss == "bce_with_logits":
            if y.dtype.kind not in "biuf" or (y.size and (y.min() < 0 or y.max() > 1)):
                raise DataError(f"{data.name}: {where} must lie in [0, 1] for bce_with_logits")
        elif y.dtype.kind not in "iuf":
            raise DataError(f"{data.name}: {where} are {y.dtype}; {loss} needs numbers")
        if loss != "cross_entropy":
            per = math.prod(d for d in out.shape[1:] if isinstance(d, int))
            if not any(isinstance(d, Sym) for d in out.shape[1:]) and \
                    math.prod(y.shape[1:]) != per:
                raise DataError(f"{data.name}: {where} have shape {list(y.shape)}; the output "
                                f"is {out} ({per} value(s) per example)")


def _check_classes(name: str, where: str, y: np.ndarray, shape: tuple) -> None:
    if y.dtype.kind not in "iu":
        raise DataError(f"{name}: {where} are {y.dtype}; cross_entropy needs integer class "
                        "indices")
    if y.ndim != len(shape) - 1:
        raise DataError(f"{name}: {where} have shape {list(y.shape)}; the output "
                        f"{format_shape(shape)} needs one class index per "
                        f"{'example' if len(shape) == 2 else 'position'}: rank {len(shape) - 1}")
    classes = shape[-1]
    if isinstance(classes, int) and y.size and (y.min() < 0 or y.max() >= classes):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise DataError(f"{name}: {where} hold class {bad}; the output has {classes} classes, "
                        f"so labels are 0 to {classes - 1}")


def checked_input(path: Path, name: str, a: np.ndarray, dtype: str, dims: list[int | Sym],
                  count: tuple[str, int]) -> np.ndarray:
    """Array `name` of `path` as the spec's input of that name (`dtype`, rank, fixed sizes)
    with as many examples as array `count[0]` has (`count[1]`), or a DataError."""
    key, n = count
    want_float = dtype in FLOAT_DTYPES
    if want_float != np.issubdtype(a.dtype, np.floating) and not (
            not want_float and np.issubdtype(a.dtype, np.integer)):
        raise DataError(f"{path}: `{name}` is {a.dtype}; the spec declares {dtype}")
    if a.ndim != len(dims):
        raise DataError(f"{path}: `{name}` has shape {list(a.shape)}; the spec declares "
                        f"rank {len(dims)}: [{', '.join(map(str, dims))}]")
    for axis, (have, want) in enumerate(zip(a.shape, dims, strict=True)):
        if axis and isinstance(want, int) and have != want:
            raise DataError(f"{path}: `{name}` has shape {list(a.shape)}; the spec declares "
                            f"[{', '.join(map(str, dims))}] (dimension {axis} differs)")
    if len(a) != n:
        raise DataError(f"{path}: `{name}` has {len(a)} examples but `{key}` has {n}")
    return a.astype(NUMPY_DTYPES[dtype])


def load_inputs(path: Path, graph: Graph) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The spec's inputs from an .npz, every example in the file's order, and its labels
    (`target`, or `labels` when an input is named target) when it has them: what `archdsl
    predict` runs on. Sizes are checked from the headers before anything is read."""
    try:
        arrays = read_npz(path)
    except ArchiveError as exc:
        raise DataError(f"{path}: {exc}") from None
    missing = [n for n in graph.input_names if n not in arrays]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)}; the spec's inputs are "
                        f"{', '.join(graph.input_names)}. Found: "
                        f"{', '.join(sorted(arrays)) or 'nothing'}")
    first = graph.input_names[0]
    count = (first, len(arrays[first]))
    inputs = [checked_input(path, name, arrays[name], dtype, dims, count)
              for name, dtype, dims in _input_shapes(graph, {})]
    labels = arrays.get(label_key(graph))
    if labels is not None and len(labels) != count[1]:
        raise DataError(f"{path}: `{label_key(graph)}` has {len(labels)} examples but "
                        f"`{first}` has {count[1]}")
    return inputs, labels
