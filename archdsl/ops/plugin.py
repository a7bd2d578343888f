"""Ops users add themselves: an op declared in the user's own Python package, checked and
costed like a built-in, lowered by each backend it gives rules for (docs/plugins.md).

    from archdsl.ops.plugin import Arg, Flops, OpDef, lower, register

    register(OpDef(name="Swish", kind="layer", args=(Arg("beta", "float", 1.0),),
                   shape=lambda a, ins: ins[0],
                   flops=lambda a, ins, out: Flops(other=4 * numel(out.shape))))
    lower("Swish", "torch", forward=lambda site: f"{site.x} * torch.sigmoid(...)")

A plugin is a module that makes these calls when imported. archdsl imports it from the
entry point group `archdsl.ops` of every installed distribution (the first time a spec is
loaded), from `--plugin module` on the command line, or from `load(module)`. A backend
without rules for a plugin op refuses a spec that uses it (E0901, at the op). Nothing
here imports a backend: `lower` keeps the rows until the backend's rule tables are
imported (`install`).
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from importlib.metadata import entry_points
from typing import Any

from archdsl.diagnostics import Problem
from archdsl.ops.registry import REGISTRY, Arg, Flops, OpDef, numel

__all__ = ["Arg", "Flops", "OpDef", "PluginError", "Problem", "load", "load_entry_points",
           "lower", "numel", "register"]

GROUP = "archdsl.ops"


class PluginError(Exception):
    """A plugin that cannot be loaded or declares something archdsl cannot take. Not an
    error in the spec: the command line reports it and exits with status 2."""


# op name -> the module that registered it
OWNERS: dict[str, str] = {}
# backend -> op -> {table key: rule}: every row `lower` was given
LOWERINGS: dict[str, dict[str, dict[str, Any]]] = {}
# backend -> its tables, once its table module is imported (`install`)
_TABLES: dict[str, dict[str, dict[str, Any]]] = {}
_LOADED: set[str] = set()
_ENTRY_POINTS_READ = False

_LAYER = re.compile(r"[A-Z][A-Za-z0-9_]*")
_FUNCTION = re.compile(r"[a-z_][a-z0-9_]*")


def _caller() -> str:
    """The module that called into this API (a plugin names itself by being imported)."""
    frame = sys._getframe(2)
    return frame.f_globals.get("__name__", "?")


def register(op: OpDef) -> OpDef:
    """Declare a new op: its arguments, inputs, shape rule, parameters and FLOP rule, in the
    format of archdsl's own (archdsl/ops/registry.py). A layer is capitalised, a function
    lowercase; the name must be new. The rules run like a built-in's: a `Problem` they
    raise is a located error in the user's spec; any other exception is reported as a bug
    of the plugin."""
    owner = _caller()
    if op.kind not in ("layer", "function"):
        raise PluginError(f"{owner}: `{op.name}` has kind {op.kind!r}: an op is a "
                          "\"layer\" or a \"function\"")
    pattern, what = (_LAYER, "capitalised") if op.kind == "layer" else (_FUNCTION, "lowercase")
    if not pattern.fullmatch(op.name):
        raise PluginError(f"{owner}: a {op.kind} is named by a {what} identifier, not "
                          f"`{op.name}`")
    from archdsl.parser import KEYWORDS
    if op.name in KEYWORDS:
        raise PluginError(f"{owner}: `{op.name}` is a keyword of the language")
    if op.name in REGISTRY:
        where = f"the plugin {OWNERS[op.name]}" if op.name in OWNERS else "archdsl"
        raise PluginError(f"{owner}: an op `{op.name}` is already declared by {where}")
    if op.flops is None:
        raise PluginError(f"{owner}: `{op.name}` needs a FLOP rule (`flops=`), even one "
                          "returning Flops() for an op that computes nothing")
    guarded = replace(op, shape=_guard(op.shape, op.name, "shape", owner),
                      normalize=_guard(op.normalize, op.name, "normalize", owner),
                      params=_guard(op.params, op.name, "params", owner),
                      flops=_guard(op.flops, op.name, "flops", owner),
                      meta={**op.meta, "plugin": owner})
    REGISTRY[op.name] = guarded
    OWNERS[op.name] = owner
    return guarded


def _guard(rule: Callable[..., Any], op: str, what: str, owner: str) -> Callable[..., Any]:
    @wraps(rule)
    def run(*args: Any) -> Any:
        try:
            return rule(*args)
        except Problem:
            raise
        except Exception as exc:
            raise PluginError(f"the {what} rule of `{op}` (plugin {owner}) failed: {exc!r}; "
                              "this is a bug in the plugin, not in the spec") from exc
    return run


def lower(op: str, backend: str, **rules: Any) -> None:
    """Give `backend` its rules for the plugin op `op`, one per table the backend lists in
    its `plugin_rules`: torch `construct`, `forward`, `as_module` (archdsl/backends/torch/
    target.py), tensorflow `construct`, `forward` (archdsl/backends/tensorflow/target.py),
    numpy `kernel` (a `Kernel(forward, backward)`), onnx `lower`. A backend
    never given rules for an op refuses specs that use it."""
    from archdsl import backends

    owner = _caller()
    if op not in REGISTRY:
        raise PluginError(f"{owner}: lower(`{op}`): register the op first")
    if op not in OWNERS:
        raise PluginError(f"{owner}: `{op}` is built into archdsl; a plugin lowers only its "
                          "own ops")
    if backend not in backends.NAMES:
        raise PluginError(f"{owner}: lower(`{op}`): no backend {backend!r}; the backends are "
                          f"{', '.join(backends.NAMES)}")
    accepted = backends.PLUGIN_RULES[backend]
    unknown = sorted(set(rules) - set(accepted))
    if not accepted:
        raise PluginError(f"{owner}: the {backend} backend takes no plugin rules yet")
    if unknown or not rules:
        raise PluginError(f"{owner}: lower(`{op}`, {backend!r}) takes "
                          f"{', '.join(f'{k}=' for k in accepted)}; got "
                          f"{', '.join(f'{k}=' for k in unknown) or 'none'}")
    LOWERINGS.setdefault(backend, {}).setdefault(op, {}).update(rules)
    if backend in _TABLES:
        _fill(_TABLES[backend], op, rules)


def install(backend: str, tables: dict[str, dict[str, Any]]) -> None:
    """Called by a backend's rule tables as they are imported: every row plugins gave it so
    far, and every row given from now on, goes into `tables` (table key -> {op: rule})."""
    _TABLES[backend] = tables
    for op, rules in LOWERINGS.get(backend, {}).items():
        _fill(tables, op, rules)


def _fill(tables: dict[str, dict[str, Any]], op: str, rules: dict[str, Any]) -> None:
    for key, rule in rules.items():
        tables[key][op] = rule


def lowered(op: str) -> list[str]:
    """The backends a plugin op has rules for."""
    return [b for b, ops in LOWERINGS.items() if op in ops]


def load(module: str) -> None:
    """Import a plugin module by name (`--plugin module`); once."""
    if module in _LOADED:
        return
    try:
        importlib.import_module(module)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"cannot load the plugin {module}: {exc!r}") from exc
    _LOADED.add(module)


def load_entry_points() -> None:
    """Import every plugin installed distributions declare in the entry point group
    `archdsl.ops`; once per process."""
    global _ENTRY_POINTS_READ
    if _ENTRY_POINTS_READ:
        return
    _ENTRY_POINTS_READ = True
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.value in _LOADED:
            continue
        dist = f" of {ep.dist.name}" if ep.dist is not None else ""
        try:
            ep.load()
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"cannot load the plugin `{ep.name}`{dist} ({ep.value}), "
                              f"declared in the entry point group {GROUP}: {exc!r}") from exc
        _LOADED.add(ep.value)
