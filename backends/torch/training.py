"""The PyTorch trainer behind `archdsl train --backend torch` (see archdsl/train.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archdsl.graph import Graph

from .runtime import build, load_state_dict, state_dict


def make_optimizer(params: Any, name: str, args: dict[str, Any]) -> torch.optim.Optimizer:
    a = dict(args)
    if "betas" in a:
        a["betas"] = tuple(a["betas"])
    return {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}[name](
        params, **a)


def loss_fn(name: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if name == "cross_entropy":
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1).long())
    target = target.to(out.dtype).reshape(out.shape)
    if name == "bce_with_logits":
        return F.binary_cross_entropy_with_logits(out, target)
    return F.mse_loss(out, target) if name == "mse" else F.l1_loss(out, target)


class Trainer:
    def __init__(self, graph: Graph, settings: Any):
        torch.manual_seed(settings.seed)
        self.settings = settings
        self.model = build(graph)  # every rank draws the same initial weights from the seed
        self.net: torch.nn.Module = self.model
        if settings.world > 1:
            import torch.distributed as dist
            from torch.nn.parallel import DistributedDataParallel
            if not dist.is_initialized():
                dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            self.net = DistributedDataParallel(self.model)  # averages gradients over ranks
        self.optimizer = make_optimizer(self.model.parameters(), settings.optimizer.name,
                                        settings.optimizer.args)

    def close(self) -> None:
        if self.settings.world > 1:
            import torch.distributed as dist
            dist.barrier()
            dist.destroy_process_group()

    def _inputs(self, batch: dict[str, np.ndarray]) -> list[torch.Tensor]:
        return [torch.from_numpy(np.ascontiguousarray(batch[n])) for n in self.settings.inputs]

    def step(self, batch: dict[str, np.ndarray]) -> float:
        self.net.train()
        out = self.net(*self._inputs(batch))
        out = out[0] if isinstance(out, tuple) else out
        loss = loss_fn(self.settings.loss, out, torch.from_numpy(batch[self.settings.label]))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def predict(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        self.model.eval()
        out = self.model(*self._inputs(batch))
        out = out[0] if isinstance(out, tuple) else out
        return out.float().numpy()

    def weights(self) -> dict[str, np.ndarray]:
        return state_dict(self.model)

    def set_hyperparameters(self, lr: float, momentum: float | None = None) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
            if momentum is not None and "betas" in group:
                group["betas"] = (momentum, group["betas"][1])
            elif momentum is not None:
                group["momentum"] = momentum

    def hyperparameters(self) -> dict[str, float]:
        group = self.optimizer.param_groups[0]
        return {"lr": group["lr"],
                "momentum": group["betas"][0] if "betas" in group else group["momentum"]}

    def state(self) -> dict[str, np.ndarray]:
        out = {f"model/{k}": v for k, v in self.weights().items()}
        for i, s in self.optimizer.state_dict()["state"].items():
            for name, value in s.items():
                out[f"optim/{i}/{name}"] = torch.as_tensor(value).numpy().copy()
        out["rng/torch"] = torch.get_rng_state().numpy().copy()
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        load_state_dict(self.model, {k[6:]: v for k, v in state.items() if k.startswith("model/")})
        opt_state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in state.items():
            if k.startswith("optim/"):
                _, i, name = k.split("/", 2)
                opt_state.setdefault(int(i), {})[name] = torch.from_numpy(v.copy())
        current = self.optimizer.state_dict()
        self.optimizer.load_state_dict({"state": opt_state,
                                        "param_groups": current["param_groups"]})
        torch.set_rng_state(torch.from_numpy(state["rng/torch"].copy()))
