"""Resource limits, enforced before the work they bound is done (docs/limits.md)."""

from __future__ import annotations

from archdsl.records import Record


class Limits(Record):
    """Generous defaults for real models; pass your own to `archdsl.load(..., limits=...)`."""

    max_source_chars: int = 4_000_000
    max_tokens: int = 100_000
    max_nesting: int = 200
    max_literal_digits: int = 30
    max_name_chars: int = 256
    max_string_chars: int = 10_000
    max_repeat: int = 10_000
    max_loop: int = 10_000
    max_nodes: int = 100_000
    max_rank: int = 8
    max_dim: int = 2**40
    max_imports: int = 256
    max_call_depth: int = 64
    max_params: int = 10_000_000_000


def raise_hint(name: str) -> str:
    """The hint of an E0801: how to raise the limit `name` that refused the spec."""
    return f"if this is intended, raise the limit: --limit {name}=N, or Limits({name}=N)"
