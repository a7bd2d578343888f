"""Thread pools that fit the machine, for torch, TensorFlow and NumPy's BLAS alike.

PyTorch's OpenMP pool and NumPy's BLAS size themselves for every core the process may run on
and keep their threads spinning while they wait for one another. When other work holds those
cores, the threads wait on threads that are not running: training steps of small models on 2
shared cores took 5 to 31 times as long as with one thread (docs/benchmarks.md). So their
default here is the number of cores this process may run on (`os.sched_getaffinity`, capped
by a cgroup CPU quota) that are idle right now (read from `/proc/stat` over a fifth of a
second), at least one. TensorFlow's pools keep its own default, one thread per core: they
stand a busy machine well, and one thread made its steps 1.8 to 4.5 times slower.
`--threads N` sizes every pool, TensorFlow's intra-op pool too (its inter-op pool gets one
thread); a user's `OMP_NUM_THREADS` decides for the OpenMP and BLAS pools.

`configure` must run before torch, TensorFlow or NumPy is imported: their pools read the
environment variables once, when they load. Pools already loaded are resized through
`threadpoolctl` when it is installed (scikit-learn, in the `train` extra, brings it) and
through torch's own call.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

# The spinning pools: PyTorch's OpenMP and the BLAS libraries under NumPy.
POOL_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# TensorFlow's, sized only by --threads: the inter-op pool runs independent operations side by
# side; one thread keeps their work inside the intra-op pool's budget.
TF_VARIABLES = {"TF_NUM_INTRAOP_THREADS": None, "TF_NUM_INTEROP_THREADS": 1}


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def quota(cgroup: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs a cgroup CPU quota allows (containers, `docker --cpus`), or None without one."""
    v2 = cgroup / "cpu.max"
    v1 = cgroup / "cpu" / "cpu.cfs_quota_us", cgroup / "cpu" / "cpu.cfs_period_us"
    try:
        if v2.exists():
            limit, period = v2.read_text().split()[:2]
            return None if limit == "max" else int(limit) / int(period)
        if v1[0].exists():
            limit, period = (int(p.read_text()) for p in v1)
            return None if limit <= 0 else limit / period
    except (OSError, ValueError):
        pass
    return None


def cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup quota."""
    n = len(allowed_cpus())
    limit = quota()
    return max(1, min(n, math.ceil(limit))) if limit else n


def cpu_times(cpus: list[int], stat: Path = Path("/proc/stat")
              ) -> dict[int, tuple[int, int]] | None:
    """(idle, total) jiffies of each CPU in `cpus` from /proc/stat (Linux), else None."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{c}": c for c in cpus}
    out = {}
    for line in lines:
        name, *fields = line.split() or [""]
        if name in wanted:
            values = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
            out[wanted[name]] = (values[3] + values[4], sum(values))
    return out if len(out) == len(cpus) else None


def idle_cores(cpus: list[int], interval: float = 0.2) -> float | None:
    """How many of `cpus` were idle over the next `interval` seconds (e.g. 1.7), or None where
    the kernel does not say (not Linux)."""
    before = cpu_times(cpus)
    if before is None:
        return None
    time.sleep(interval)
    after = cpu_times(cpus)
    if after is None:
        return None
    idle = 0.0
    for c in cpus:
        d_idle, d_total = after[c][0] - before[c][0], after[c][1] - before[c][1]
        idle += d_idle / d_total if d_total > 0 else 1.0
    return idle


def default_threads() -> tuple[int, str]:
    """The idle cores among those this process may use, at least one, and why."""
    n = cores()
    idle = idle_cores(allowed_cpus())
    if idle is None:
        return n, f"{n} core{'s' if n != 1 else ''}"
    threads = max(1, min(n, round(idle)))
    return threads, f"{idle:.1f} of {n} core{'s' if n != 1 else ''} idle"


def configure(threads: int | None = None) -> tuple[int, str]:
    """Size the OpenMP and BLAS pools to `threads` (TensorFlow's too), else to
    `OMP_NUM_THREADS` when the user set it, else to `default_threads()`; returns the number
    and the reason, for the log."""
    if threads is not None:
        n, why = threads, "--threads"
        for var in POOL_VARIABLES:
            os.environ[var] = str(n)
        for var, value in TF_VARIABLES.items():
            os.environ[var] = str(value or n)
    elif os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        n, why = int(os.environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    else:
        n, why = default_threads()
    for var in POOL_VARIABLES:
        os.environ.setdefault(var, str(n))
    _resize_loaded_pools(n)
    return n, why


def _resize_loaded_pools(n: int) -> None:
    """Pools that loaded before `configure` ran no longer read the environment."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # only the environment variables then: set before the next import
            return
        threadpool_limits(limits=n)
