"""`RNNCell`, `GRUCell` and `LSTMCell`: one time step of their recurrent layer (recurrent.py),
from the state they are given or from zeros. `LSTMCell` is multi-output: (h', c')."""

from __future__ import annotations

import numpy as np

from .base import Kernel
from .recurrent import CELLS, _run, _run_back

_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _cell(layer: str) -> Kernel:
    cell = CELLS[layer]

    def forward(a, p, xs, ctx):
        x, *state = xs  # (B, F), then h (and c) (B, H) when given
        gates = p["weight_hh"].shape[0]
        w = [p.get(k, np.zeros(gates, x.dtype)) for k in _WEIGHTS]  # bias=false: zeros
        _, final, cache = _run(cell, x[:, None], *w, reverse=False, state=tuple(state))
        y = final if cell.states > 1 else final[0]
        return y, (cache, len(state), set(p))

    def backward(dy, cache):
        run, n_state, learned = cache
        dfinal = tuple(dy) if cell.states > 1 else (dy,)
        some = next(d for d in dfinal if d is not None)
        dx, ws, dstate = _run_back(cell, np.zeros((some.shape[0], 1, some.shape[1]), some.dtype),
                                   run, dfinal)
        grads = {k: g for k, g in zip(_WEIGHTS, ws, strict=True) if k in learned}
        return [dx[:, 0], *dstate[:n_state]], grads

    return Kernel(forward, backward)


KERNELS: dict[str, Kernel] = {f"{layer}Cell": _cell(layer) for layer in CELLS}
