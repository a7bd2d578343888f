"""Recurrent layers and cells. A layer is one ONNX RNN/LSTM/GRU node per layer, time-major,
both directions in one node, with PyTorch's gates reordered to ONNX's; its initial states
are sliced per layer and its final states concatenated back in PyTorch's layout
[layers·directions, B, H]. A cell is one step written out: its two products, then PyTorch's
gate formulas."""

from __future__ import annotations

from ..site import Site
from .dense import project

# ONNX's gate order as PyTorch's gate indices: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h.
_GATES = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}


def _weights(s: Site, layer: int, dirs: tuple[str, ...]) -> tuple[str, str, str]:
    """ONNX's W [dirs, g*H, F], R [dirs, g*H, H] and B [dirs, 2*g*H] of one layer, from
    PyTorch's weight_ih/weight_hh/bias_ih/bias_hh with the gates reordered."""
    key = (s.node.layer, layer)
    if key in s.cache:  # a shared layer converts its weights once
        return s.cache[key]
    h, gates = s.args["hidden"], _GATES[s.node.op]
    rows = s.const([k * h + i for k in gates for i in range(h)], "gates")
    first = s.const([0], "axis")

    def reordered(name: str) -> str:
        p = s.param(name)
        return p if gates == [0] else s.op("Gather", p, rows, axis=0, hint=f"{name}/gates")

    def stacked(tensors: list[str], hint: str) -> str:
        parts = [s.op("Unsqueeze", t, first, hint=hint) for t in tensors]
        return parts[0] if len(parts) == 1 else s.op("Concat", *parts, axis=0, hint=hint)

    w = stacked([reordered(f"weight_ih_l{layer}{d}") for d in dirs], f"W_l{layer}")
    r = stacked([reordered(f"weight_hh_l{layer}{d}") for d in dirs], f"R_l{layer}")
    b = stacked([s.op("Concat", reordered(f"bias_ih_l{layer}{d}"),
                      reordered(f"bias_hh_l{layer}{d}"), axis=0, hint=f"B_l{layer}{d}")
                 for d in dirs], f"B_l{layer}")
    s.cache[key] = (w, r, b)
    return w, r, b


def recurrent(s: Site) -> str | list[str]:
    a, op = s.args, s.node.op
    dirs = ("", "_reverse") if a["bidirectional"] else ("",)
    n = len(dirs)
    states = len(s.xs) - 1  # h0, and c0 for an LSTM, when given
    outputs = 3 if op == "LSTM" and a["return_state"] else 2
    merge = s.const([0, 0, -1], "merge")
    x = s.op("Transpose", s.x, perm=[1, 0, 2], hint="time_major")  # (T, B, F)
    finals: list[list[str]] = []
    for layer in range(a["layers"]):
        given = [s.op("Slice", state, s.const([layer * n], "start"),
                      s.const([(layer + 1) * n], "end"), s.const([0], "axis"),
                      hint=f"l{layer}_{name}")
                 for state, name in zip(s.xs[1:], ("h0", "c0"), strict=False)]
        state_inputs = ["", *given] if states else []  # after sequence_lens, unused
        y, *last = s.op(op, x, *_weights(s, layer, dirs), *state_inputs, outputs=outputs,
                        hidden_size=a["hidden"], hint=f"l{layer}",
                        direction="bidirectional" if n == 2 else "forward",
                        linear_before_reset=1 if op == "GRU" else None)
        finals.append(last)  # Y_h (and Y_c): (dirs, B, H)
        if layer < a["layers"] - 1 or a["return_sequences"]:
            # (T, dirs, B, H) -> (T, B, dirs * H): the directions side by side
            x = s.op("Reshape", s.op("Transpose", y, perm=[0, 2, 1, 3], hint=f"l{layer}_out"),
                     merge, hint=f"l{layer}_out")
    if a["return_sequences"]:  # (T, B, dirs * H) -> (B, T, dirs * H)
        out = s.op("Transpose", x, perm=[1, 0, 2], hint="batch_major")
    else:  # PyTorch's h_n of the last layer: (dirs, B, H) -> (B, dirs * H), forward first
        out = s.op("Reshape", s.op("Transpose", finals[-1][0], perm=[1, 0, 2]),
                   s.const([0, -1], "merge"))
    if not a["return_state"]:
        return out
    # h_n (and c_n): every layer's final states, (layers * dirs, B, H)
    ends = [[f[i] for f in finals] for i in range(outputs - 1)]
    return [out, *[e[0] if len(e) == 1 else s.op("Concat", *e, axis=0, hint=name)
                   for e, name in zip(ends, ("h_n", "c_n"), strict=False)]]


def cell(s: Site) -> str | list[str]:
    """One step of PyTorch's RNNCell (tanh), GRUCell or LSTMCell; without a state given,
    the state is zeros, so its product drops out and only its bias remains."""
    op, a = s.node.op, s.args
    x, *state = s.xs
    bias = a["bias"]
    gi = project(s, x, 2, s.param("weight_ih"), s.param("bias_ih") if bias else None, "ih")
    if state:
        gh = project(s, state[0], 2, s.param("weight_hh"), s.param("bias_hh") if bias else None,
                     "hh")
    else:
        gh = s.param("bias_hh") if bias else None

    def plus(u: str, v: str | None, hint: str) -> str:
        return u if v is None else s.op("Add", u, v, hint=hint)

    if op == "RNNCell":
        return s.op("Tanh", plus(gi, gh, "gates"))
    h = a["hidden"]
    dtype = s.ins[0].dtype
    if op == "GRUCell":  # r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        split = s.const([h, h, h], "split")
        ri, zi, ni = s.op("Split", gi, split, axis=1, outputs=3, hint="ih_gates")
        rh, zh, nh = s.op("Split", gh, split, axis=0 if not state else 1, outputs=3,
                          hint="hh_gates") if gh is not None else (None, None, None)
        r = s.op("Sigmoid", plus(ri, rh, "r"), hint="r")
        z = s.op("Sigmoid", plus(zi, zh, "z"), hint="z")
        n = s.op("Tanh", ni if nh is None else s.op("Add", ni, s.op("Mul", r, nh, hint="rn"),
                                                       hint="n"), hint="n")
        keep = s.op("Mul", s.op("Sub", s.scalar(1.0, dtype), z, hint="1-z"), n, hint="new")
        return keep if not state else s.op("Add", keep, s.op("Mul", z, state[0], hint="old"))
    gates = plus(gi, gh, "gates")  # LSTMCell: i, f, g, o
    i, f, g, o = s.op("Split", gates, s.const([h] * 4, "split"), axis=1, outputs=4,
                      hint="gates")
    c = s.op("Mul", s.op("Sigmoid", i, hint="i"), s.op("Tanh", g, hint="g"), hint="input")
    if state:
        c = s.op("Add", s.op("Mul", s.op("Sigmoid", f, hint="f"), state[1], hint="forget"), c,
                 hint="c")
    return [s.op("Mul", s.op("Sigmoid", o, hint="o"), s.op("Tanh", c), hint="h"), c]


RULES = {
    "RNN": recurrent,
    "LSTM": recurrent,
    "GRU": recurrent,
    "RNNCell": cell,
    "GRUCell": cell,
    "LSTMCell": cell,
}
