"""The PyTorch side of adversarial training (the losses are defined in archdsl/gan.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archdsl.graph import GanGraph

from .precision import Precision
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
        self.device = torch.device(settings.device)
        self.g = build(gan.generator).to(self.device)
        self.d = build(gan.discriminator).to(self.device)
        self.g_opt = make_optimizer(self.g.parameters(), settings.g_optimizer.name,
                                    settings.g_optimizer.args)
        self.d_opt = make_optimizer(self.d.parameters(), settings.d_optimizer.name,
                                    settings.d_optimizer.args)
        self.g_amp = Precision(settings.precision, self.device)
        self.d_amp = Precision(settings.precision, self.device)

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device)

    def _generate(self, z: np.ndarray | None, cond: Sequence[np.ndarray]
                  ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The generator's sample for latents `z` (None without one) and conditions `cond`,
        and the conditions as tensors for the discriminator."""
        given = [self._tensor(c) for c in cond]
        return self.g(*([] if z is None else [self._tensor(z)]), *given), given

    def d_step(self, real: np.ndarray, z: np.ndarray | None,
               real_cond: Sequence[np.ndarray] = (), fake_cond: Sequence[np.ndarray] = ()
               ) -> float:
        self.g.train()
        self.d.train()
        with torch.no_grad(), self.d_amp.autocast():
            fake, given = self._generate(z, fake_cond)
        with self.d_amp.autocast():
            scores = self.d(self._tensor(real), *map(self._tensor, real_cond))
            loss = d_loss(self.settings.loss, scores.float(), self.d(fake, *given).float())
        self.d_opt.zero_grad(set_to_none=True)
        self.d_amp.backward_step(loss, self.d_opt)
        if self.settings.loss == "wasserstein":
            with torch.no_grad():
                for p in self.d.parameters():
                    p.clamp_(-self.settings.clip, self.settings.clip)
        return float(loss.detach())

    def g_step(self, z: np.ndarray | None, cond: Sequence[np.ndarray] = ()) -> float:
        self.g.train()
        self.d.train()
        with self.g_amp.autocast():
            fake, given = self._generate(z, cond)
            loss = g_loss(self.settings.loss, self.d(fake, *given).float())
        self.g_opt.zero_grad(set_to_none=True)
        # the discriminator's gradients from this step are never applied
        self.g_amp.backward_step(loss, self.g_opt)
        return float(loss.detach())

    @torch.no_grad()
    def sample(self, z: np.ndarray | None, cond: Sequence[np.ndarray] = ()) -> np.ndarray:
        self.g.eval()
        with self.g_amp.autocast():
            return self._generate(z, cond)[0].float().cpu().numpy()

    def state(self) -> dict[str, np.ndarray]:
        out = {f"g/{k}": v for k, v in state_dict(self.g).items()}
        out.update({f"d/{k}": v for k, v in state_dict(self.d).items()})
        for side, opt in (("g_opt", self.g_opt), ("d_opt", self.d_opt)):
            for i, s in opt.state_dict()["state"].items():
                for name, value in s.items():
                    out[f"{side}/{i}/{name}"] = torch.as_tensor(value).cpu().numpy().copy()
        out["rng/torch"] = torch.get_rng_state().numpy().copy()
        if self.device.type == "cuda":
            out["rng/cuda"] = torch.cuda.get_rng_state(self.device).numpy().copy()
        return {**out, **self.g_amp.state("g_amp"), **self.d_amp.state("d_amp")}

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
        if self.device.type == "cuda" and "rng/cuda" in state:
            torch.cuda.set_rng_state(torch.from_numpy(state["rng/cuda"].copy()), self.device)
        self.g_amp.load_state(state, "g_amp")
        self.d_amp.load_state(state, "d_amp")
