"""Every op of the language, registered on import. See `registry` for the declaration format."""

from archdsl.ops import (  # noqa: F401
    activation,
    arith,
    attention,
    cells,
    conv,
    dense,
    dropout,
    elementwise,
    norm,
    pad,
    recurrent,
    reduce,
    shape,
    split,
    upsample,
)
from archdsl.ops.registry import REGISTRY, OpDef, functions, layers

__all__ = ["REGISTRY", "OpDef", "functions", "layers"]
