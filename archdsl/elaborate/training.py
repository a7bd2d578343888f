"""A `train` section's settings, optimisers and schedules, checked as the spec gives them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archdsl import schedules
from archdsl import syntax as ast
from archdsl.diagnostics import Loc, Problem, Reporter, suggest
from archdsl.graph import GAN_LOSSES, TRAIN_LOSSES, Optimizer, Schedule, TrainConfig
from archdsl.values import OptimizerClass, OptimizerValue, ScheduleClass, a_kind

TRAIN_KEYS_MODEL = ("loss", "optimizer", "schedule", "batch", "epochs", "data")
TRAIN_KEYS_GAN = ("optimizer", "g_optimizer", "d_optimizer", "batch", "epochs", "n_critic",
                  "clip", "data")

OPTIMIZERS: dict[str, dict[str, Any]] = {
    "SGD": {"lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0, "dampening": 0.0,
            "nesterov": False},
    "Adam": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0},
    "AdamW": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-2},
}


def train_section(stmt: ast.Train, kind: str, value: Callable[[ast.Node], Any],
                  reporter: Reporter) -> TrainConfig:
    """The section's settings; each bad one is reported and left out. `value` evaluates a
    setting's expression in the model's frame; `kind` is `model` or `gan`."""
    allowed = TRAIN_KEYS_GAN if kind == "gan" else TRAIN_KEYS_MODEL
    cfg: dict[str, Any] = {}
    for s in stmt.settings:
        if s.name not in allowed:
            near = suggest(s.name, allowed)
            reporter.error("E0701", f"unknown `train` setting `{s.name}`", s.loc,
                           hint=f"did you mean `{near}`?" if near else
                           f"settings: {', '.join(allowed)}")
            continue
        if s.name in cfg:
            reporter.error("E0701", f"`{s.name}` set twice", s.loc)
            continue
        try:
            cfg[s.name] = _setting(s, kind, value(s.value))
        except Problem as p:
            reporter.add(p.at(s.loc))
    return TrainConfig(**cfg)


def _setting(s: ast.Setting, kind: str, v: Any) -> Any:
    if s.name in ("optimizer", "g_optimizer", "d_optimizer"):
        if isinstance(v, OptimizerClass):
            v = optimizer(v.name, [], {}, s.value.loc)
        if not isinstance(v, OptimizerValue):
            raise Problem("E0701", f"`{s.name}` must be SGD(...), Adam(...) or AdamW(...)",
                          loc=s.value.loc, label=f"this is {a_kind(v)}")
        return Optimizer(name=v.name, args=v.args)  # type: ignore[arg-type]
    if s.name == "schedule":
        if isinstance(v, ScheduleClass):
            v = schedule(v.name, [], {}, s.value.loc)
        if not isinstance(v, Schedule):
            raise Problem("E0701", "`schedule` must be Cosine(...), Step(...) or "
                          "OneCycle(...)", loc=s.value.loc, label=f"this is {a_kind(v)}")
        return v
    if s.name == "loss":
        choices = GAN_LOSSES if kind == "gan" else TRAIN_LOSSES
        if v not in choices:
            raise Problem("E0701", "unknown loss", loc=s.value.loc,
                          label=f"one of {', '.join(choices)}")
        return v
    if s.name in ("batch", "epochs", "n_critic"):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise Problem("E0701", f"`{s.name}` must be a positive integer", loc=s.value.loc,
                          label=f"got {v!r}")
        return v
    if s.name == "clip":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise Problem("E0701", "`clip` must be a positive number", loc=s.value.loc)
        return float(v)
    if s.name == "data":
        if not isinstance(v, str):
            raise Problem("E0701", "`data` must be a string", loc=s.value.loc)
        return v
    raise AssertionError(s.name)  # pragma: no cover


def optimizer(name: str, args: list[Any], kwargs: dict[str, Any], loc: Loc) -> OptimizerValue:
    """`Adam(lr=3e-4)` (or `Adam(3e-4)`): the optimiser's defaults with the given settings."""
    spec = OPTIMIZERS[name]
    if args:
        if len(args) > 1:
            raise Problem("E0701", f"`{name}` takes its settings by name", loc=loc,
                          hint=f"`{name}(lr=1e-3)`")
        kwargs = {"lr": args[0], **kwargs}
    out = dict(spec)
    for k, v in kwargs.items():
        if k not in spec:
            near = suggest(k, spec)
            raise Problem("E0701", f"`{name}` has no setting `{k}`", loc=loc,
                          hint=f"did you mean `{near}`?" if near else
                          f"settings: {', '.join(spec)}")
        out[k] = _optimizer_value(name, k, v)
    return OptimizerValue(name, out)


def schedule(name: str, args: list[Any], kwargs: dict[str, Any], loc: Loc) -> Schedule:
    try:
        return schedules.make(name, args, kwargs)
    except ValueError as exc:
        raise Problem("E0701", str(exc), loc=loc) from None


def _optimizer_value(name: str, key: str, v: Any) -> Any:
    if key == "nesterov":
        if not isinstance(v, bool):
            raise Problem("E0701", "`nesterov` must be true or false")
        return v
    if key == "betas":
        if not (isinstance(v, tuple) and len(v) == 2 and all(
                isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                for b in v)):
            raise Problem("E0701", "`betas` must be two numbers in [0, 1)", label=f"got {v!r}")
        return [float(b) for b in v]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Problem("E0701", f"`{key}` of `{name}` must be a number", label=f"got {v!r}")
    v = float(v)
    if key in ("lr", "eps") and v <= 0 or v < 0:
        raise Problem("E0701", f"`{key}` of `{name}` must be "
                      f"{'positive' if key in ('lr', 'eps') else 'non-negative'}",
                      label=f"got {v}")
    return v
