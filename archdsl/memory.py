"""Memory that building a model, training it or loading its data will take, checked against
`Limits.max_params` and against what this machine has free before anything is allocated.

The figures come from the graph's shapes (archdsl/cost.py) and from archive headers, so a spec
with 2**36-wide layers or a data file that claims 4 TB is refused in milliseconds instead of
ending in MemoryError or the kernel's out-of-memory killer.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from archdsl.cost import analyze_graph, human_bytes
from archdsl.diagnostics import Diagnostic, SpecError
from archdsl.graph import DTYPE_BYTES, Graph
from archdsl.limits import Limits, raise_hint


class MemoryRefused(ValueError):
    """Work that would need more memory than the machine has free; the message says how much."""


def available_bytes() -> int | None:
    """Memory this process can still take: the kernel's MemAvailable, or less when a cgroup
    (a container) caps it; None where neither can be read."""
    free: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = None
    cap = _cgroup_room()
    if cap is not None:
        free = cap if free is None else min(free, cap)
    return free


def _cgroup_room() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
    except OSError:
        return None
    if limit == "max":
        return None
    try:
        return max(0, int(limit) - int(used))
    except ValueError:
        return None


def check_fits(need: int, what: str) -> None:
    free = available_bytes()
    if free is not None and need > free:
        raise MemoryRefused(f"{what} needs {human_bytes(need)}; this machine has "
                            f"{human_bytes(free)} free")


# An ONNX export holds the weights three to five times at its peak (drawn, in the protobuf
# message, serialized, written); `/usr/bin/time -v archdsl compile SPEC --backend onnx`, its
# maximum resident size less cnn_digits' (98 MB): 2.23 GB for gpt2_small's 497 MB of weights
# (4.5 times), 14.4 GB for llama_decoder's 4.4 GB (3.3 times). Four copies bound the models
# where the check matters, gigabytes of weights; a smaller one's few hundred MB more is slack
EXPORT_COPIES = 4


def check_model(graph: Graph, limits: Limits, what: str = "building", copies: int = 1
                ) -> None:
    """Parameters within `limits.max_params`, and `copies` of the weights and buffers within
    free memory."""
    tensors = [*graph.parameters("param").values(), *graph.parameters("buffer").values()]
    count = sum(math.prod(p.shape) for p in graph.parameters("param").values())
    if count > limits.max_params:
        _refuse(graph, f"`{graph.name}` has {count:,} parameters",
                f"the limit is {limits.max_params:,}", raise_hint("max_params"))
    need = copies * sum(math.prod(p.shape) * DTYPE_BYTES[p.dtype] for p in tensors)
    try:
        check_fits(need, f"{what} `{graph.name}`")
    except MemoryRefused as exc:
        _refuse(graph, f"`{graph.name}` does not fit in memory", str(exc),
                "make the model smaller")


def check_training(graph: Graph, limits: Limits, sizes: dict[str, int]) -> None:
    """`check_model`, then one training step's memory (weights, gradients, optimizer state,
    activations) at the dimension values in `sizes` (the batch and the data's sizes)."""
    check_model(graph, limits, "training")
    report = analyze_graph(graph, bind={k: v for k, v in sizes.items() if k in graph.symbols},
                           train=True)
    assert report.train is not None
    try:
        check_fits(report.train.total, f"one training step of `{graph.name}` (batch "
                                       f"{sizes.get('B', 1)})")
    except MemoryRefused as exc:
        _refuse(graph, f"training `{graph.name}` does not fit in memory", str(exc),
                "lower --batch or make the model smaller")


def _refuse(graph: Graph, message: str, label: str, hint: str) -> None:
    raise SpecError([Diagnostic(code="E0801", message=message, loc=graph.loc, label=label,
                                hint=hint)])
