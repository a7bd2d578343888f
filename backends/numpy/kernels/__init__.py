"""Every op's NumPy forward and backward, one file per op family, in one table `KERNELS`."""

from __future__ import annotations

from . import activation, arith, attention, conv, dense, norm, pool, recurrent, shape
from .base import Ctx, Kernel

KERNELS: dict[str, Kernel] = {
    **activation.KERNELS, **arith.KERNELS, **attention.KERNELS, **conv.KERNELS,
    **dense.KERNELS, **norm.KERNELS, **pool.KERNELS, **recurrent.KERNELS, **shape.KERNELS,
}

__all__ = ["KERNELS", "Ctx", "Kernel"]
