"""Pausing Python's cyclic garbage collector where it would only repeat work."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Parsing, elaboration and analysis allocate many small acyclic objects, and importing
    archdsl thousands of long-lived ones (classes, functions, tables); the cyclic collector's
    repeated passes over them would find nothing to free (and make large specs take
    superlinear time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
