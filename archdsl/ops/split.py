"""Multi-output functions, `split` and `chunk`, and `part`: how a consumer reads one output of
any multi-output op (OpDef.multi_output). A multi-output node lists its outputs in
`Node.parts`; `part` (args `index`) has that node as its one input."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import TensorType
from archdsl.ops.registry import Arg, Flops, OpDef, always, fmt, register
from archdsl.ops.shape import normalize_axis
from archdsl.symbolic import Sym, format_dim

_FREE = Flops()

register(OpDef(name="part", kind="function", category="shape", args=(Arg("index", "int"),),
               shape=lambda a, parts: parts[a["index"]], flops=lambda a, ins, out: _FREE,
               meta={"internal": True},
               doc="Output `index` of a multi-output node; its shape rule reads that node's "
                   "parts."))


def _known_size(op: str, x: TensorType, axis: int) -> int:
    n = x.shape[axis]
    if isinstance(n, Sym):
        raise Problem("E0405", f"`{op}` needs the size of dimension {axis} to count its parts",
                      label=f"it is the symbolic `{format_dim(n)}` in {fmt(x)}",
                      hint="give that dimension as a number in the input's type")
    return n


def _parts(x: TensorType, axis: int, sizes: list[int]) -> list[TensorType]:
    return [x.with_shape([*x.shape[:axis], s, *x.shape[axis + 1:]]) for s in sizes]


def _split_norm(a: dict, ins: list[TensorType]) -> dict:
    (x,) = ins
    axis = normalize_axis("split", a["dim"], x.rank, x)
    size = a["size"]
    items = list(size) if isinstance(size, (list, tuple)) else [size]
    if not items or any(isinstance(s, bool) or not isinstance(s, int) for s in items):
        raise Problem("E0402", "`size` of `split` must be an integer or a list of integers",
                      label=f"got {size!r}" if not isinstance(size, Sym) else
                      f"got the symbolic `{format_dim(size)}`")
    if any(s < 1 for s in items):
        raise Problem("E0403", "the sizes given to `split` must be at least 1",
                      label=f"got {size}")
    n = _known_size("split", x, axis)
    if isinstance(size, (list, tuple)):
        if sum(items) != n:
            raise Problem("E0403", f"the sizes given to `split` must add up to dimension "
                          f"{axis}'s size", label=f"{list(items)} add up to {sum(items)}, the "
                          f"dimension is {n} in {fmt(x)}",
                          hint="one integer size gives equal parts, the last smaller")
        sizes = items
    else:
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    return {**a, "dim": axis, "size": sizes}


register(OpDef(name="split", kind="function", category="shape",
               args=(Arg("size", "any"), Arg("dim", "dim", 0)), normalize=_split_norm,
               shape=lambda a, ins: _parts(ins[0], a["dim"], a["size"]),
               flops=lambda a, ins, out: _FREE, multi_output=always,
               doc="torch.split: parts of `size` along `dim` (the last may be smaller), or of "
                   "the listed sizes; `size` is normalized to the list of part sizes."))


def _chunk_norm(a: dict, ins: list[TensorType]) -> dict:
    (x,) = ins
    axis = normalize_axis("chunk", a["dim"], x.rank, x)
    _known_size("chunk", x, axis)
    return {**a, "dim": axis}


def _chunk_shape(a: dict, ins: list[TensorType]) -> list[TensorType]:
    """torch.chunk: parts of ceil(L / n), the last smaller, so possibly fewer than n."""
    (x,) = ins
    n = x.shape[a["dim"]]
    step = -(-n // a["n"])
    return _parts(x, a["dim"], [min(step, n - start) for start in range(0, n, step)])


register(OpDef(name="chunk", kind="function", category="shape",
               args=(Arg("n", "int", min=1), Arg("dim", "dim", 0)), normalize=_chunk_norm,
               shape=_chunk_shape, flops=lambda a, ins, out: _FREE, multi_output=always,
               doc="torch.chunk: at most `n` parts of ceil(L / n) along `dim`."))
