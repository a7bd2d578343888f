"""RNN (tanh), LSTM and GRU, batch first, with PyTorch's gate order and two biases.

Each cell is a `step` from the input projection `xp` (x W_ih^T + b_ih) and the hidden
projection `hp` (h W_hh^T + b_hh) to the new state, and a `back` from the state's gradient to
those of `xp`, `hp` and the previous state's direct paths. One generic loop over time serves
all three; input projections and weight gradients are single matrix products over all steps.
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


def _run(cell: Cell, x, w_ih, w_hh, b_ih, b_hh, reverse: bool):
    """One layer, one direction: hidden states (B, T, H) and the cache for `_run_back`."""
    b, t, _ = x.shape
    hsize = w_hh.shape[1]
    xp = x @ w_ih.T + b_ih  # (B, T, gH)
    state: State = tuple(np.zeros((b, hsize), x.dtype) for _ in range(cell.states))
    hs = np.empty((b, t, hsize), x.dtype)
    hprev = np.empty((t, b, hsize), x.dtype)
    caches: list[Any] = [None] * t
    for s in (range(t - 1, -1, -1) if reverse else range(t)):
        hprev[s] = state[0]
        state, caches[s] = cell.step(xp[:, s], state[0] @ w_hh.T + b_hh, state)
        hs[:, s] = state[0]
    return hs, (x, w_ih, w_hh, hprev, caches, reverse)


def _run_back(cell: Cell, dhs: np.ndarray, cache):
    """Gradients of `_run`: dx and (dW_ih, dW_hh, db_ih, db_hh)."""
    x, w_ih, w_hh, hprev, caches, reverse = cache
    b, t, _ = x.shape
    gh = w_ih.shape[0]
    dxp = np.empty((b, t, gh), x.dtype)
    dhp = np.empty((t, b, gh), x.dtype)
    dstate: State = tuple(np.zeros_like(hprev[0]) for _ in range(cell.states))
    for s in (range(t) if reverse else range(t - 1, -1, -1)):
        dstate = (dstate[0] + dhs[:, s], *dstate[1:])
        dxp[:, s], dhp[s], direct = cell.back(dstate, caches[s])
        dstate = (dhp[s] @ w_hh + direct[0], *direct[1:])
    return dxp @ w_ih, (dxp.reshape(-1, gh).T @ x.reshape(b * t, -1),
                        dhp.reshape(-1, gh).T @ hprev.reshape(t * b, -1),
                        dxp.sum((0, 1)), dhp.sum((0, 1)))


def _names(layer: int, suffix: str) -> list[str]:
    return [f"{w}_l{layer}{suffix}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _suffixes(a) -> tuple[str, ...]:
    return ("", "_reverse") if a["bidirectional"] else ("",)


def _recurrent(op: str) -> Kernel:
    cell = CELLS[op]

    def forward(a, p, xs, ctx):
        (x,) = xs  # (B, T, F)
        layers = []
        for layer in range(a["layers"]):
            runs = [_run(cell, x, *(p[k] for k in _names(layer, sfx)), reverse=sfx != "")
                    for sfx in _suffixes(a)]
            x = np.concatenate([hs for hs, _ in runs], axis=-1)  # (B, T, H * dirs)
            mask = dropout_mask(x.shape, a["dropout"], ctx, x.dtype) \
                if layer < a["layers"] - 1 else None
            if mask is not None:
                x = x * mask
            layers.append(([c for _, c in runs], mask))
        if a["return_sequences"]:
            return x, (a, layers, x.shape)
        h = a["hidden"]
        last = [x[:, -1, :h]] + ([x[:, 0, h:]] if a["bidirectional"] else [])
        return np.concatenate(last, axis=-1), (a, layers, x.shape)  # PyTorch's h_n: (B, H * dirs)

    def backward(dy, cache):
        a, layers, shape = cache
        h = a["hidden"]
        if not a["return_sequences"]:
            full = np.zeros(shape, dy.dtype)
            full[:, -1, :h] = dy[:, :h]
            full[:, 0, h:] = dy[:, h:]
            dy = full
        grads = {}
        for layer in range(a["layers"] - 1, -1, -1):
            runs, mask = layers[layer]
            if mask is not None:
                dy = dy * mask
            dx = 0
            for i, (sfx, run) in enumerate(zip(_suffixes(a), runs, strict=True)):
                d, ws = _run_back(cell, dy[..., i * h:(i + 1) * h], run)
                dx = dx + d
                grads.update(zip(_names(layer, sfx), ws, strict=True))
            dy = dx
        return [dy], grads

    return Kernel(forward, backward)


KERNELS: dict[str, Kernel] = {op: _recurrent(op) for op in CELLS}
