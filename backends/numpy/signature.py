"""How a generated NumPy module passes an op's arguments, and how the runtime reads them back.

A kernel computes with an op's normalized arguments (`kernel=[3, 3]`, `padding=[[1, 1], [1,
1]]`, every default filled in). A generated call writes them as a person would, from the op's
declaration alone: the sizes the op derives from its inputs and its required arguments by
position (torch's order, `nn.Conv2d(C, channels, (3, 3), ...)`), the others by keyword, a list
of equal items as one item (`stride=2`), a list of symmetric pairs as their sizes
(`padding=1`), and a declared default not at all. `bind` undoes exactly that: `layout` keeps a
folding or an omission only where `bind` gives the normalized arguments back, so no op needs a
rule here. Nothing here imports NumPy: the generator uses it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from archdsl.ops import registry
from archdsl.ops.registry import REQUIRED, OpDef

Same = Callable[[Any, Any], bool]
_LISTS = ("ints", "padding")  # the kinds whose normalized form is one item per spatial dimension


def names(op: OpDef) -> list[str]:
    """The arguments of a generated call, in positional order: the first size the op derives
    from its inputs, the declared arguments, then any other derived ones (by keyword)."""
    declared = [a.name for a in op.args]
    derived = [d for d in op.derives if d not in declared]
    return [*derived[:1], *declared, *derived[1:]]


def _kinds(op: OpDef) -> dict[str, str]:
    return {a.name: a.kind for a in op.args}


def _count(op: OpDef, args: dict[str, Any]) -> int | None:
    """How many spatial dimensions the op works on: the length of its first list argument."""
    for a in op.args:
        if a.kind in _LISTS and isinstance(args.get(a.name), (list, tuple)):
            return len(args[a.name])
    return None


def _unfold(kind: str, v: Any, n: int | None) -> Any:
    if n is None or kind not in _LISTS or isinstance(v, str) or v is None:
        return list(v) if isinstance(v, tuple) else v
    items = list(v) if isinstance(v, (list, tuple)) else [v] * n
    if kind == "padding":
        return [list(p) if isinstance(p, (list, tuple)) else [p, p] for p in items]
    return items


def bind(op: OpDef, positional: tuple[Any, ...] | list[Any], keywords: dict[str, Any]
         ) -> dict[str, Any]:
    """The normalized arguments of a call written by `layout`."""
    order = names(op)
    if op.variadic:  # `Reshape(32, 4, 4)`: every positional is an item
        given = {op.variadic: list(positional)}
    elif len(positional) > len(order):
        raise TypeError(f"{op.name} takes at most {len(order)} arguments, got "
                        f"{len(positional)}")
    else:
        given = dict(zip(order, positional, strict=False))
    for k, v in keywords.items():
        if k not in order:
            raise TypeError(f"{op.name} has no argument `{k}`; it takes {', '.join(order)}")
        if k in given:
            raise TypeError(f"{op.name} got `{k}` twice")
        given[k] = v
    missing = [k for k in order if k not in given and k in op.derives]
    missing += [a.name for a in op.args if a.name not in given and a.default is REQUIRED]
    if missing:
        raise TypeError(f"{op.name} needs {', '.join(f'`{k}`' for k in missing)}")
    kinds = _kinds(op)
    n = _count(op, given)
    out = {op.variadic: given[op.variadic]} if op.variadic else {}
    for name in order:
        value = given[name] if name in given else \
            next(a.default for a in op.args if a.name == name)
        out[name] = _unfold(kinds.get(name, ""), value, n)
    return out


def _fold(kind: str, v: Any, same: Same) -> Any:
    """`v` (normalized) written shorter, if it is a list `bind` may rebuild."""
    if kind not in _LISTS or not isinstance(v, (list, tuple)) or not v:
        return v
    items = list(v)
    if kind == "padding":
        if not all(isinstance(p, (list, tuple)) and len(p) == 2 and same(p[0], p[1])
                   for p in items):
            return v
        items = [p[0] for p in items]
    if all(same(x, items[0]) for x in items):
        return items[0]
    return tuple(items)


def layout(op: OpDef, args: dict[str, Any], same: Same) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments that write `args` (normalized, as a node or a
    layer holds them). `same` compares two values (the generator compares expressions, so a
    size that happens to equal a default in one instance is still written)."""
    if op.variadic:
        return list(args[op.variadic]), {}
    order = [k for k in names(op) if k in args]
    kinds = _kinds(op)
    required = {*op.derives, *(a.name for a in op.args if a.default is REQUIRED)}
    by_position = set(names(op)[:1]) & set(op.derives) | \
        {a.name for a in op.args if a.default is REQUIRED}  # the rest go by keyword
    full = {k: args[k] for k in order}
    # fold as much as `bind` undoes: every list, else all but the first (which gives the
    # spatial count), else none
    folded = {k: _fold(kinds.get(k, ""), v, same) for k, v in full.items()}
    candidates = [folded]
    first = next((k for k in order if kinds.get(k) in _LISTS and
                  isinstance(full[k], (list, tuple))), None)
    if first is not None:
        candidates += [{**folded, first: tuple(full[first])}, full]
    for written in candidates:
        defaults = {a.name: _unfold(a.kind, a.default, _count(op, written)) for a in op.args
                    if a.default is not REQUIRED}
        kept = {k: v for k, v in written.items()
                if k in required or k not in defaults or not _deep(same, defaults[k], full[k])}
        positional: list[Any] = []
        for k in order:
            if k not in by_position or k not in kept:
                break
            positional.append(kept.pop(k))
        try:
            back = bind(op, positional, kept)
        except TypeError:
            continue
        if all(_deep(same, back[k], full[k]) for k in order):
            return positional, kept
    raise AssertionError(f"{op.name}: no call writes {args}")


def _deep(same: Same, a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and \
            len(a) == len(b) and all(_deep(same, x, y) for x, y in zip(a, b, strict=True))
    return same(a, b)


def function_name(op: OpDef) -> str:
    """The name of an op's function in the runtime: a function op's own name (`relu`,
    `concat`), a layer's in snake case (`MaxPool2d` is `max_pool2d`, `LeakyReLU`
    `leaky_relu`)."""
    if op.kind == "function":
        return op.name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", op.name).lower()


def has_params(op: OpDef) -> bool:
    """Whether the op's declaration gives it parameters or buffers (for some arguments)."""
    return op.params is not registry._no_params
