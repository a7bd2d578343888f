"""RNN (tanh), LSTM and GRU, batch first, with PyTorch's gate order and two biases.

Each cell is a `step` from the input projection `xp` (x W_ih^T + b_ih) and the hidden
projection `hp` (h W_hh^T + b_hh) to the new state, and a `back` from the state's gradient to
those of `xp`, `hp` and the previous state's direct paths. One generic loop over time serves
all three; input projections and weight gradients are single matrix products over all steps.
A layer starts from zeros or from the initial states it is called with, and with
`return_state` also gives its final states, [layers·directions, B, H] as PyTorch's h_n, c_n.

A step works on arrays of a few thousand values, where a NumPy call costs more than its
arithmetic, so the cells make few calls: all gates go through one tanh, a sigmoid being
(1 + tanh(v / 2)) / 2 (exact to half a unit in the last place of 1, what a gate that scales
a state needs); results are written in place; and where dL/dxp = dL/dhp (RNN, LSTM: `shared`)
b_hh joins the input projection once and the gradient is kept once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Kernel, dropout_mask, matmul_rows

State = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Cell:
    gates: int
    states: int  # 1: h; 2: h, c
    step: Any  # (xp, hp, state) -> (state, cache); may overwrite hp
    back: Any  # (dstate, cache) -> (dxp, dhp, direct dstate, None where there is none)
    shared: bool  # dL/dxp is dL/dhp
    halved: tuple[int, ...] = ()  # the sigmoid gates: their projections come halved

    def scale(self, hsize: int, dtype) -> np.ndarray:
        """Per projection column: 1/2 on sigmoid gates (`step` takes tanh(v / 2)), else 1."""
        s = np.ones((self.gates, hsize), dtype)
        s[list(self.halved)] = 0.5
        return s.reshape(-1)


def _sigmoid_slope(t: np.ndarray) -> np.ndarray:
    """d sigmoid(v) / dv = (1 - t^2) / 4 from t = tanh(v / 2)."""
    d = t * t
    np.subtract(1, d, out=d)
    d *= 0.25
    return d


def _rnn_step(xp, hp, state):
    hp += xp
    h = np.tanh(hp, out=hp)
    return (h,), h


def _rnn_back(dstate, h):
    d = h * h
    np.subtract(1, d, out=d)
    d *= dstate[0]
    return d, d, (None,)


def _lstm_step(xp, hp, state):
    h, c = state
    n = h.shape[1]
    hp += xp
    t = np.tanh(hp, out=hp)  # tanh(i/2), tanh(f/2), g, tanh(o/2)
    s = t * 0.5
    s += 0.5
    i, f, g, o = s[:, :n], s[:, n:2 * n], t[:, 2 * n:3 * n], s[:, 3 * n:]
    c2 = f * c
    c2 += i * g
    tc = np.tanh(c2)
    return (o * tc, c2), (t, s, c, tc)


def _lstm_back(dstate, cache):
    dh, dc = dstate
    t, s, c, tc = cache
    n = c.shape[1]
    i, f, g, o = s[:, :n], s[:, n:2 * n], t[:, 2 * n:3 * n], s[:, 3 * n:]
    dtc = tc * tc
    np.subtract(1, dtc, out=dtc)
    dtc *= dh
    dtc *= o
    dc = dc + dtc
    d = np.empty_like(t)
    np.multiply(dc, g, out=d[:, :n])
    np.multiply(dc, c, out=d[:, n:2 * n])
    np.multiply(dc, i, out=d[:, 2 * n:3 * n])
    np.multiply(dh, tc, out=d[:, 3 * n:])
    slope = _sigmoid_slope(t)
    slope[:, 2 * n:3 * n] *= 4  # the tanh gate: 1 - g^2
    d *= slope
    return d, d, (None, dc * f)


def _gru_step(xp, hp, state):
    (h,) = state
    n = h.shape[1]
    t = xp[:, :2 * n] + hp[:, :2 * n]
    np.tanh(t, out=t)  # tanh(r/2), tanh(z/2)
    s = t * 0.5
    s += 0.5
    r, z = s[:, :n], s[:, n:]
    hn = hp[:, 2 * n:]
    new = r * hn
    new += xp[:, 2 * n:]
    np.tanh(new, out=new)
    h2 = h - new
    h2 *= z
    h2 += new  # (1 - z) n + z h
    return (h2,), (t, s, new, hn, h)


def _gru_back(dstate, cache):
    (dh,) = dstate
    t, s, new, hn, h = cache
    n = h.shape[1]
    r, z = s[:, :n], s[:, n:]
    dn = new * new
    np.subtract(1, dn, out=dn)
    dn *= dh
    dn *= 1 - z
    dxp = np.empty((h.shape[0], 3 * n), h.dtype)
    np.multiply(dn, hn, out=dxp[:, :n])
    np.subtract(h, new, out=dxp[:, n:2 * n])
    dxp[:, n:2 * n] *= dh
    dxp[:, :2 * n] *= _sigmoid_slope(t)
    dxp[:, 2 * n:] = dn
    dhp = dxp.copy()
    dhp[:, 2 * n:] *= r
    return dxp, dhp, (dh * z,)


CELLS = {"RNN": Cell(1, 1, _rnn_step, _rnn_back, True),
         "LSTM": Cell(4, 2, _lstm_step, _lstm_back, True, (0, 1, 3)),
         "GRU": Cell(3, 1, _gru_step, _gru_back, False, (0, 1))}


def _run(cell: Cell, x, w_ih, w_hh, b_ih, b_hh, reverse: bool, state: State = ()):
    """One layer, one direction from `state` (zeros when empty): hidden states (B, T, H), the
    final state and the cache for `_run_back`."""
    b, t, _ = x.shape
    hsize = w_hh.shape[1]
    scale = cell.scale(hsize, x.dtype)
    bias = b_ih + b_hh if cell.shared else b_ih
    xp = matmul_rows(x, w_ih.T * scale)  # (B, T, gH)
    xp += bias * scale
    w_hp = w_hh.T * scale  # contiguous: a product with a transposed view is slower
    b_hp = b_hh * scale
    state = state or tuple(np.zeros((b, hsize), x.dtype) for _ in range(cell.states))
    h0 = state[0]
    hs = np.empty((b, t, hsize), x.dtype)
    caches: list[Any] = [None] * t
    for s in (range(t - 1, -1, -1) if reverse else range(t)):
        hp = state[0] @ w_hp
        if not cell.shared:
            hp += b_hp
        state, caches[s] = cell.step(xp[:, s], hp, state)
        hs[:, s] = state[0]
    return hs, state, (x, w_ih, w_hh, h0, hs, caches, reverse)


def _run_back(cell: Cell, dhs: np.ndarray, cache, dfinal: tuple = ()):
    """Gradients of `_run` from those of its hidden states and final state (None or absent:
    zero): dx, (dW_ih, dW_hh, db_ih, db_hh) and the gradient of the initial state."""
    x, w_ih, w_hh, h0, hs, caches, reverse = cache
    b, t, _ = x.shape
    gh = w_ih.shape[0]
    dxp = np.empty((b, t, gh), x.dtype)
    dhp = dxp if cell.shared else np.empty((b, t, gh), x.dtype)
    dstate: State = tuple(np.zeros_like(h0) if d is None else d
                          for d in dfinal or (None,) * cell.states)
    for s in (range(t) if reverse else range(t - 1, -1, -1)):
        dxp_s, dhp_s, direct = cell.back((dstate[0] + dhs[:, s], *dstate[1:]), caches[s])
        dxp[:, s] = dxp_s
        if not cell.shared:
            dhp[:, s] = dhp_s
        dh = dhp_s @ w_hh
        if direct[0] is not None:
            dh += direct[0]
        dstate = (dh, *direct[1:])
    hprev = np.empty_like(hs)  # the state each step started from
    if reverse:
        hprev[:, :-1], hprev[:, -1] = hs[:, 1:], h0
    else:
        hprev[:, 1:], hprev[:, 0] = hs[:, :-1], h0
    d2, h2 = dxp.reshape(-1, gh), dhp.reshape(-1, gh)
    db_ih = d2.sum(0)
    return matmul_rows(dxp, w_ih), (d2.T @ x.reshape(b * t, -1), h2.T @ hprev.reshape(b * t, -1),
                                    db_ih, db_ih.copy() if cell.shared else h2.sum(0)), dstate


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
