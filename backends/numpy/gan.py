"""The NumPy side of adversarial training (the losses are defined in archdsl/gan.py).

Every loss there is a mean over the batch of a function of one logit, so its gradient with
respect to the real and the generated logits can be taken apart, and the discriminator is run
(and differentiated) once on the real batch and once on the generated one, as PyTorch does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from archdsl.graph import GanGraph

from . import build, load_state_dict, state_dict
from .kernels.base import sigmoid
from .nn import Module
from .optim import make_optimizer
from .training import rng_state, set_rng_state

Grad = tuple[float, np.ndarray]


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, x)


def d_real(loss: str, r: np.ndarray) -> Grad:
    """The discriminator loss's term in the real logits, and its gradient."""
    n = r.size
    if loss in ("minimax", "nonsaturating"):
        return float(_softplus(-r).mean()), -sigmoid(-r) / n
    if loss == "hinge":
        return float(np.maximum(1 - r, 0).mean()), -(1 - r > 0).astype(r.dtype) / n
    if loss == "wasserstein":
        return float(-r.mean()), np.full_like(r, -1 / n)
    return float(0.5 * ((r - 1) ** 2).mean()), (r - 1) / n


def d_fake(loss: str, f: np.ndarray) -> Grad:
    """The discriminator loss's term in the generated logits, and its gradient."""
    n = f.size
    if loss in ("minimax", "nonsaturating"):
        return float(_softplus(f).mean()), sigmoid(f) / n
    if loss == "hinge":
        return float(np.maximum(1 + f, 0).mean()), (1 + f > 0).astype(f.dtype) / n
    if loss == "wasserstein":
        return float(f.mean()), np.full_like(f, 1 / n)
    return float(0.5 * (f**2).mean()), f / n


def g_loss(loss: str, f: np.ndarray) -> Grad:
    """The generator's loss on the generated logits, and its gradient."""
    n = f.size
    if loss == "minimax":
        return float(-_softplus(f).mean()), -sigmoid(f) / n
    if loss == "nonsaturating":
        return float(_softplus(-f).mean()), -sigmoid(-f) / n
    if loss in ("hinge", "wasserstein"):
        return float(-f.mean()), np.full_like(f, -1 / n)
    return float(0.5 * ((f - 1) ** 2).mean()), (f - 1) / n


class GanTrainer:
    def __init__(self, gan: GanGraph, settings: Any):
        self.settings = settings
        self.g, self.d = build(gan, seed=settings.seed)
        self.g_opt = make_optimizer(settings.g_optimizer, self.g.parameters())
        self.d_opt = make_optimizer(settings.d_optimizer, self.d.parameters())

    def _d_term(self, inputs: list[np.ndarray], term: Any) -> float:
        """Run the discriminator on `inputs` and accumulate the gradient of one loss term."""
        value, grad = term(self.settings.loss, self.d(*inputs))
        self.d.backward(grad)
        return value

    def _generate(self, z: np.ndarray | None, cond: Sequence[np.ndarray]) -> np.ndarray:
        return self.g(*([] if z is None else [z]), *cond)

    def d_step(self, real: np.ndarray, z: np.ndarray | None,
               real_cond: Sequence[np.ndarray] = (), fake_cond: Sequence[np.ndarray] = ()
               ) -> float:
        self.g.train()
        self.d.train()
        fake = self._generate(z, fake_cond)
        self.d.zero_grad()
        value = (self._d_term([real, *real_cond], d_real)
                 + self._d_term([fake, *fake_cond], d_fake))
        self.d_opt.step(self.d.grads())
        if self.settings.loss == "wasserstein":
            for p in self.d.parameters().values():
                np.clip(p, -self.settings.clip, self.settings.clip, out=p)
        return value

    def g_step(self, z: np.ndarray | None, cond: Sequence[np.ndarray] = ()) -> float:
        self.g.train()
        self.d.train()
        value, grad = g_loss(self.settings.loss, self.d(self._generate(z, cond), *cond))
        dfake = self.d.backward(grad)[0]  # the discriminator's gradients are never applied
        self.g.zero_grad()
        self.g.backward(dfake)
        self.g_opt.step(self.g.grads())
        return value

    def sample(self, z: np.ndarray | None, cond: Sequence[np.ndarray] = ()) -> np.ndarray:
        self.g.eval()
        return self._generate(z, cond)

    def _models(self) -> tuple[tuple[str, Module, Any], ...]:
        return (("g", self.g, self.g_opt), ("d", self.d, self.d_opt))

    def state(self) -> dict[str, np.ndarray]:
        out = {}
        for side, model, opt in self._models():
            out.update({f"{side}/{k}": v for k, v in state_dict(model).items()})
            out.update({f"{side}_opt/{k}": v for k, v in opt.state().items()})
            out[f"rng/{side}"] = rng_state(model.rng)
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for side, model, opt in self._models():
            n = len(side) + 1
            load_state_dict(model, {k[n:]: v for k, v in state.items()
                                    if k.startswith(f"{side}/")})
            opt.load_state({k[n + 4:]: v for k, v in state.items()
                            if k.startswith(f"{side}_opt/")})
            set_rng_state(model.rng, state[f"rng/{side}"])
