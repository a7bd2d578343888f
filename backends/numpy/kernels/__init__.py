"""Every op's NumPy forward and backward, one file per op family, in one table `KERNELS`.

To add an op `Foo` of the registry (archdsl/ops/): write `forward(a, p, xs, ctx) -> (y, cache)`
and `backward(dy, cache) -> ([dx per input], {param name: dparam})` in the family's file (see
`base.py` for the contract), add `"Foo": Kernel(forward, backward)` to that file's table, add
its cases to tests/numpy/test_numpy_kernels.py and its PyTorch oracle to tests/numpy/
numpy_oracle.py. A test fails while any registry op lacks a kernel or a case.
"""

from __future__ import annotations

from . import (
    activation,
    activation_more,
    arith,
    attention,
    conv,
    dense,
    dropout,
    elementwise,
    norm,
    pool,
    recurrent,
    reduce,
    shape,
    split,
)
from .base import Ctx, Kernel

KERNELS: dict[str, Kernel] = {
    **activation.KERNELS, **arith.KERNELS, **attention.KERNELS, **conv.KERNELS, **dense.KERNELS,
    **norm.KERNELS, **pool.KERNELS, **recurrent.KERNELS, **shape.KERNELS,
    **activation_more.KERNELS, **dropout.KERNELS, **elementwise.KERNELS, **reduce.KERNELS,
    **split.KERNELS,
}

__all__ = ["KERNELS", "Ctx", "Kernel"]
