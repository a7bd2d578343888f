"""Scale-out planning for `archdsl analyze --devices N --strategy S`: what one device holds
while training on N devices, from shapes alone (docs/analyze.md gives the formulas).

With P the parameter bytes, a parameter's dim 0 of size d0, k the optimizer's state per
parameter (Adam and AdamW 2, SGD with momentum 1, plain SGD 0) and A(b) the activation bytes
at batch b, one device holds:

| strategy | weights | gradients | optimizer state | gathered |
| --- | --- | --- | --- | --- |
| `ddp` | P | P | k·P | 0 |
| `zero2` | P | ⌈P/N⌉ | k·⌈P/N⌉ | 0 |
| `zero3` | ⌈P/N⌉ | ⌈P/N⌉ | k·⌈P/N⌉ | 2·(R + U) |
| `fsdp` | S = Σ ⌈d0/N⌉·(the rest) | S | k·S | 2·(R + U) |

plus the buffers (replicated everywhere) and A(B/N) of activations, B the global batch.
`gathered` is what a sharded strategy holds unsharded at its peak: the parameters outside
blocks (R, the root, gathered for the whole step) and those of the largest block (U), each
with its gradients. The units are those `train --strategy fsdp` wraps with `fully_shard`:
each outermost block instance, then the root.
"""

from __future__ import annotations

import math
from typing import Any

from archdsl.graph import DTYPE_BYTES, Graph, ParamSpec
from archdsl.records import Record

STRATEGIES = ("ddp", "fsdp", "zero2", "zero3")
TRAIN_STRATEGIES = ("ddp", "fsdp")  # what `train --nproc` runs; ZeRO is planned, not run


class DeviceMemory(Record):
    """Training memory of one of `devices` devices, in bytes."""

    strategy: str
    devices: int
    batch: int | None  # the global batch B; None when the spec fixes its batch
    batch_per_device: int | None
    optimizer: str
    weights: int
    gradients: int
    optimizer_state: int
    gathered: int
    activations: int
    total: int


def state_per_parameter(graph: Graph) -> tuple[str, int]:
    """The optimizer and how many parameter-sized tensors of state it keeps."""
    opt = graph.train.optimizer if graph.train and graph.train.optimizer else None
    name = opt.name if opt else "Adam"
    if name in ("Adam", "AdamW"):
        return name, 2
    return name, 1 if opt is not None and opt.args.get("momentum", 0.0) > 0 else 0


def global_batch(graph: Graph, devices: int) -> int:
    """B when the user binds none: the spec's `train` batch, else one example per device."""
    return graph.train.batch if graph.train and graph.train.batch else devices


def _bytes(p: ParamSpec) -> int:
    return math.prod(p.shape) * DTYPE_BYTES[p.dtype]


def _shard_bytes(p: ParamSpec, devices: int) -> int:
    """FSDP2's shard: rows of dim 0 split over the devices, the last ones padded."""
    if not p.shape:
        return _bytes(p)
    return math.ceil(p.shape[0] / devices) * _bytes(p) // p.shape[0]


def units(graph: Graph) -> list[str]:
    """What `fully_shard` wraps on its own: each outermost block instance (its path)."""
    paths = sorted({s.path for s in graph.scopes}, key=len)
    outer: list[str] = []
    for path in paths:
        if not any(path.startswith(u + ".") for u in outer):
            outer.append(path)
    return outer


def _gathered(graph: Graph) -> int:
    """What one device holds unsharded at the peak: the root's parameters (everything outside
    blocks, gathered for the whole step) and the largest block's, each with its gradients
    until they are reduce-scattered."""
    sizes = dict.fromkeys(units(graph), 0)
    root = 0
    for key, p in graph.parameters("param").items():
        owner = next((u for u in sizes if key.startswith(u + ".")), None)
        if owner is None:
            root += _bytes(p)
        else:
            sizes[owner] += _bytes(p)
    return 2 * (root + max(sizes.values(), default=0))


def analyze_on_devices(graph: Graph, bind: dict[str, int], devices: int, strategy: str) -> Any:
    """`analyze --devices N --strategy S`: the report with training memory at the global batch
    (`bind["B"]`, by default the spec's `train` batch) and one device's share of it."""
    from archdsl.cost import analyze_graph
    if not isinstance(graph, Graph):
        return analyze_graph(graph)  # a gan: refused with its own diagnostic (E0601)
    if "B" in graph.symbols:
        bind = {**bind, "B": bind.get("B", global_batch(graph, devices))}
    report = analyze_graph(graph, bind=bind, train=True)
    report.devices = plan(graph, devices, strategy, report.bind)
    return report


def plan(graph: Graph, devices: int, strategy: str, bind: dict[str, int]) -> DeviceMemory:
    """One device's share of training `graph` on `devices` devices at the global batch
    `bind["B"]`, which they must divide."""
    from archdsl.cost import analyze_graph
    if strategy not in STRATEGIES:
        raise ValueError(f"--strategy is one of {', '.join(STRATEGIES)}, not {strategy!r}")
    batch = bind.get("B")
    if batch is not None and batch % devices:
        raise ValueError(f"the global batch B={batch} must be a multiple of --devices "
                         f"{devices}: every device takes B / {devices} examples")
    local = {**bind, "B": batch // devices} if batch is not None else bind
    activations = analyze_graph(graph, bind=local).total.activation_bytes
    params = graph.parameters("param").values()
    full = sum(_bytes(p) for p in params)
    buffers = sum(_bytes(p) for p in graph.parameters("buffer").values())
    optimizer, k = state_per_parameter(graph)
    if strategy == "ddp":
        sharded = full
    elif strategy == "fsdp":  # each parameter split along dim 0
        sharded = sum(_shard_bytes(p, devices) for p in params)
    else:  # ZeRO flattens every parameter into one buffer and splits that
        sharded = math.ceil(full / devices)
    weights = full if strategy in ("ddp", "zero2") else sharded
    gradients = full if strategy == "ddp" else sharded
    gathered = _gathered(graph) if strategy in ("zero3", "fsdp") and devices > 1 else 0
    out = DeviceMemory(strategy=strategy, devices=devices, batch=batch,
                       batch_per_device=None if batch is None else batch // devices,
                       optimizer=optimizer, weights=weights + buffers, gradients=gradients,
                       optimizer_state=k * gradients, gathered=gathered,
                       activations=activations, total=0)
    out.total = out.weights + out.gradients + out.optimizer_state + out.gathered + \
        out.activations
    return out


def describe(m: DeviceMemory) -> tuple[str, str]:
    """The summary line of the analyze table."""
    from archdsl.cost import human_bytes
    parts = [f"weights {human_bytes(m.weights)}", f"gradients {human_bytes(m.gradients)}",
             f"{m.optimizer} state {human_bytes(m.optimizer_state)}"]
    if m.gathered:
        parts.append(f"gathered {human_bytes(m.gathered)}")
    parts.append(f"activations {human_bytes(m.activations)}")
    batch = "" if m.batch is None else f", batch {m.batch_per_device} of {m.batch} on each"
    return (f"per device ({m.strategy})", f"{human_bytes(m.total)} = " + " + ".join(parts)
            + f" ({m.devices} devices{batch})")
