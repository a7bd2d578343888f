"""Every op's NumPy forward and backward, one file per op family, in one table `KERNELS`.

To add an op `Foo` of the registry (archdsl/ops/): write `forward(a, p, xs, ctx) -> (y, cache)`
and `backward(dy, cache) -> ([dx per input], {param name: dparam})` in the family's file (see
`base.py` for the contract), add `"Foo": Kernel(forward, backward)` to that file's table, add
its cases to tests/numpy/test_numpy_kernels.py and its PyTorch oracle to tests/numpy/
numpy_oracle.py. A test fails while any registry op lacks a kernel or a case.

`extended.KERNELS` wraps kernels of conv.py, pool.py, norm.py and dense.py with the arguments
LANGUAGE.md section 10 added to those ops, so it comes last and replaces their entries.
"""

from __future__ import annotations

from . import (
    activation,
    activation_more,
    adaptive_pool,
    arith,
    attention,
    cells,
    conv,
    dense,
    dropout,
    elementwise,
    extended,
    group_norm,
    grouped_attention,
    memory,
    norm,
    pad,
    pool,
    recurrent,
    reduce,
    rms_norm,
    shape,
    split,
    upsample,
)
from .base import Ctx, Kernel

memory.keep_freed_memory()  # arrays of a few MB stop faulting their pages in at every op

KERNELS: dict[str, Kernel] = {
    **activation.KERNELS, **arith.KERNELS, **attention.KERNELS, **conv.KERNELS, **dense.KERNELS,
    **norm.KERNELS, **pool.KERNELS, **recurrent.KERNELS, **shape.KERNELS,
    **activation_more.KERNELS, **adaptive_pool.KERNELS, **cells.KERNELS, **dropout.KERNELS,
    **elementwise.KERNELS, **group_norm.KERNELS, **grouped_attention.KERNELS, **pad.KERNELS,
    **reduce.KERNELS, **rms_norm.KERNELS, **split.KERNELS, **upsample.KERNELS,
    **extended.KERNELS,
}

__all__ = ["KERNELS", "Ctx", "Kernel"]
