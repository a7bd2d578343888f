"""A layer's arguments as people write them, for reports, diagrams and the editor: the
declared arguments that differ from their defaults, with resolved values folded back
(`kernel=[3, 3]` is `3`, padding `[[1, 1], [1, 1]]` is `1`)."""

from __future__ import annotations

from typing import Any

from archdsl.ops import REGISTRY
from archdsl.ops.registry import REQUIRED, show_value


def compact(v: Any) -> Any:
    """Equal items of a list of numbers fold into one; a list of pairs folds each pair."""
    if isinstance(v, (list, tuple)):
        items = [compact(x) for x in v]
        if len(items) > 1 and all(x == items[0] for x in items) and \
                not isinstance(items[0], (list, tuple)):
            return items[0]
        return items
    return v


def key_args(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a layer (or function) that its declaration does not default."""
    decl = REGISTRY.get(op)
    if decl is None:
        return {}
    out = {}
    if decl.variadic and args.get(decl.variadic):
        out[decl.variadic] = compact(args[decl.variadic])
    for arg in decl.args:
        if arg.name not in args:
            continue
        value = compact(args[arg.name])
        if arg.default is not REQUIRED and value == compact(arg.default):
            continue
        out[arg.name] = value
    return out


def args_text(op: str, args: dict[str, Any]) -> str:
    """`64, kernel=7, stride=2`: the first argument by position, the rest by name."""
    decl = REGISTRY.get(op)
    first = decl.variadic or (decl.args[0].name if decl.args else None) if decl else None
    parts = []
    for k, v in key_args(op, args).items():
        if decl is not None and k == decl.variadic and isinstance(v, list):
            parts += map(show_value, v)  # `Reshape(32, 4, 4)`
        else:
            parts.append(show_value(v) if k == first else f"{k}={show_value(v)}")
    return ", ".join(parts)


def call_text(op: str, args: dict[str, Any]) -> str:
    """`Conv2d(64, kernel=7, stride=2, padding=3, bias=false)`; a bare `ReLU` stays bare."""
    inner = args_text(op, args)
    return f"{op}({inner})" if inner else op
