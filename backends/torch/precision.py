"""`--precision` and `--device` in the PyTorch trainers: autocast around the forward pass and
the loss, and for fp16 a gradient scaler (weights and optimizer state stay float32)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """One optimizer's mixed-precision step: `with amp.autocast(): loss = ...`, then
    `amp.backward_step(loss, optimizer)`."""

    def __init__(self, precision: str, device: torch.device, sharded: bool = False):
        self.dtype = DTYPES[precision]
        if precision == "bf16" and device.type == "cuda" and \
                not torch.cuda.is_bf16_supported():
            raise ValueError(f"{device} has no bfloat16 support; use --precision fp16")
        self.device_type = device.type
        self.scaler: torch.amp.GradScaler | None = None
        if precision == "fp16" and sharded:  # every rank skips a step when any shard overflowed
            from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler
            self.scaler = ShardedGradScaler(device.type)
        elif precision == "fp16":
            self.scaler = torch.amp.GradScaler(device.type)

    def autocast(self) -> AbstractContextManager[Any]:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward and step; with fp16 the loss is scaled, and a step whose gradients
        overflowed is skipped while the scale backs off (GradScaler's rules)."""
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        """The scaler's scale and growth counter, so a resumed fp16 run continues exactly."""
        if self.scaler is None:
            return {}
        s = self.scaler.state_dict()
        return {f"{prefix}/scale": np.array(s["scale"], np.float64),
                f"{prefix}/growth_tracker": np.array(s["_growth_tracker"], np.int64)}

    def load_state(self, state: dict[str, np.ndarray], prefix: str) -> None:
        if self.scaler is not None and f"{prefix}/scale" in state:
            self.scaler.load_state_dict({**self.scaler.state_dict(),
                                         "scale": float(state[f"{prefix}/scale"]),
                                         "_growth_tracker": int(state[f"{prefix}/growth_tracker"])})
