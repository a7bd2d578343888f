"""`--device` and `--precision`: what the user asks for, checked against what a backend can do
and resolved against the accelerators it finds.

| `--device` | meaning |
| --- | --- |
| `auto` (default) | the first CUDA device, else the Apple GPU, else the CPU (Lightning's `auto`) |
| `cpu` | the CPU |
| `cuda`, `cuda:N` | CUDA device N; without N, 0 or the process's `LOCAL_RANK` (torchrun) |
| `mps` | the Apple GPU (PyTorch's MPS; TensorFlow's through tensorflow-metal) |

`--precision fp32` trains in float32; `bf16` and `fp16` run the forward pass and the loss in
that type (PyTorch's autocast, Keras's mixed-precision policies) with float32 weights and
optimizer state; `fp16` scales the loss so small gradients do not underflow.

Nothing here imports a framework: each backend's training module reports its accelerators
(`accelerators()`), and `pick` decides from those counts alone.
"""

from __future__ import annotations

import re
from typing import Any

PRECISIONS = ("fp32", "bf16", "fp16")
DEVICE_KINDS = ("auto", "cpu", "cuda", "mps")

# What each backend can train on and in: a gap is declared here, not discovered mid-run.
CAPABILITIES: dict[str, dict[str, tuple[str, ...]]] = {
    "torch": {"devices": ("cpu", "cuda", "mps"), "precisions": PRECISIONS},
    "tensorflow": {"devices": ("cpu", "cuda", "mps"), "precisions": PRECISIONS},
    "numpy": {"devices": ("cpu",), "precisions": ("fp32",)},
}

_DEVICE = re.compile(r"(auto|cpu|mps|cuda)(?::(\d+))?")
_NAMES = {"cuda": "CUDA", "mps": "Apple GPU (mps)"}


class DeviceError(ValueError):
    """A device or precision that this backend or this machine cannot provide."""


def parse_device(text: str) -> tuple[str, int | None]:
    """`"cuda:1"` -> `("cuda", 1)`; only `cuda` takes an index."""
    m = _DEVICE.fullmatch(text.strip().lower())
    if m is None or (m[2] is not None and m[1] != "cuda"):
        raise DeviceError(f"--device is auto, cpu, cuda, cuda:N or mps, not {text!r}")
    return m[1], None if m[2] is None else int(m[2])


def check(backend: str, device: str, precision: str) -> None:
    """Refuse what `backend` cannot do at all, before anything is loaded."""
    kind, _ = parse_device(device)
    if precision not in PRECISIONS:
        raise DeviceError(f"--precision is {', '.join(PRECISIONS)}, not {precision!r}")
    can = CAPABILITIES[backend]
    if kind != "auto" and kind not in can["devices"]:
        raise DeviceError(f"the {backend} backend runs on {' or '.join(can['devices'])} only, "
                          f"not {device}; use --backend torch or tensorflow for a GPU")
    if precision not in can["precisions"]:
        raise DeviceError(f"the {backend} backend trains in {'/'.join(can['precisions'])} "
                          f"only, not {precision}; use --backend torch or tensorflow for "
                          "mixed precision")


def pick(device: str, accelerators: dict[str, int], local_rank: int = 0,
         asked: str = "--device") -> str:
    """The device to use, as PyTorch names it (`cpu`, `cuda:1`, `mps`), given how many of
    each accelerator the backend found; a device that is not there is refused by name, as
    `asked` for (the option, or the run that recorded it)."""
    kind, index = parse_device(device)
    if kind == "auto":
        if accelerators.get("cuda", 0):
            kind = "cuda"
        elif accelerators.get("mps", 0):
            return "mps"
        else:
            return "cpu"
    if kind == "cpu":
        return "cpu"
    found = accelerators.get(kind, 0)
    if not found:
        raise DeviceError(f"{asked} {device}: no {_NAMES[kind]} device is available to this "
                          "backend here; use --device cpu, or auto to take one when present")
    if kind == "mps":
        return "mps"
    index = local_rank if index is None else index
    if index >= found:
        raise DeviceError(f"{asked} cuda:{index}: this machine has {found} CUDA device"
                          f"{'s' if found != 1 else ''} (cuda:0 to cuda:{found - 1})")
    return f"cuda:{index}"


def caution(device: str, precision: str) -> str | None:
    """A warning for a combination that works but is rarely what one wants."""
    if precision == "fp16" and device == "cpu":
        return ("fp16 on the CPU is far slower than fp32 in PyTorch and TensorFlow (see "
                "docs/training.md); bf16 is the CPU's mixed precision")
    return None


def resolve(backend: str, device: str, precision: str, local_rank: int = 0,
            asked: str = "--device") -> str:
    """Check the request, then ask the backend what it finds (this imports the framework)."""
    from archdsl import backends as registry
    check(backend, device, precision)
    return pick(device, registry.get(backend).part("training").accelerators(), local_rank,
                asked)


def resolve_run(backend: str, device: str | None, recorded: Any, precision: str,
                checkpoint: str, local_rank: int = 0) -> tuple[str, str]:
    """The device of a run and how it came to be chosen, for the line that starts the run.

    A resumed run keeps the device its `checkpoint` `recorded` unless `device` (`--device`)
    is given; a recorded device this machine does not have is refused like `--device` (the
    user chooses where the run goes on). `recorded` is None for a new run or a run that
    recorded none."""
    if recorded is None or device is not None:
        chosen = resolve(backend, device or "auto", precision, local_rank)
        kept = recorded in (None, chosen) or (recorded == "cuda" and chosen.startswith("cuda:"))
        return chosen, "" if kept else f" (--device {device}; the run trained on {recorded})"
    asked = f"the run in {checkpoint} trained on"
    if not isinstance(recorded, str):
        raise DeviceError(f"{asked} {recorded!r}, which is not a device; choose one with "
                          "--device")
    return resolve(backend, recorded, precision, local_rank, asked), " (as recorded)"


def to_record(device: str, processes: int) -> str:
    """What a run records of its device: `cuda` for a CUDA run of several processes, each of
    which takes its own device (`LOCAL_RANK`) when resumed."""
    return "cuda" if processes > 1 and device.startswith("cuda") else device
