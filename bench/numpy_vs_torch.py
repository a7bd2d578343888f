"""Training-step time of the NumPy build against the PyTorch CPU build of the same spec.

    python bench/numpy_vs_torch.py [--quick] [--threads N] [--only TEXT] [--profile]

Times one step of each backend's trainer (`backends/<b>/training.py`, what `archdsl train`
runs: forward, loss, backward and the optimizer step), interleaved, for every spec in
specs/ (the large ones narrowed with spec parameters) and for one-op models (a convolution,
a dense layer, an LSTM, attention, pooling, normalisation...). The ceiling is the machine's
float32 matrix-product rate in each library. GFLOP/s counts a training step as 3 times the
forward FLOPs of `archdsl.analyze` (the backward pass costs about twice the forward), so
rows dominated by elementwise work sit far below the ceiling on both sides; "of ceiling" is
NumPy's GFLOP/s as a share of NumPy's own 1024x1024 matrix-product rate.
"""

# ruff: noqa: E402  (the thread variables must be set before numpy and torch are imported)
from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from _timing import chosen, interleave, machine, options, pin_torch, print_table

OPTIONS = options(__doc__, lambda parser: parser.add_argument(
    "--profile", action="store_true",
    help="after each row, print where 10 NumPy steps spend their time (cProfile, by own time)"))

import numpy as np
import torch
from _inputs import describe, random_inputs, sizes

import archdsl
from archdsl.api import graph as spec_graph
from archdsl.data import label_key
from archdsl.train import make_trainer, resolve
from archdsl.verify import make_target

SPECS = Path(__file__).resolve().parents[1] / "specs"
QUICK_BIND = {"B": 2, "T": 4, "S": 4}


class Row(NamedTuple):
    name: str
    source: Path | str
    bind: dict[str, int]
    params: dict[str, Any] = {}
    model: str | None = None
    loss: str | None = None  # None: the spec's `train` loss (cross-entropy if it has none)


SPEC_ROWS = [
    Row("cnn_digits", SPECS / "cnn_digits.arch", {"B": 32}),
    Row("resnet_block", SPECS / "resnet_block.arch", {"B": 8}),
    Row("resnet50 (size=64)", SPECS / "resnet50.arch", {"B": 2}, {"size": 64, "classes": 10}),
    Row("digits_gan Generator", SPECS / "digits_gan.arch", {"B": 32}, model="Generator",
        loss="mse"),
    Row("digits_gan Discriminator", SPECS / "digits_gan.arch", {"B": 32},
        model="Discriminator", loss="bce_with_logits"),
    Row("char_lstm", SPECS / "char_lstm.arch", {"B": 16, "T": 32}),
    Row("attention_summarizer", SPECS / "attention_summarizer.arch", {"B": 16, "T": 32},
        {"vocab": 1000}),
    Row("text_transformer (d=64)", SPECS / "text_transformer.arch", {"B": 8, "T": 32},
        {"vocab": 1000, "d_model": 64, "heads": 4, "layers": 2}),
    Row("seq2seq_transformer (d=64)", SPECS / "seq2seq_transformer.arch",
        {"B": 8, "S": 16, "T": 16},
        {"src_vocab": 1000, "tgt_vocab": 1000, "d_model": 64, "heads": 4, "layers": 1}),
    Row("gpt2_small (d=128, 2 layers)", SPECS / "gpt2_small.arch", {"B": 8, "T": 32},
        {"vocab": 1000, "context": 64, "d": 128, "heads": 4, "layers": 2}),
]


def one_op(input_type: str, layer: str) -> str:
    """A model of one layer. A float input first gets a learned scalar added, so both sides
    compute the layer's input gradient and a parameter-free layer has something to train."""
    x = "x" if input_type.startswith("i") else '(x + Parameter([1], init="zeros"))'
    return f"model Op {{\n    input x: {input_type}\n    output y = {x} |> {layer}\n}}\n"


OP_ROWS = [Row(name, one_op(t, layer), bind, loss="mse") for name, t, layer, bind in [
    ("Conv2d 3x3, 32->32, 32x32", "[B, 32, 32, 32]", "Conv2d(32, 3, padding=1)", {"B": 16}),
    ("Conv2d 3x3, 256->256, 4x4", "[B, 256, 4, 4]", "Conv2d(256, 3, padding=1)", {"B": 8}),
    ("Conv2d 1x1, 256->64, 16x16", "[B, 256, 16, 16]", "Conv2d(64, 1)", {"B": 8}),
    ("ConvTranspose2d 4x4/2, 32->16", "[B, 32, 16, 16]", "ConvTranspose2d(16, 4, stride=2, "
     "padding=1)", {"B": 16}),
    ("Linear 512->512", "[B, 512]", "Linear(512)", {"B": 256}),
    ("Embedding 1000x128", "i64[B, T]", "Embedding(1000, 128)", {"B": 32, "T": 64}),
    ("LSTM 128->128", "[B, T, 128]", "LSTM(128)", {"B": 16, "T": 32}),
    ("GRU 128->128", "[B, T, 128]", "GRU(128)", {"B": 16, "T": 32}),
    ("MultiHeadAttention d=128, 4 heads", "[B, T, 128]", "MultiHeadAttention(4)",
     {"B": 8, "T": 64}),
    ("MaxPool2d 2x2, 32x32", "[B, 32, 32, 32]", "MaxPool2d(2)", {"B": 16}),
    ("AvgPool2d 2x2, 32x32", "[B, 32, 32, 32]", "AvgPool2d(2)", {"B": 16}),
    ("BatchNorm2d 32ch, 32x32", "[B, 32, 32, 32]", "BatchNorm2d", {"B": 16}),
    ("LayerNorm 256", "[B, T, 256]", "LayerNorm", {"B": 32, "T": 64}),
    ("GELU", "[B, 65536]", "GELU", {"B": 16}),
]]


def columns(t: dict[str, float], flops: int, ceiling: float) -> list[object]:
    """ms per step of each side, their ratio, each side's GFLOP/s and NumPy's share of its
    `ceiling` GFLOP/s (- where there are no FLOPs)."""
    rates = [flops / t[side] / 1e9 if flops else "-" for side in ("numpy", "torch")]
    share = f"{100 * rates[0] / ceiling:.0f}%" if flops else "-"
    return [1e3 * t["numpy"], 1e3 * t["torch"], t["numpy"] / t["torch"], *rates, share]


def matmul_row(args: argparse.Namespace) -> tuple[list[object], float]:
    """The float32 n x n matrix product in each library, and NumPy's GFLOP/s there: the
    ceiling for the rows below."""
    n = 128 if args.quick else 1024
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    t = interleave({"numpy": lambda: a @ b, "torch": lambda: ta @ tb},
                   *((2, 1, 1) if args.quick else (9, 5, 2)), args.clock)
    ceiling = 2 * n**3 / t["numpy"] / 1e9
    return [f"matmul {n}x{n} (ceiling)", "-", *columns(t, 2 * n**3, ceiling)], ceiling


def measure(row: Row, args: argparse.Namespace, ceiling: float) -> list[object]:
    graph = spec_graph(row.source, row.model, row.params)
    bind = sizes(graph, QUICK_BIND if args.quick else row.bind)
    settings = resolve(graph, label=label_key(graph))
    if row.loss:
        settings = dataclasses.replace(settings, loss=row.loss)
    trainers = {b: make_trainer(b, graph, settings) for b in ("numpy", "torch")}

    rng = np.random.default_rng(0)
    batch = dict(zip(settings.inputs, random_inputs(graph, bind, rng), strict=True))
    out = trainers["torch"].predict(batch)
    batch[settings.label] = make_target(settings.loss, out, rng)

    t = interleave({b: lambda tr=tr: tr.step(batch) for b, tr in trainers.items()},
                   *((1, 1, 1) if args.quick else (7, 1, 2)), args.clock)
    flops = 3 * archdsl.analyze(row.source, row.model, row.params, bind=bind).total.flops
    if args.profile:
        profile(row.name, lambda: trainers["numpy"].step(batch))
    return [row.name, describe(bind), *columns(t, flops, ceiling)]


def profile(name: str, step: Callable[[], object], steps: int = 10) -> None:
    """The functions 10 steps spend the most CPU time in, themselves (NumPy's calls count in
    the kernel that makes them), per step."""
    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(lambda: [step() for _ in range(steps)])
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:12]  # type: ignore[attr-defined]
    print(f"\nNumPy {name}: ms per step in each function's own code (of "
          f"{1e3 * stats.total_tt / steps:.2f} ms profiled)")  # type: ignore[attr-defined]
    for (path, line, fn), (_, calls, own, _, _) in rows:
        print(f"  {1e3 * own / steps:8.3f}  {fn} ({Path(path).name}:{line}, {calls // steps}/step)")


def main() -> None:
    pin_torch(OPTIONS.threads)
    print(f"numpy {np.__version__}, torch {torch.__version__}; {machine(OPTIONS)}")
    header = ["", "input", "numpy ms", "torch ms", "ratio", "numpy GFLOP/s", "torch GFLOP/s",
              "of ceiling"]
    ceiling_row, ceiling = matmul_row(OPTIONS)
    for title, rows in (("specs", SPEC_ROWS), ("one op", OP_ROWS)):
        print()
        header[0] = title
        table = [measure(row, OPTIONS, ceiling) for row in chosen(rows, OPTIONS)]
        print_table(header, ([ceiling_row] if title == "specs" else []) + table)
    print("\nratio: NumPy time / PyTorch time (lower is better; the target is 3 or less on "
          "convolutional and dense specs)\nof ceiling: NumPy GFLOP/s / NumPy's own 1024x1024 "
          "matrix-product GFLOP/s (the goal is 50% or more on convolutional specs)")


if __name__ == "__main__":
    main()
