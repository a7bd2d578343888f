"""One step of a recurrent layer: `RNNCell`, `GRUCell` and `LSTMCell`, with PyTorch's gates,
parameters and initialisation. Called with `x` alone a cell starts from zero state; `LSTMCell`
takes `(x, h, c)` and gives `(h', c')`."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import ParamSpec, TensorType
from archdsl.ops.init import fan_in_uniform
from archdsl.ops.recurrent import GATES
from archdsl.ops.registry import (
    Arg,
    Flops,
    OpDef,
    always,
    fmt,
    need_float,
    need_known,
    need_rank,
    never,
    register,
)
from archdsl.symbolic import format_shape


def _cell_norm(op: str):
    def norm(a: dict, ins: list[TensorType]) -> dict:
        x, *state = ins
        need_float(op, x)
        need_rank(op, x, (2,), "[B, F]")
        if op == "LSTMCell" and len(state) == 1:
            raise Problem("E0401", "`LSTMCell` takes `x` alone or `(x, h, c)`",
                          label="got `h` without `c`", hint="pass both states: `cell(x, h, c)`")
        want = (x.shape[0], a["hidden"])
        for name, t in zip(("h", "c"), state, strict=False):
            if t.shape != want or t.dtype != x.dtype:
                raise Problem("E0303", f"the state `{name}` of `{op}` must be "
                              f"{x.dtype}{format_shape(want)}",
                              label=f"got {t.dtype}{fmt(t)} for the input {x.dtype}{fmt(x)}")
        return {**a, "input_size": need_known(op, "feature size", x.shape[1])}
    return norm


def _cell_params(op: str):
    def params(a: dict, ins: list[TensorType]) -> list[ParamSpec]:
        g, h = GATES[op.removesuffix("Cell")], a["hidden"]
        init = fan_in_uniform("weight_hh")  # every weight and bias: U(+-1/sqrt(hidden))
        ps = [ParamSpec(name="weight_ih", shape=(g * h, a["input_size"]), init=init),
              ParamSpec(name="weight_hh", shape=(g * h, h), init=init)]
        if a["bias"]:
            ps += [ParamSpec(name="bias_ih", shape=(g * h,), init=init),
                   ParamSpec(name="bias_hh", shape=(g * h,), init=init)]
        return ps
    return params


def _cell_flops(op: str):
    def flops(a: dict, ins: list[TensorType], out: TensorType) -> Flops:
        """2·g·H·(F + H) per example: the two products (LANGUAGE.md 10.3)."""
        g, h, b = GATES[op.removesuffix("Cell")], a["hidden"], ins[0].shape[0]
        return Flops(flops=b * 2 * g * h * (a["input_size"] + h), other=b * g * h * 4)
    return flops


for _op in GATES:
    _name = f"{_op}Cell"
    _lstm = _op == "LSTM"
    register(OpDef(
        name=_name, kind="layer", category="recurrent",
        args=(Arg("hidden", "int", min=1), Arg("bias", "bool", True)),
        inputs=("x", "h", "c") if _lstm else ("x", "h"), min_inputs=1,
        normalize=_cell_norm(_name), params=_cell_params(_name), flops=_cell_flops(_name),
        shape=(lambda a, ins: [ins[0].with_shape((ins[0].shape[0], a["hidden"]))] * 2) if _lstm
        else (lambda a, ins: ins[0].with_shape((ins[0].shape[0], a["hidden"]))),
        multi_output=always if _lstm else never, derives=("input_size",),
        stem="cell",
        doc=f"torch.nn.{_name}: (x [B, F]"
            + (", h [B, H], c [B, H]) -> (h', c')" if _lstm else ", h [B, H]) -> h'")
            + "; the state starts from zeros when only x is given.",
    ))
