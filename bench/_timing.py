"""What every backend benchmark shares: the command line, thread pinning, interleaved timing
and the printed table. Standard library only, so a script can pin threads before it imports
NumPy, torch or TensorFlow:

    from _timing import interleave, options, print_table
    OPTIONS = options(__doc__)          # parses --quick/--threads, sets OMP/MKL/BLAS variables
    import numpy as np                  # reads them when its BLAS loads
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def options(doc: str | None,
            more: Callable[[argparse.ArgumentParser], object] = lambda parser: None
            ) -> argparse.Namespace:
    """Parse the shared flags (and those `more` adds), then pin threads through the
    environment."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    more(parser)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few rounds: checks the script runs, times nothing")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for every library on both sides (default 1)")
    parser.add_argument("--only", metavar="TEXT",
                        help="run only the rows whose name contains TEXT (any case)")
    parser.add_argument("--clock", choices=sorted(CLOCKS),
                        help="cpu: the process's CPU time, which leaves out time the OS gives "
                             "to other jobs; wall: elapsed time. Default: cpu with one thread, "
                             "wall with more (idle worker threads spin and add CPU time)")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    args.clock = args.clock or ("cpu" if args.threads == 1 else "wall")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(args.threads)
    return args


class Named(Protocol):
    name: str


R = TypeVar("R", bound=Named)


def chosen(rows: Sequence[R], args: argparse.Namespace) -> list[R]:
    """The rows named by `--only` (every row without it)."""
    text = (args.only or "").lower()
    return [row for row in rows if text in row.name.lower()]


def pin_torch(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def pin_tensorflow(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def interleave(sides: dict[str, Callable[[], object]], rounds: int, steps: int, warmup: int,
               clock: str = "wall") -> dict[str, float]:
    """Median seconds per call of each side on `clock`. Each side warms up first; then each
    round times `steps` calls of every side, in A B / B A order on alternate rounds, so a
    slow spell of the machine (other jobs, frequency changes) falls on both sides alike."""
    now = CLOCKS[clock]
    for fn in sides.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(rounds):
        for name in (list(sides) if r % 2 == 0 else list(reversed(sides))):
            fn = sides[name]
            start = now()
            for _ in range(steps):
                fn()
            times[name].append((now() - start) / steps)
    return {name: statistics.median(ts) for name, ts in times.items()}


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Columns right-aligned to their widest cell; floats with 2 decimals (3 under 10)."""
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
        return str(v)

    cells = [list(header)] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w)
                        in enumerate(zip(row, widths, strict=True))).rstrip())


def machine(args: argparse.Namespace) -> str:
    """The CPU model, its core count, the threads each side was given and the clock."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{model}, {os.cpu_count()} cores, {args.threads} thread(s) per side, "
            f"{args.clock} clock")
