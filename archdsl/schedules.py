"""Learning-rate schedules with PyTorch's meanings, the same numbers in every backend.

`schedule = Cosine(warmup=100)` in a `train` section, or `--schedule "Cosine(warmup=100)"` on
the command line, names one row below (settings as PyTorch's, by name; the first may be given
by position). A schedule counts optimizer steps over the whole run, `total` = steps per epoch
× epochs, and gives the learning rate of step t = 0, 1, ..., total - 1 from the optimizer's
`lr`: the value PyTorch's scheduler holds before its t-th `step()` when stepped once per
optimizer step. The training loop sets it on each backend's optimizer before every step
(`Trainer.set_learning_rate`); tests/test_schedules.py holds each row to PyTorch's scheduler.

- `Cosine(warmup=0, start_factor=0.01, eta_min=0.0)`: `LinearLR(start_factor,
  total_iters=warmup)` then `CosineAnnealingLR(T_max=total - warmup, eta_min)`, joined by
  `SequentialLR(milestones=[warmup])` (torchvision's recipe); without a warmup,
  `CosineAnnealingLR(T_max=total, eta_min)`.
- `Step(step_size, gamma=0.1)`: `StepLR(step_size, gamma)`.
- `OneCycle(max_lr=lr, pct_start=0.3, anneal_strategy="cos", div_factor=25.0,
  final_div_factor=1e4, three_phase=false, cycle_momentum=true, base_momentum=0.85,
  max_momentum=0.95)`: `OneCycleLR(max_lr, total_steps=total, ...)`, which also cycles SGD's
  `momentum` or Adam's `beta1`.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archdsl.diagnostics import suggest
from archdsl.graph import Optimizer, Schedule

# Settings in PyTorch's order and with its defaults; None: no default (`step_size`), or for
# `max_lr`, the optimizer's `lr`.
SCHEDULES: dict[str, dict[str, Any]] = {
    "Cosine": {"warmup": 0, "start_factor": 0.01, "eta_min": 0.0},
    "Step": {"step_size": None, "gamma": 0.1},
    "OneCycle": {"max_lr": None, "pct_start": 0.3, "anneal_strategy": "cos", "div_factor": 25.0,
                 "final_div_factor": 1e4, "three_phase": False, "cycle_momentum": True,
                 "base_momentum": 0.85, "max_momentum": 0.95},
}
REQUIRED = ("step_size",)

# setting -> (kind, valid, what the message asks for)
_RULES: dict[str, tuple[type, Callable[[Any], bool], str]] = {
    "warmup": (int, lambda v: v >= 0, "a non-negative integer (optimizer steps)"),
    "start_factor": (float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "eta_min": (float, lambda v: v >= 0, "a non-negative number"),
    "step_size": (int, lambda v: v >= 1, "a positive integer (optimizer steps)"),
    "gamma": (float, lambda v: v > 0, "a positive number"),
    "max_lr": (float, lambda v: v > 0, "a positive number"),
    "pct_start": (float, lambda v: 0 < v < 1, "a number in (0, 1)"),
    "anneal_strategy": (str, lambda v: v in ("cos", "linear"), '"cos" or "linear"'),
    "div_factor": (float, lambda v: v > 0, "a positive number"),
    "final_div_factor": (float, lambda v: v > 0, "a positive number"),
    "three_phase": (bool, lambda v: True, "true or false"),
    "cycle_momentum": (bool, lambda v: True, "true or false"),
    "base_momentum": (float, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "max_momentum": (float, lambda v: 0 <= v < 1, "a number in [0, 1)"),
}


def make(name: str, args: list[Any] | tuple[Any, ...] = (),
         kwargs: dict[str, Any] | None = None) -> Schedule:
    """A checked schedule with every setting resolved; ValueError says what is wrong."""
    if name not in SCHEDULES:
        near = suggest(name, SCHEDULES)
        raise ValueError(f"unknown schedule `{name}`" + (f"; did you mean `{near}`?" if near
                         else f"; one of {', '.join(SCHEDULES)}"))
    defaults = SCHEDULES[name]
    kwargs = dict(kwargs or {})
    if len(args) > 1:
        raise ValueError(f"`{name}` takes its first setting by position, the others by name")
    if args:
        first = next(iter(defaults))
        if first in kwargs:
            raise ValueError(f"`{name}` got `{first}` twice")
        kwargs = {first: args[0], **kwargs}
    out = {k: v for k, v in defaults.items() if k not in REQUIRED}
    for key, value in kwargs.items():
        if key not in defaults:
            near = suggest(key, defaults)
            raise ValueError(f"`{name}` has no setting `{key}`" + (
                f"; did you mean `{near}`?" if near else f"; settings: {', '.join(defaults)}"))
        out[key] = _checked(name, key, value)
    missing = [k for k in defaults if k in REQUIRED and k not in out]
    if missing:
        raise ValueError(f"`{name}` needs `{missing[0]}`, e.g. `{name}({missing[0]}=1000)`")
    return Schedule(name=name, args=out)  # type: ignore[arg-type]


def _checked(name: str, key: str, value: Any) -> Any:
    kind, valid, wanted = _RULES[key]
    ok_kind = (isinstance(value, bool) if kind is bool else
               isinstance(value, int) and not isinstance(value, bool) if kind is int else
               isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
               else isinstance(value, str))
    if not ok_kind or not valid(value) or (kind is float and not math.isfinite(value)):
        raise ValueError(f"`{key}` of `{name}` must be {wanted}, not {_spelled(value)}")
    return float(value) if kind is float else value


def parse(text: str) -> Schedule:
    """A schedule written as in a spec, for `--schedule`: `Step(300, gamma=0.5)`."""
    example = 'e.g. "Cosine(warmup=100)", "Step(step_size=300)" or "OneCycle(max_lr=0.01)"'
    if len(text) > 500:  # the longest spells out all nine of OneCycle's settings in 200
        raise ValueError(f"a schedule of {len(text)} characters is not one; {example}")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, RecursionError, MemoryError):
        raise ValueError(f"cannot read {text!r} as a schedule; {example}") from None
    if isinstance(node, ast.Name):
        return make(node.id)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)) or any(
            k.arg is None for k in node.keywords):
        raise ValueError(f"cannot read {text!r} as a schedule; {example}")
    return make(node.func.id, [_literal(a) for a in node.args],
                {k.arg: _literal(k.value) for k in node.keywords if k.arg})


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Name) and node.id in ("true", "false"):
        return node.id == "true"
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"a schedule's settings are numbers, strings, true or false, not "
                         f"`{ast.unparse(node)}`") from None


def describe(schedule: Schedule) -> str:
    """`Cosine(warmup=100)`: the settings that differ from the defaults."""
    defaults = SCHEDULES[schedule.name]
    given = [f"{k}={_spelled(v)}" for k, v in schedule.args.items() if v != defaults.get(k)]
    return f"{schedule.name}({', '.join(given)})"


def _spelled(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else \
        f'"{v}"' if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class Plan:
    """A schedule laid over one run of `total` optimizer steps from the optimizer's `lr`.
    `at(t)` gives step t's learning rate and, when the schedule cycles it, its momentum
    (SGD's `momentum`, Adam's and AdamW's `beta1`), else None."""

    schedule: Schedule
    lr: float
    total: int

    @property
    def cycles_momentum(self) -> bool:
        return cycles_momentum(self.schedule)

    def at(self, t: int) -> tuple[float, float | None]:
        a = self.schedule.args
        if self.schedule.name == "Step":
            return self.lr * a["gamma"] ** (t // a["step_size"]), None
        if self.schedule.name == "Cosine":
            warmup = a["warmup"]
            if t < warmup:  # LinearLR: start_factor -> 1 over `warmup` steps
                return self.lr * (a["start_factor"] + (1 - a["start_factor"]) * t / warmup), None
            cosine = 1 + math.cos(math.pi * (t - warmup) / (self.total - warmup))
            return a["eta_min"] + (self.lr - a["eta_min"]) * cosine / 2, None
        return self._one_cycle(t)

    def _phases(self) -> list[tuple[float, float, float, float, float]]:
        """OneCycleLR's phases: (last step, lr from, lr to, momentum from, momentum to)."""
        a = self.schedule.args
        peak = a["max_lr"] if a["max_lr"] is not None else self.lr
        initial = peak / a["div_factor"]
        low = initial / a["final_div_factor"]
        up, down = a["max_momentum"], a["base_momentum"]
        rise = a["pct_start"] * self.total - 1
        if a["three_phase"]:
            return [(rise, initial, peak, up, down),
                    (2 * a["pct_start"] * self.total - 2, peak, initial, down, up),
                    (self.total - 1, initial, low, up, up)]
        return [(rise, initial, peak, up, down), (self.total - 1, peak, low, down, up)]

    def _one_cycle(self, t: int) -> tuple[float, float | None]:
        a = self.schedule.args
        phases = self._phases()
        start = 0.0
        for i, (end, lr_from, lr_to, m_from, m_to) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                pct = (t - start) / (end - start)
                anneal = _cos if a["anneal_strategy"] == "cos" else _linear
                momentum = anneal(m_from, m_to, pct) if a["cycle_momentum"] else None
                return anneal(lr_from, lr_to, pct), momentum
            start = end
        raise AssertionError("unreachable")  # pragma: no cover


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _linear(start: float, end: float, pct: float) -> float:
    return (end - start) * pct + start


def cycles_momentum(schedule: Schedule | None) -> bool:
    """Whether the schedule sets the momentum too (OneCycle's `cycle_momentum`)."""
    return bool(schedule and schedule.name == "OneCycle" and schedule.args["cycle_momentum"])


def plan(schedule: Schedule | None, optimizer: Optimizer, total: int) -> Plan | None:
    """The schedule over a run of `total` optimizer steps; ValueError when the run is too
    short for it (a warmup as long as the run, a OneCycle phase of no steps)."""
    if schedule is None:
        return None
    out = Plan(schedule, float(optimizer.args.get("lr", 1e-3)), total)
    warmup = schedule.args.get("warmup", 0)
    if schedule.name == "Cosine" and warmup >= total:
        raise ValueError(f"the schedule's warmup ({warmup} steps) must be shorter than the "
                         f"run ({total} optimizer steps)")
    if schedule.name == "OneCycle":
        start = 0.0
        for end, *_ in out._phases():
            if end == start:
                raise ValueError(f"{describe(schedule)} has a phase of no steps in a run of "
                                 f"{total} optimizer steps; change pct_start or train longer")
            start = end
    return out
