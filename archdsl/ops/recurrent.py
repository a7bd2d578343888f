"""RNN, LSTM and GRU, batch first, with PyTorch's gates (LSTM i,f,g,o; GRU r,z,n) and its two
biases per layer and direction. With `return_sequences=false` the result is PyTorch's `h_n` of
the last layer: forward after step T and backward after step 1, concatenated. Initial states
and, with `return_state=true`, final states are [layers·directions, B, hidden]."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import ParamSpec, TensorType
from archdsl.ops.init import fan_in_uniform
from archdsl.ops.registry import (
    Arg,
    Flops,
    OpDef,
    fmt,
    need_float,
    need_known,
    need_rank,
    register,
)

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _state_shape(a: dict, x: TensorType) -> TensorType:
    """h_0, h_n (and c_0, c_n): [layers * directions, B, hidden], PyTorch's layout."""
    dirs = 2 if a["bidirectional"] else 1
    return x.with_shape((a["layers"] * dirs, x.shape[0], a["hidden"]))


def _norm(op: str):
    def norm(a: dict, ins: list[TensorType]) -> dict:
        x, *state = ins
        need_float(op, x)
        need_rank(op, x, (3,), "[B, T, F]")
        if op == "LSTM" and len(state) == 1:
            raise Problem("E0401", "`LSTM` takes `x` alone or `(x, h0, c0)`",
                          label="got `h0` without `c0`", hint="pass both initial states")
        want = _state_shape(a, x)
        for name, t in zip(("h0", "c0"), state, strict=False):
            if t.shape != want.shape or t.dtype != x.dtype:
                raise Problem("E0303", f"the initial state `{name}` of `{op}` must be "
                              f"{x.dtype}{fmt(want)} (layers·directions, batch, hidden)",
                              label=f"got {t.dtype}{fmt(t)} for the input {x.dtype}{fmt(x)}")
        return {**a, "input_size": need_known(op, "feature size", x.shape[2])}
    return norm


def _shape(op: str):
    def shape(a: dict, ins: list[TensorType]) -> TensorType | list[TensorType]:
        """What `return_sequences` selects, then with `return_state` h_n (and c_n)."""
        x = ins[0]
        width = a["hidden"] * (2 if a["bidirectional"] else 1)
        if a["return_sequences"]:
            out = x.with_shape((x.shape[0], x.shape[1], width))
        else:
            out = x.with_shape((x.shape[0], width))
        if not a["return_state"]:
            return out
        return [out, *[_state_shape(a, x)] * (2 if op == "LSTM" else 1)]
    return shape


def _params(op: str):
    def params(a: dict, ins: list[TensorType]) -> list[ParamSpec]:
        g, h = GATES[op], a["hidden"]
        dirs = ("", "_reverse") if a["bidirectional"] else ("",)
        out = []
        init = fan_in_uniform("weight_hh_l0")  # every weight and bias: U(+-1/sqrt(hidden))
        for layer in range(a["layers"]):
            f = a["input_size"] if layer == 0 else h * len(dirs)
            for suffix in dirs:
                out += [ParamSpec(name=f"weight_ih_l{layer}{suffix}", shape=(g * h, f), init=init),
                        ParamSpec(name=f"weight_hh_l{layer}{suffix}", shape=(g * h, h), init=init),
                        ParamSpec(name=f"bias_ih_l{layer}{suffix}", shape=(g * h,), init=init),
                        ParamSpec(name=f"bias_hh_l{layer}{suffix}", shape=(g * h,), init=init)]
        return out
    return params


def _flops(op: str):
    def flops(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
        """Per step, layer and direction: 2*g*H*(F+H) multiply-adds of the two products."""
        x = ins[0]
        g, h = GATES[op], a["hidden"]
        dirs = 2 if a["bidirectional"] else 1
        steps = x.shape[0] * x.shape[1]
        total = 0
        other = 0
        for layer in range(a["layers"]):
            f = a["input_size"] if layer == 0 else h * dirs
            total = total + dirs * steps * 2 * g * h * (f + h)
            other = other + dirs * steps * g * h * 4
        return Flops(flops=total, other=other)
    return flops


for _op in GATES:
    register(OpDef(
        name=_op, kind="layer", category="recurrent",
        # `layers` bounded like a repeat (Limits.max_repeat's default): its parameters are
        # listed one by one, so layers=2**40 would exhaust memory before any other check
        args=(Arg("hidden", "int", min=1), Arg("layers", "int", 1, min=1, max=10_000),
              Arg("bidirectional", "bool", False), Arg("return_sequences", "bool", True),
              Arg("dropout", "float", 0.0, min=0, max=1, max_exclusive=True),
              Arg("return_state", "bool", False)),
        inputs=("x", "h0", "c0") if _op == "LSTM" else ("x", "h0"), min_inputs=1,
        normalize=_norm(_op), shape=_shape(_op), params=_params(_op), flops=_flops(_op),
        derives=("input_size",), training=lambda a: a["dropout"] > 0 and a["layers"] > 1,
        multi_output=lambda a: a["return_state"],
        doc=f"torch.nn.{_op} with batch_first=True; called with initial state "
            f"{'(x, h0, c0)' if _op == 'LSTM' else '(x, h0)'}; with return_state the result "
            f"is (output, h_n{', c_n' if _op == 'LSTM' else ''}).",
    ))
