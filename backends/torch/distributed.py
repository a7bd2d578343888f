"""Training in several processes under torchrun: `--strategy ddp` replicates the model
(`DistributedDataParallel`), `--strategy fsdp` shards it (FSDP2, `fully_shard`).

FSDP2 wraps each outermost block instance (`archdsl.sharding.units`: the units `analyze
--devices N --strategy fsdp` counts) and then the root, which keeps every parameter outside
blocks. Parameters, gradients and optimizer state are then DTensor shards; checkpoints and a
run's `model.safetensors` gather them into full tensors under the usual names (every rank
takes part, rank 0 receives them and writes), so a checkpoint written under FSDP resumes under
DDP or in one process, and the reverse.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from archdsl.graph import Graph
from archdsl.sharding import units


def init(device: torch.device) -> None:
    """Join the process group; on GPUs each process first makes its own device current (NCCL
    and FSDP's device mesh take the current one)."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def replicate(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP: every rank holds the whole model; gradients are averaged over the ranks (into
    buckets the gradients are views of, so they are not held twice)."""
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                   else None, gradient_as_bucket_view=True)


def shard(model: nn.Module, graph: Graph) -> nn.Module:
    """FSDP2 in place: each outermost block, then the root."""
    from torch.distributed.fsdp import fully_shard
    for path in units(graph):
        fully_shard(model.get_submodule(path))
    fully_shard(model)
    return model


def _full() -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions
    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Full weights and buffers under their usual names, on rank 0's CPU; other ranks get an
    empty dict. Every rank must call it."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict
    return get_model_state_dict(model, options=_full())


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer
                         ) -> dict[int, dict[str, Any]]:
    """Full per-parameter optimizer state (keyed by the parameter's index, as
    `optimizer.state_dict()` keys it), on rank 0's CPU; other ranks get an empty dict. Every
    rank must call it."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
    optim = get_optimizer_state_dict(model, optimizer, options=_full())
    index = {name: i for i, (name, _) in enumerate(model.named_parameters())}
    return {index[name]: s for name, s in optim.get("state", {}).items()}


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer,
                    weights: dict[str, torch.Tensor],
                    optim: dict[int, dict[str, torch.Tensor]]) -> None:
    """Shard full weights and optimizer state (as `full_weights` and `full_optimizer_state`
    return them) over the ranks; every rank passes the same values."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict
    names = [name for name, _ in model.named_parameters()]
    (group,) = optimizer.state_dict()["param_groups"]  # archdsl's optimizers have one
    set_state_dict(model, optimizer, model_state_dict=weights,
                   optim_state_dict={"state": {names[i]: s for i, s in optim.items()},
                                     "param_groups": [{**group, "params": names}]},
                   options=StateDictOptions(full_state_dict=True))
