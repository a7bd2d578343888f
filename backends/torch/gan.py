"""The PyTorch side of adversarial training (the losses are defined in archdsl/gan.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archdsl.graph import GanGraph

from .runtime import build, load_state_dict, state_dict
from .training import make_optimizer


def d_loss(loss: str, r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    r, f = r.reshape(-1), f.reshape(-1)
    if loss in ("minimax", "nonsaturating"):
        return F.softplus(-r).mean() + F.softplus(f).mean()
    if loss == "hinge":
        return F.relu(1 - r).mean() + F.relu(1 + f).mean()
    if loss == "wasserstein":
        return f.mean() - r.mean()
    return 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean()


def g_loss(loss: str, f: torch.Tensor) -> torch.Tensor:
    f = f.reshape(-1)
    if loss == "minimax":
        return -F.softplus(f).mean()
    if loss == "nonsaturating":
        return F.softplus(-f).mean()
    if loss in ("hinge", "wasserstein"):
        return -f.mean()
    return 0.5 * ((f - 1) ** 2).mean()


class GanTrainer:
    def __init__(self, gan: GanGraph, settings: Any):
        torch.manual_seed(settings.seed)
        self.settings = settings
        self.g = build(gan.generator)
        self.d = build(gan.discriminator)
        self.g_opt = make_optimizer(self.g.parameters(), settings.g_optimizer.name,
                                    settings.g_optimizer.args)
        self.d_opt = make_optimizer(self.d.parameters(), settings.d_optimizer.name,
                                    settings.d_optimizer.args)

    def d_step(self, real: np.ndarray, z: np.ndarray) -> float:
        self.g.train()
        self.d.train()
        with torch.no_grad():
            fake = self.g(torch.from_numpy(z))
        loss = d_loss(self.settings.loss, self.d(torch.from_numpy(real)), self.d(fake))
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        if self.settings.loss == "wasserstein":
            with torch.no_grad():
                for p in self.d.parameters():
                    p.clamp_(-self.settings.clip, self.settings.clip)
        return float(loss.detach())

    def g_step(self, z: np.ndarray) -> float:
        self.g.train()
        self.d.train()
        loss = g_loss(self.settings.loss, self.d(self.g(torch.from_numpy(z))))
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.g_opt.step()  # the discriminator's gradients from this step are never applied
        return float(loss.detach())

    @torch.no_grad()
    def sample(self, z: np.ndarray) -> np.ndarray:
        self.g.eval()
        return self.g(torch.from_numpy(z)).numpy()

    def state(self) -> dict[str, np.ndarray]:
        out = {f"g/{k}": v for k, v in state_dict(self.g).items()}
        out.update({f"d/{k}": v for k, v in state_dict(self.d).items()})
        for side, opt in (("g_opt", self.g_opt), ("d_opt", self.d_opt)):
            for i, s in opt.state_dict()["state"].items():
                for name, value in s.items():
                    out[f"{side}/{i}/{name}"] = torch.as_tensor(value).numpy().copy()
        out["rng/torch"] = torch.get_rng_state().numpy().copy()
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for prefix, model in (("g/", self.g), ("d/", self.d)):
            load_state_dict(model, {k[2:]: v for k, v in state.items() if k.startswith(prefix)})
        for side, opt in (("g_opt", self.g_opt), ("d_opt", self.d_opt)):
            inner: dict[int, dict[str, torch.Tensor]] = {}
            for k, v in state.items():
                if k.startswith(side + "/"):
                    _, i, name = k.split("/", 2)
                    inner.setdefault(int(i), {})[name] = torch.from_numpy(v.copy())
            opt.load_state_dict({"state": inner,
                                 "param_groups": opt.state_dict()["param_groups"]})
        torch.set_rng_state(torch.from_numpy(state["rng/torch"].copy()))
