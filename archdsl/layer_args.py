"""A layer's arguments as people write them, for reports, diagrams and the editor: the
declared arguments that differ from their defaults, with resolved values folded back
(`kernel=[3, 3]` is `3`, padding `[[1, 1], [1, 1]]` is `1`)."""

from __future__ import annotations

from typing import Any

from archdsl.ops import REGISTRY
from archdsl.ops.registry import REQUIRED, OpDef
from archdsl.symbolic import Sym, format_dim


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


def show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, Sym):
        return format_dim(v)
    if isinstance(v, list):
        return "[" + ", ".join(map(show, v)) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(map(show, v)) + ")"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def args_text(op: str, args: dict[str, Any]) -> str:
    """`64, kernel=7, stride=2`: the first argument by position, the rest by name."""
    decl = REGISTRY.get(op)
    first = decl.variadic or (decl.args[0].name if decl.args else None) if decl else None
    parts = []
    for k, v in key_args(op, args).items():
        if decl is not None and k == decl.variadic and isinstance(v, list):
            parts += map(show, v)  # `Reshape(32, 4, 4)`
        else:
            parts.append(show(v) if k == first else f"{k}={show(v)}")
    return ", ".join(parts)


def call_text(op: str, args: dict[str, Any]) -> str:
    """`Conv2d(64, kernel=7, stride=2, padding=3, bias=false)`; a bare `ReLU` stays bare."""
    inner = args_text(op, args)
    return f"{op}({inner})" if inner else op


def default_text(default: Any) -> str:
    """A declared default as a spec writes it (`1`, `0.0`, `1e-05`, `"zeros"`, `true`); `…`
    for an argument absent by default, whose absence means something of its own (a pooling's
    `stride` is its kernel, `Attention`'s `kv_heads` its `heads`)."""
    if default is None:
        return "…"
    return repr(default) if isinstance(default, float) else show(default)


def signature(op: OpDef) -> str:
    """`Conv2d(out, kernel, stride=1, ...)`; a function's tensors first: `concat(x, dim=1)`."""
    parts = [f"{op.variadic}..."] if op.variadic else []
    parts += [a.name if a.default is REQUIRED else f"{a.name}={default_text(a.default)}"
              for a in op.args]
    if op.kind == "function":
        parts = [*op.inputs, *parts]
    return f"{op.name}({', '.join(parts)})"
