"""RNN (tanh), LSTM and GRU, batch first, with PyTorch's gate order and two biases.

Each cell is a `step` from the input projection `xp` (x W_ih^T + b_ih) and the hidden
projection `hp` (h W_hh^T + b_hh) to the new state, and a `back` from the state's gradient to
those of `xp`, `hp` and the previous state's direct paths. One generic loop over time serves
all three; input projections and weight gradients are single matrix products over all steps.
A layer starts from zeros or from the initial states it is called with, and with
`return_state` also gives its final states, [layers·directions, B, H] as PyTorch's h_n, c_n.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Kernel, dropout_mask, sigmoid

State = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Cell:
    gates: int
    states: int  # 1: h; 2: h, c
    step: Any  # (xp, hp, state) -> (state, cache)
    back: Any  # (dstate, cache) -> (dxp, dhp, dstate_direct)


def _rnn_step(xp, hp, state):
    h = np.tanh(xp + hp)
    return (h,), h


def _rnn_back(dstate, h):
    d = dstate[0] * (1 - h * h)
    return d, d, (0,)


def _lstm_step(xp, hp, state):
    h, c = state
    g = xp + hp
    i, f, gg, o = np.split(g, 4, axis=1)
    i, f, gg, o = sigmoid(i), sigmoid(f), np.tanh(gg), sigmoid(o)
    c2 = f * c + i * gg
    tc = np.tanh(c2)
    return (o * tc, c2), (i, f, gg, o, c, tc)


def _lstm_back(dstate, cache):
    dh, dc = dstate
    i, f, gg, o, c, tc = cache
    dc = dc + dh * o * (1 - tc * tc)
    d = np.concatenate([dc * gg * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - gg * gg),
                        dh * tc * o * (1 - o)], axis=1)
    return d, d, (0, dc * f)


def _gru_step(xp, hp, state):
    (h,) = state
    xr, xz, xn = np.split(xp, 3, axis=1)
    hr, hz, hn = np.split(hp, 3, axis=1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return ((1 - z) * n + z * h,), (r, z, n, hn, h)


def _gru_back(dstate, cache):
    (dh,) = dstate
    r, z, n, hn, h = cache
    dn = dh * (1 - z) * (1 - n * n)
    dr = dn * hn * r * (1 - r)
    dz = dh * (h - n) * z * (1 - z)
    return (np.concatenate([dr, dz, dn], axis=1), np.concatenate([dr, dz, dn * r], axis=1),
            (dh * z,))


CELLS = {"RNN": Cell(1, 1, _rnn_step, _rnn_back), "LSTM": Cell(4, 2, _lstm_step, _lstm_back),
         "GRU": Cell(3, 1, _gru_step, _gru_back)}


def _run(cell: Cell, x, w_ih, w_hh, b_ih, b_hh, reverse: bool, state: State = ()):
    """One layer, one direction from `state` (zeros when empty): hidden states (B, T, H), the
    final state and the cache for `_run_back`."""
    b, t, _ = x.shape
    hsize = w_hh.shape[1]
    xp = x @ w_ih.T + b_ih  # (B, T, gH)
    state = state or tuple(np.zeros((b, hsize), x.dtype) for _ in range(cell.states))
    hs = np.empty((b, t, hsize), x.dtype)
    hprev = np.empty((t, b, hsize), x.dtype)
    caches: list[Any] = [None] * t
    for s in (range(t - 1, -1, -1) if reverse else range(t)):
        hprev[s] = state[0]
        state, caches[s] = cell.step(xp[:, s], state[0] @ w_hh.T + b_hh, state)
        hs[:, s] = state[0]
    return hs, state, (x, w_ih, w_hh, hprev, caches, reverse)


def _run_back(cell: Cell, dhs: np.ndarray, cache, dfinal: tuple = ()):
    """Gradients of `_run` from those of its hidden states and final state (None or absent:
    zero): dx, (dW_ih, dW_hh, db_ih, db_hh) and the gradient of the initial state."""
    x, w_ih, w_hh, hprev, caches, reverse = cache
    b, t, _ = x.shape
    gh = w_ih.shape[0]
    dxp = np.empty((b, t, gh), x.dtype)
    dhp = np.empty((t, b, gh), x.dtype)
    dfinal = dfinal or (None,) * cell.states
    dstate: State = tuple(np.zeros_like(hprev[0]) if d is None else d for d in dfinal)
    for s in (range(t) if reverse else range(t - 1, -1, -1)):
        dstate = (dstate[0] + dhs[:, s], *dstate[1:])
        dxp[:, s], dhp[s], direct = cell.back(dstate, caches[s])
        dstate = (dhp[s] @ w_hh + direct[0], *direct[1:])
    return dxp @ w_ih, (dxp.reshape(-1, gh).T @ x.reshape(b * t, -1),
                        dhp.reshape(-1, gh).T @ hprev.reshape(t * b, -1),
                        dxp.sum((0, 1)), dhp.sum((0, 1))), dstate


def _names(layer: int, suffix: str) -> list[str]:
    return [f"{w}_l{layer}{suffix}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _suffixes(a) -> tuple[str, ...]:
    return ("", "_reverse") if a["bidirectional"] else ("",)


def _recurrent(op: str) -> Kernel:
    cell = CELLS[op]

    def forward(a, p, xs, ctx):
        x, *initial = xs  # (B, T, F), then h0 (and c0) [layers·dirs, B, H] when given
        dirs = _suffixes(a)
        layers, finals = [], []
        for layer in range(a["layers"]):
            runs = [_run(cell, x, *(p[k] for k in _names(layer, sfx)), reverse=sfx != "",
                         state=tuple(s[layer * len(dirs) + i] for s in initial))
                    for i, sfx in enumerate(dirs)]
            x = np.concatenate([hs for hs, _, _ in runs], axis=-1)  # (B, T, H * dirs)
            mask = dropout_mask(x.shape, a["dropout"], ctx, x.dtype) \
                if layer < a["layers"] - 1 else None
            if mask is not None:
                x = x * mask
            layers.append(([c for _, _, c in runs], mask))
            finals += [final for _, final, _ in runs]
        cache = (a, layers, x.shape, len(initial))
        if not a["return_sequences"]:
            h = a["hidden"]
            last = [x[:, -1, :h]] + ([x[:, 0, h:]] if a["bidirectional"] else [])
            x = np.concatenate(last, axis=-1)  # PyTorch's h_n of the last layer: (B, H * dirs)
        if not a["return_state"]:
            return x, cache
        return (x, *(np.stack(s) for s in zip(*finals, strict=True))), cache

    def backward(dy, cache):
        a, layers, shape, n_initial = cache
        dy, dfinals = (dy[0], dy[1:]) if a["return_state"] else (dy, ())
        dy = _sequence_grad(a, dy, shape, dfinals)
        h = a["hidden"]
        dirs = _suffixes(a)
        grads, dinitial = {}, [None] * len(layers) * len(dirs)
        for layer in range(a["layers"] - 1, -1, -1):
            runs, mask = layers[layer]
            if mask is not None:
                dy = dy * mask
            dx = 0
            for i, (sfx, run) in enumerate(zip(dirs, runs, strict=True)):
                at = layer * len(dirs) + i
                d, ws, dinitial[at] = _run_back(cell, dy[..., i * h:(i + 1) * h], run,
                                                tuple(None if g is None else g[at]
                                                      for g in dfinals))
                dx = dx + d
                grads.update(zip(_names(layer, sfx), ws, strict=True))
            dy = dx
        return [dy, *(np.stack(s) for s in list(zip(*dinitial, strict=True))[:n_initial])], grads

    return Kernel(forward, backward)


def _sequence_grad(a, dy, shape, dfinals) -> np.ndarray:
    """dL/d(top layer's hidden states) (B, T, H * dirs) from that of the output: all of
    them, or with return_sequences=false the last step forwards and the first backwards. A
    return_state output no gradient reached (None) counts as zeros."""
    if dy is None:
        return np.zeros(shape, next(g for g in dfinals if g is not None).dtype)
    if a["return_sequences"]:
        return dy
    h = a["hidden"]
    full = np.zeros(shape, dy.dtype)
    full[:, -1, :h] = dy[:, :h]
    full[:, 0, h:] = dy[:, h:]
    return full


KERNELS: dict[str, Kernel] = {op: _recurrent(op) for op in CELLS}
