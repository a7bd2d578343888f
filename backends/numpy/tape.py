"""The tape: what one pass of a model ran, and its backward pass.

Every layer and function of `nn` runs its kernel through `run`. Inside a pass (a model called
from outside, `recording`), `run` records the kernel's backward function, its cache and the
arrays it read and made; `Tape.backward` then feeds gradients through the records in
reverse. Arrays are known by identity (`id`): the tape keeps every array it records alive
until the model is called again, so an identity is never reused within a pass, and a kernel
that returns one of its inputs gets a new view of it. A gradient reaching an array that is a
parameter (`self.wte.weight` read as a tensor) goes to that parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archdsl import draws

from .kernels import KERNELS, Ctx


@dataclass
class Entry:
    backward: Callable[[Any, Any], Any]
    cache: Any
    inputs: list[int | None]  # ids of the floating inputs (None: no gradient flows there)
    outputs: tuple[np.ndarray, ...]
    many: bool  # several outputs: the backward function takes (and gives) tuples
    owner: Any  # the layer whose parameters the kernel read, or None


@dataclass
class Tape:
    """What one pass of `model` ran, in order."""

    model: Any
    entries: list[Entry] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    inputs: list[np.ndarray] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)

    def output(self, y: np.ndarray, xs: list[Any]) -> np.ndarray:
        """A kernel's output as the pass keeps it: in the model's dtype (an integer tensor
        scaled by a float), perturbed (`archdsl verify`), and a new array object even where a
        kernel returns its input."""
        model = self.model
        if np.issubdtype(y.dtype, np.floating) and y.dtype != model.dtype:
            y = y.astype(model.dtype)
        if model.perturb is not None and y.dtype == model.dtype:
            y = model.perturb(y)
        if id(y) in self.seen or any(y is x for x in xs):
            y = y.view()
        self.seen.add(id(y))
        return y

    def finish(self, xs: list[np.ndarray], out: Any) -> None:
        self.inputs = xs
        self.outputs = list(out) if isinstance(out, tuple) else [out]

    def backward(self, model: Any, grad_outputs: tuple[Any, ...]
                 ) -> tuple[np.ndarray | None, ...]:
        """Parameter gradients into the model's layers; the inputs' gradients returned."""
        if len(grad_outputs) != len(self.outputs):
            raise TypeError(f"backward takes one gradient per output ({len(self.outputs)}), "
                            f"got {len(grad_outputs)}")
        perturb = model.perturb or (lambda g: g)
        grads: dict[int, Any] = {}  # id of an array -> dL/d(array), summed over its readers
        for y, g in zip(self.outputs, grad_outputs, strict=True):
            if g is not None:
                _add(grads, id(y), np.asarray(g, model.dtype))
        for e in reversed(self.entries):  # every reader of an array runs before its maker
            dy: Any = tuple(grads.pop(id(y), None) for y in e.outputs) if e.many else \
                grads.pop(id(e.outputs[0]), None)
            if dy is None or (e.many and all(d is None for d in dy)):
                continue  # no gradient reached this op
            dxs, dps = e.backward(dy, e.cache)
            if e.owner is not None:
                for name, g in dps.items():
                    e.owner._accumulate(name, perturb(g))
            for i, dx in zip(e.inputs, dxs, strict=False):
                if i is not None and dx is not None:
                    _add(grads, i, perturb(dx) if isinstance(dx, np.ndarray) else dx)
        for _, m in model.modules():  # parameters read as tensors
            for name, value in m._own.items():
                if id(value) in grads and name not in m._buffers:
                    m._accumulate(name, grads.pop(id(value)))
        return tuple(grads.get(id(x)) for x in self.inputs)


def _add(grads: dict[int, Any], key: int, g: Any) -> None:
    grads[key] = g if key not in grads else grads[key] + g


_CURRENT: ContextVar[Tape | None] = ContextVar("archdsl_numpy_tape", default=None)
_LOOSE = np.random.default_rng()  # dropout of a function called outside any model's pass


def active() -> bool:
    return _CURRENT.get() is not None


@contextmanager
def recording(model: Any) -> Iterator[Tape]:
    """A pass of `model`: what runs inside is recorded on the tape it yields. Under
    `archdsl.noise` the pass's draws are numbered from 0."""
    draws.begin()
    tape = Tape(model)
    token = _CURRENT.set(tape)
    try:
        yield tape
    finally:
        _CURRENT.reset(token)


def run(op: str, args: dict[str, Any], arrays: dict[str, np.ndarray], inputs: list[Any],
        training: bool, owner: Any = None) -> Any:
    """Run one kernel's forward (`arrays`: its layer's parameters and buffers); inside a
    pass, record it for the backward pass."""
    tape = _CURRENT.get()
    ctx = Ctx(training, tape.model.rng if tape is not None else _LOOSE,
              draws.draw if draws.active() else None)
    y, cache = KERNELS[op].forward(args, arrays, inputs, ctx)
    if tape is None:
        return y
    many = isinstance(y, tuple)
    outs = tuple(tape.output(part, inputs) for part in (y if many else (y,)))
    floating = [id(x) if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)
                else None for x in inputs]
    tape.entries.append(Entry(KERNELS[op].backward, cache, floating, outs, many, owner))
    return outs if many else outs[0]
