"""`Module`: what every NumPy model shares, whether it interprets a graph (`runtime.Model`) or
was generated (`archdsl compile --backend numpy`): state, modes, and calling kernels.

A subclass declares its tables and defines `forward` and `backward`:

- `PARAMETERS`: state-dict key -> (shape, "param" or "buffer", dtype, init recipe);
- `LAYERS`: layer path -> [(local name, state-dict key)], the arrays its kernels see;
- `INPUTS`: [(name, dtype, shape)], shapes with symbolic sizes as strings ("B", "2*T");
- `SYMBOLS`: symbol -> (input index, axis), where each symbolic size is read at run time.

`forward` starts with `take_inputs`, calls `self.call(node, op, layer, args, *xs)` per node
(keeping each cache on the tape) and ends with `finish`; `backward` starts with `take_tape` and
feeds the caches in reverse to `self.back(...)`, which accumulates parameter gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from archdsl.symbolic import evaluate, parse_dim

from .init import draw
from .kernels import KERNELS, Ctx

FLOATS = ("f16", "bf16", "f32", "f64")


class Module:
    archdsl_backend = "numpy"
    NAME = ""
    PARAMETERS: dict[str, tuple] = {}
    LAYERS: dict[str, list[tuple[str, str]]] = {}
    INPUTS: list[tuple[str, str, list[int | str]]] = []
    SYMBOLS: dict[str, tuple[int, int]] = {}
    REACH: list[list[str]] | None = None

    def __init__(self, dtype: Any = np.float32, seed: int = 0):
        self.dtype = np.dtype(dtype)
        self.training = True  # as a freshly built torch.nn.Module
        rng = np.random.default_rng(seed)
        self._params: dict[str, np.ndarray] = {}
        self._buffers: dict[str, np.ndarray] = {}
        for key, (shape, kind, dtype_name, init) in self.PARAMETERS.items():
            value = draw(init, shape, rng).astype(self.dtype if dtype_name in FLOATS
                                                  else np.int64)
            (self._params if kind == "param" else self._buffers)[key] = value
        self._grads = {k: np.zeros_like(v) for k, v in self._params.items()}
        self._reached: set[str] = set()  # keys with a gradient since zero_grad, as PyTorch's
        self._ctx = Ctx(True, np.random.default_rng([seed, 1]))
        self._tape: dict[int, Any] | None = None
        self._shapes: list[tuple[int, ...]] = []
        # Monte Carlo arithmetic for `archdsl verify`'s noise estimate: when set, applied to
        # every op's float output and to every gradient the backward pass produces.
        self.perturb: Callable[[np.ndarray], np.ndarray] | None = None

    # -- modes and state ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        self.training = self._ctx.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def parameters(self) -> dict[str, np.ndarray]:
        """State-dict key -> the live array (optimisers update it in place)."""
        return dict(self._params)

    def buffers(self) -> dict[str, np.ndarray]:
        return dict(self._buffers)

    def grads(self) -> dict[str, np.ndarray]:
        """The gradients of the parameters a backward pass reached since `zero_grad`; the
        others are absent, as PyTorch's `.grad` is None, and optimisers leave them be."""
        return {k: g for k, g in self._grads.items() if k in self._reached}

    @property
    def rng(self) -> np.random.Generator:
        """The generator of every dropout mask (seeded from the model's seed)."""
        return self._ctx.rng

    def zero_grad(self) -> None:
        for g in self._grads.values():
            g[...] = 0
        self._reached.clear()

    # -- running ------------------------------------------------------------------------------
    def __call__(self, *inputs: Any) -> Any:
        return self.forward(*inputs)

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError

    def backward(self, *grad_outputs: Any) -> tuple[np.ndarray | None, ...]:
        """Accumulate parameter gradients into `grads()`; return the inputs' gradients."""
        raise NotImplementedError

    def take_inputs(self, inputs: tuple[Any, ...]) -> tuple[list[np.ndarray], dict[str, int]]:
        """Cast the inputs, read the symbolic sizes and check every shape against `INPUTS`."""
        if len(inputs) != len(self.INPUTS):
            names = ", ".join(name for name, _, _ in self.INPUTS)
            raise TypeError(f"{self.NAME} takes {len(self.INPUTS)} inputs ({names}), "
                            f"got {len(inputs)}")
        xs = [np.asarray(x).astype(self.dtype if dtype in FLOATS else
                                   (bool if dtype == "bool" else np.int64), copy=False)
              for x, (_, dtype, _) in zip(inputs, self.INPUTS, strict=True)]
        env = {s: int(xs[i].shape[axis]) for s, (i, axis) in self.SYMBOLS.items()}
        for x, (name, _, shape) in zip(xs, self.INPUTS, strict=True):
            want = [d if isinstance(d, int) else evaluate(parse_dim(d), env) for d in shape]
            if list(x.shape) != want:
                raise ValueError(f"input `{name}` must have shape [{', '.join(map(str, shape))}]"
                                 f", got {list(x.shape)}")
        self._tape = {}
        return xs, env

    def finish(self, *ys: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """The result of `forward`: one array or a tuple, in declared output order."""
        self._shapes = [y.shape for y in ys]
        return ys[0] if len(ys) == 1 else ys

    def take_tape(self, grad_outputs: tuple[Any, ...]) -> tuple[dict[int, Any], list]:
        """The caches of the last call (once) and one gradient per output (None: zeros)."""
        if self._tape is None:
            raise RuntimeError("call the model before backward (each call allows one backward)")
        if len(grad_outputs) != len(self._shapes):
            raise TypeError(f"backward takes one gradient per output ({len(self._shapes)}), "
                            f"got {len(grad_outputs)}")
        tape, self._tape = self._tape, None
        given = [i for i, d in enumerate(grad_outputs) if d is not None]
        layers = set(self.LAYERS) if self.REACH is None else \
            {name for i in given for name in self.REACH[i]}
        self._reached.update(k for name in layers for _, k in self.LAYERS.get(name, [])
                             if k in self._grads)
        return tape, [np.zeros(shape, self.dtype) if d is None else np.asarray(d, self.dtype)
                      for d, shape in zip(grad_outputs, self._shapes, strict=True)]

    def call(self, node: int, op: str, layer: str | None, args: dict, *xs: np.ndarray
             ) -> np.ndarray:
        """Run one op's forward, keep its cache on the tape under `node`."""
        p = {name: self._params[key] if key in self._params else self._buffers[key]
             for name, key in self.LAYERS.get(layer, [])} if layer else {}
        y, cache = KERNELS[op].forward(args, p, list(xs), self._ctx)
        if y.dtype != self.dtype and np.issubdtype(y.dtype, np.floating):
            y = y.astype(self.dtype)  # an integer tensor scaled by a float
        if self.perturb and y.dtype == self.dtype:
            y = self.perturb(y)
        assert self._tape is not None
        self._tape[node] = (op, layer, cache)
        return y

    def back(self, tape: dict[int, Any], node: int, dy: np.ndarray) -> list[np.ndarray | None]:
        """Run one op's backward: accumulate its parameter gradients, return its inputs'."""
        op, layer, cache = tape.pop(node)
        dxs, dps = KERNELS[op].backward(dy, cache)
        if self.perturb:
            dps = {name: self.perturb(g) for name, g in dps.items()}
            dxs = [None if d is None else self.perturb(d) for d in dxs]
        if dps:
            keys = dict(self.LAYERS[layer])
            for name, g in dps.items():
                self._grads[keys[name]] += g
        return dxs
