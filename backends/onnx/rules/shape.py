"""Shapes: reshapes, transposes, joins, splits, (un)squeezes and indexing. A multi-output
op (`split`, `chunk`) returns the list of its parts' values, which `part` reads."""

from __future__ import annotations

from typing import Any

from ..site import END, Site


def reshape(s: Site) -> str:
    """The target shape with known sizes as numbers, a size kept from the same axis of the
    input as 0 (ONNX's "copy"), one other symbolic size as -1 and the rest computed."""
    src, dst = s.ins[0].shape, s.out.shape
    kept = [i < len(src) and not isinstance(d, int) and src[i] == d for i, d in enumerate(dst)]
    free = [i for i, d in enumerate(dst) if not isinstance(d, int) and not kept[i]]
    dims: list[Any] = [d if isinstance(d, int) else 0 if kept[i] else -1 if free == [i]
                       else d for i, d in enumerate(dst)]
    return s.op("Reshape", s.x, s.sizes(dims, "shape"))


def expand(s: Site) -> str:
    src, dst = s.ins[0].shape, s.out.shape
    lead = len(dst) - len(src)
    dims = [1 if i >= lead and src[i - lead] == d else d for i, d in enumerate(dst)]
    return s.op("Expand", s.x, s.sizes(dims, "shape"))


def transpose(s: Site) -> str:
    perm = list(range(s.ins[0].rank))
    i, j = s.args["dim0"], s.args["dim1"]
    perm[i], perm[j] = perm[j], perm[i]
    return s.op("Transpose", s.x, perm=perm)


def stack(s: Site) -> str:
    axis = s.const([s.args["dim"]], "axis")
    parts = [s.op("Unsqueeze", x, axis, hint="part") for x in s.xs]
    return s.op("Concat", *parts, axis=s.args["dim"])


def split(s: Site) -> list[str]:
    """`split` and `chunk`: the parts' sizes are those of the node's parts."""
    axis = s.args["dim"]
    sizes = [t.shape[axis] for t in s.node.parts]
    if len(sizes) == 1:
        return [s.x]
    return s.op("Split", s.x, s.const(sizes, "split"), axis=axis, outputs=len(sizes))


def getitem(s: Site) -> str:
    """One Slice for every slice and integer index (an integer i as [i, i + 1)), then a
    Squeeze of the integer-indexed axes."""
    starts, ends, axes, steps, drop = [], [], [], [], []
    for axis, item in enumerate(s.args["index"]):
        if isinstance(item, int):
            start, stop, step = item, item + 1 if item != -1 else END, 1
            drop.append(axis)
        else:
            start, stop, step = item
            if start is None and stop is None and step in (None, 1):
                continue
        starts.append(0 if start is None else start)
        ends.append(END if stop is None else stop)
        axes.append(axis)
        steps.append(1 if step is None else step)
    if not axes:
        return s.x
    y = s.op("Slice", s.x, s.const(starts, "starts"), s.const(ends, "ends"),
             s.const(axes, "axes"), s.const(steps, "steps"))
    return s.op("Squeeze", y, s.const(drop, "drop")) if drop else y


RULES = {
    "Flatten": lambda s: s.op("Flatten", s.x, axis=1),
    "flatten": reshape,
    "Reshape": reshape,
    "reshape": reshape,
    "transpose": transpose,
    "permute": lambda s: s.op("Transpose", s.x, perm=s.args["dims"]),
    "expand": expand,
    "concat": lambda s: s.op("Concat", *s.xs, axis=s.args["dim"]),
    "stack": stack,
    "split": split,
    "chunk": split,
    "part": lambda s: s.x[s.args["index"]],
    "unsqueeze": lambda s: s.op("Unsqueeze", s.x, s.const([s.args["dim"]], "axis")),
    "squeeze": lambda s: s.op("Squeeze", s.x, s.const([s.args["dim"]], "axis")),
    "getitem": getitem,
}
