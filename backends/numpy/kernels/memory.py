"""Keeping freed memory in the process, for the short-lived arrays of a training step.

glibc's malloc serves an array above its mmap threshold (128 kB, raised to the largest array
freed so far) with fresh pages from the kernel, and returns the top of its heap to the kernel
once twice that is free. A training step makes and drops arrays of a few MB at every op, so
their pages fault in again and again: about a thousand page faults each time two 2 MB arrays
are made after two were dropped (tests/numpy/test_numpy_kernels.py counts them).
`keep_freed_memory` serves arrays up to 32 MB (glibc's largest threshold) from the heap and
lets up to 1 GB of freed heap stay in the process. Elsewhere than glibc it does nothing."""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Set glibc's thresholds for this process; False where there is no glibc `mallopt`."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
