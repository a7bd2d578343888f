"""`archdsl.noise(draws)`: the draws of `randn_like`, chosen by the caller (LANGUAGE.md 10.2).

    rng = np.random.default_rng(0)
    with archdsl.noise(lambda k, shape: rng.standard_normal(shape)):
        y = model(x)

While the context is active, the k-th `randn_like` evaluated in one forward pass of a model
built by any backend (graph order, k from 0) returns `draws(k, shape)`, a NumPy array the
backend casts to the input's dtype; outside it, each backend draws its own noise. `verify`
and the equivalence tests give every backend the same draws this way. Nothing here imports a
framework.

A target honours it with two calls: `begin()` when a forward pass of a whole model starts
(the count restarts at 0), and `draw(shape)` where `randn_like(x)` is evaluated, which
returns the array to use, or None when no context is active (or `draw(shape, k)`, the
k-th draw, from a target that does not evaluate in graph order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

Draws = Callable[[int, tuple[int, ...]], Any]


@dataclass
class _Active:
    draws: Draws
    count: int = 0


_ACTIVE: ContextVar[_Active | None] = ContextVar("archdsl_noise", default=None)


@contextmanager
def noise(draws: Draws) -> Iterator[None]:
    """Make `randn_like` return `draws(k, shape)` for its k-th call in each forward pass."""
    if not callable(draws):
        raise TypeError(f"archdsl.noise takes a function draws(k, shape), got "
                        f"{type(draws).__name__}")
    token = _ACTIVE.set(_Active(draws))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active() -> bool:
    """Whether a `noise` context is active (a target may skip its hooks otherwise)."""
    return _ACTIVE.get() is not None


def begin() -> None:
    """A forward pass of a whole model starts: the next draw is the 0th."""
    active = _ACTIVE.get()
    if active is not None:
        active.count = 0


def draw(shape: tuple[int, ...], k: int | None = None) -> Any:
    """The next draw of this forward pass as a NumPy array of `shape`, or None when no
    `noise` context is active. A target that evaluates out of graph order (Keras runs a
    functional model by depth) gives each `randn_like` its graph index `k` instead."""
    active = _ACTIVE.get()
    if active is None:
        return None
    import numpy as np

    if k is None:
        k = active.count
        active.count += 1
    value = np.asarray(active.draws(k, tuple(shape)))
    if value.shape != tuple(shape):
        raise ValueError(f"archdsl.noise: draws({k}, {tuple(shape)}) returned an array of "
                         f"shape {value.shape}")
    return value
