"""RNN, LSTM and GRU, batch first, with PyTorch's gates (LSTM i,f,g,o; GRU r,z,n) and its two
biases per layer and direction. With `return_sequences=false` the result is PyTorch's `h_n` of
the last layer: forward after step T and backward after step 1, concatenated."""

from __future__ import annotations

from archdsl.graph import ParamSpec, TensorType
from archdsl.ops.registry import Arg, Flops, OpDef, need_float, need_known, need_rank, register

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _norm(op: str):
    def norm(a: dict, ins: list[TensorType]) -> dict:
        (x,) = ins
        need_float(op, x)
        need_rank(op, x, (3,), "[B, T, F]")
        return {**a, "input_size": need_known(op, "feature size", x.shape[2])}
    return norm


def _shape(a: dict, ins: list[TensorType]) -> TensorType:
    (x,) = ins
    width = a["hidden"] * (2 if a["bidirectional"] else 1)
    if a["return_sequences"]:
        return x.with_shape((x.shape[0], x.shape[1], width))
    return x.with_shape((x.shape[0], width))


def _params(op: str):
    def params(a: dict, ins: list[TensorType]) -> list[ParamSpec]:
        g, h = GATES[op], a["hidden"]
        dirs = ("", "_reverse") if a["bidirectional"] else ("",)
        out = []
        for layer in range(a["layers"]):
            f = a["input_size"] if layer == 0 else h * len(dirs)
            for suffix in dirs:
                out += [ParamSpec(name=f"weight_ih_l{layer}{suffix}", shape=(g * h, f)),
                        ParamSpec(name=f"weight_hh_l{layer}{suffix}", shape=(g * h, h)),
                        ParamSpec(name=f"bias_ih_l{layer}{suffix}", shape=(g * h,)),
                        ParamSpec(name=f"bias_hh_l{layer}{suffix}", shape=(g * h,))]
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
              Arg("dropout", "float", 0.0, min=0, max=1, max_exclusive=True)),
        normalize=_norm(_op), shape=_shape, params=_params(_op), flops=_flops(_op),
        doc=f"torch.nn.{_op} with batch_first=True.",
    ))
