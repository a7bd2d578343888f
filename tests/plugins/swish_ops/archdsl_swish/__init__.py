"""An example archdsl plugin (docs/plugins.md): two ops, declared once and lowered per
backend.

- `Swish(beta=1.0)`: x * sigmoid(beta * x), in PyTorch, Keras, NumPy and ONNX;
- `Scale(init=1.0)`: x times a learned `weight` over the last dimension, in PyTorch and
  NumPy only (the Keras and ONNX backends refuse it).

The module declares the ops when imported; the backends' rules live in modules of their
own, imported here, which import no framework at the top.
"""

from archdsl.graph import ParamSpec, TensorType
from archdsl.ops.plugin import Arg, Flops, OpDef, Problem, lower, numel, register
from archdsl.ops.registry import need_float

from . import numpy_kernels, onnx_rules, tf_rules, torch_rules


def _same(op: str):
    def shape(args: dict, ins: list[TensorType]) -> TensorType:
        need_float(op, ins[0])
        return ins[0]
    return shape


def _scale_normalize(args: dict, ins: list[TensorType]) -> dict:
    (x,) = ins
    dim = x.shape[-1] if x.rank else None
    if not isinstance(dim, int):
        raise Problem("E0310", "the last dimension of `Scale` must be known to size its weight",
                      label=f"it is {dim}", hint="declare it as a number in the input's type")
    return {**args, "dim": dim}


register(OpDef(
    name="Swish", kind="layer", category="activation",
    args=(Arg("beta", "float", 1.0, min=0),),
    shape=_same("Swish"),
    flops=lambda args, ins, out: Flops(other=5 * numel(out.shape)),
    doc="x * sigmoid(beta * x) (Ramachandran et al., 2017).",
))

register(OpDef(
    name="Scale", kind="layer", category="dense",
    args=(Arg("init", "float", 1.0),),
    normalize=_scale_normalize, derives=("dim",), shape=_same("Scale"),
    params=lambda args, ins: [ParamSpec(name="weight", shape=(args["dim"],),
                                        init=("constant", args["init"]))],
    flops=lambda args, ins, out: Flops(other=numel(out.shape)),
    doc="x * weight, a learned scale per feature of the last dimension.",
))

lower("Swish", "torch", forward=torch_rules.swish)
lower("Scale", "torch", construct=torch_rules.scale_module, forward=torch_rules.call_module,
      helpers=torch_rules.HELPERS)
lower("Swish", "numpy", kernel=numpy_kernels.SWISH)
lower("Scale", "numpy", kernel=numpy_kernels.SCALE)
lower("Swish", "onnx", lower=onnx_rules.swish)
lower("Swish", "tensorflow", forward=tf_rules.swish)
