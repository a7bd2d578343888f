"""Padding: the `Pad` layer and the `pad` function, as torch.nn.functional.pad."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import TensorType
from archdsl.ops.conv import PAD_MODES, check_border_padding
from archdsl.ops.registry import Arg, Flops, OpDef, fmt, register, show_value
from archdsl.symbolic import Sym, format_dim

_HINT = "F.pad's order: `(left, right)` pads the last dimension, `(left, right, top, bottom)` " \
        "the last two"


def _pad_norm(op: str):
    def norm(a: dict, ins: list[TensorType]) -> dict:
        (x,) = ins
        padding, mode = a["padding"], a["mode"]
        if not isinstance(padding, (tuple, list)):
            raise Problem("E0402", f"`padding` of `{op}` is a tuple of 2k integers",
                          label=f"got {show_value(padding)}", hint=_HINT)
        for p in padding:
            if isinstance(p, Sym):
                raise Problem("E0405", f"`padding` of `{op}` must be known at compile time",
                              label=f"`{format_dim(p)}` is symbolic")
            if isinstance(p, bool) or not isinstance(p, int):
                raise Problem("E0402", f"`padding` of `{op}` is a tuple of integers",
                              label=f"got {tuple(padding)}", hint=_HINT)
            if p < 0:
                raise Problem("E0403", f"`padding` of `{op}` must not be negative",
                              label=f"got {tuple(padding)}", hint="crop with a slice instead")
        if not padding or len(padding) % 2:
            raise Problem("E0403", f"`padding` of `{op}` needs an even number of values",
                          label=f"got {len(padding)}: {tuple(padding)}", hint=_HINT)
        k = len(padding) // 2
        most = x.rank if mode == "constant" else x.rank - 2
        if k > most:
            where = "" if mode == "constant" else " (never the batch or the channels)"
            raise Problem("E0403", f"`{op}` in mode \"{mode}\" pads at most {max(most, 0)} "
                          f"dimension{'s' if most != 1 else ''} of {fmt(x)}{where}",
                          label=f"{len(padding)} values pad {k} dimensions")
        if a["value"] not in (None, 0.0) and mode != "constant":  # F.pad allows the default
            raise Problem("E0403", f"`value` of `{op}` fills only mode \"constant\"",
                          label=f"mode \"{mode}\" takes its values from the input")
        pairs = [list(padding[2 * i:2 * i + 2]) for i in range(k)]
        check_border_padding(op, mode, pairs, x, [x.rank - 1 - i for i in range(k)])
        return {**a, "padding": list(padding),
                "value": 0.0 if a["value"] is None else float(a["value"])}
    return norm


def _pad_shape(a: dict, ins: list[TensorType]) -> TensorType:
    (x,) = ins
    s = list(x.shape)
    pads = a["padding"]
    for i in range(len(pads) // 2):
        s[x.rank - 1 - i] = s[x.rank - 1 - i] + pads[2 * i] + pads[2 * i + 1]
    return x.with_shape(s)


for _name, _kind in (("Pad", "layer"), ("pad", "function")):
    register(OpDef(
        name=_name, kind=_kind, category="pad",
        args=(Arg("padding", "any"), Arg("mode", "str", "constant", choices=PAD_MODES),
              Arg("value", "float", None)),
        normalize=_pad_norm(_name), shape=_pad_shape, flops=lambda a, ins, out: Flops(),
        stem="pad", output_reusable=True,
        doc="F.pad(x, padding, mode, value): `padding` pairs (before, after) from the last "
            "dimension backwards; `value` fills mode \"constant\" (default 0).",
    ))
