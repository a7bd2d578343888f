"""Ops that move elements around without arithmetic: flatten, reshape, transpose, permute,
expand, concat, indexing, and the reductions mean and sum."""

from __future__ import annotations

from archdsl.diagnostics import Problem
from archdsl.graph import FLOAT_DTYPES, TensorType
from archdsl.ops.registry import Arg, Flops, OpDef, fmt, numel, register
from archdsl.symbolic import Dim, Sym, ceildiv, exact_div, format_dim, format_shape

_FREE = Flops()


def normalize_axis(op: str, axis: int, rank: int, t: TensorType | None = None) -> int:
    if not -rank <= axis < rank:
        what = f"the tensor {fmt(t)}" if t is not None else "the tensor"
        raise Problem("E0307", f"dimension {axis} is out of range for `{op}`",
                      label=f"{what} has rank {rank}, so dim must be in [{-rank}, {rank - 1}]")
    return axis % rank


def _infer(op: str, total: Dim, dims: list[Dim], what: str) -> list[Dim]:
    """Fill one -1 in `dims` so the element count equals `total`, or prove they agree."""
    holes = [i for i, d in enumerate(dims) if isinstance(d, int) and d == -1]
    if len(holes) > 1:
        raise Problem("E0304", f"at most one -1 in the shape given to `{op}`",
                      label=f"got {format_shape(dims)}")
    for d in dims:
        if isinstance(d, int) and (d == 0 or d < -1):
            raise Problem("E0403", f"sizes given to `{op}` must be positive (or one -1)",
                          label=f"got {format_shape(dims)}")
    known = numel([d for d in dims if not (isinstance(d, int) and d == -1)])
    if holes:
        fill = exact_div(total, known)
        if fill is None or (isinstance(fill, int) and fill < 1):
            raise Problem("E0304", f"`{op}` cannot split {what} into {format_shape(dims)}",
                          label=f"{format_dim(total)} elements are not a multiple of "
                                f"{format_dim(known)}")
        dims = list(dims)
        dims[holes[0]] = fill
    elif known != total:
        raise Problem("E0304", f"`{op}` changes the number of elements",
                      label=f"{what} has {format_dim(total)} elements, "
                            f"{format_shape(dims)} has {format_dim(known)}",
                      hint="use -1 for the size to infer")
    return dims


def _flatten_shape(a: dict, ins: list[TensorType]) -> TensorType:
    (x,) = ins
    if x.rank < 2:
        raise Problem("E0303", "`Flatten` needs a batch dimension and at least one more",
                      label=f"got {fmt(x)}")
    return x.with_shape((x.shape[0], numel(x.shape[1:])))


register(OpDef(name="Flatten", kind="layer", category="shape", args=(), shape=_flatten_shape,
               flops=lambda a, ins, out: _FREE,
               doc="[B, ...] -> [B, product of the rest], in row-major (channels-first) order."))


def _check_sizes(op: str, dims: list) -> None:
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, Sym)):
            raise Problem("E0402", f"sizes given to `{op}` must be integers",
                          label=f"got {d!r}")


def _reshape_layer_shape(a: dict, ins: list[TensorType]) -> TensorType:
    (x,) = ins
    _check_sizes("Reshape", a["dims"])
    if x.rank < 1:
        raise Problem("E0303", "`Reshape` needs a batch dimension", label=f"got {fmt(x)}")
    dims = _infer("Reshape", numel(x.shape[1:]), list(a["dims"]), f"{fmt(x)} after the batch")
    return x.with_shape((x.shape[0], *dims))


register(OpDef(name="Reshape", kind="layer", category="shape", args=(), variadic="dims",
               shape=_reshape_layer_shape, flops=lambda a, ins, out: _FREE,
               doc="Reshape keeping the batch: `Reshape(C, 1, 1)` makes [B, F] -> [B, C, 1, 1]."))


def _reshape_shape(a: dict, ins: list[TensorType]) -> TensorType:
    (x,) = ins
    return x.with_shape(tuple(_infer("reshape", numel(x.shape), list(a["shape"]), fmt(x))))


register(OpDef(name="reshape", kind="function", category="shape", args=(Arg("shape", "dims"),),
               shape=_reshape_shape, flops=lambda a, ins, out: _FREE,
               doc="reshape(x, [B, -1]): the full new shape, one -1 inferred."))


def _transpose_norm(a: dict, ins: list[TensorType]) -> dict:
    r = ins[0].rank
    return {**a, "dim0": normalize_axis("transpose", a["dim0"], r, ins[0]),
            "dim1": normalize_axis("transpose", a["dim1"], r, ins[0])}


def _transpose_shape(a: dict, ins: list[TensorType]) -> TensorType:
    s = list(ins[0].shape)
    s[a["dim0"]], s[a["dim1"]] = s[a["dim1"]], s[a["dim0"]]
    return ins[0].with_shape(s)


register(OpDef(name="transpose", kind="function", category="shape",
               args=(Arg("dim0", "dim"), Arg("dim1", "dim")), normalize=_transpose_norm,
               shape=_transpose_shape, flops=lambda a, ins, out: _FREE,
               doc="Swap two dimensions."))


def _permute_norm(a: dict, ins: list[TensorType]) -> dict:
    r = ins[0].rank
    dims = a["dims"]
    if any(isinstance(d, Sym) for d in dims):
        raise Problem("E0402", "`permute` needs integer dimensions", label=f"got {dims}")
    norm = [normalize_axis("permute", d, r, ins[0]) for d in dims]
    if sorted(norm) != list(range(r)):
        raise Problem("E0307", "`permute` needs a permutation of every dimension",
                      label=f"got {list(dims)} for the rank-{r} tensor {fmt(ins[0])}")
    return {**a, "dims": norm}


register(OpDef(name="permute", kind="function", category="shape", args=(Arg("dims", "dims"),),
               normalize=_permute_norm,
               shape=lambda a, ins: ins[0].with_shape([ins[0].shape[d] for d in a["dims"]]),
               flops=lambda a, ins, out: _FREE, doc="Reorder dimensions: permute(x, [0, 2, 1])."))


def _expand_shape(a: dict, ins: list[TensorType]) -> TensorType:
    (x,) = ins
    target = list(a["shape"])
    if len(target) < x.rank:
        raise Problem("E0303", "`expand` cannot drop dimensions",
                      label=f"{fmt(x)} to {format_shape(target)}")
    for t in target:
        if isinstance(t, int) and t < 1 and t != -1:
            raise Problem("E0403", "sizes given to `expand` must be positive, or -1 to keep a "
                          "dimension", label=f"got {format_shape(target)}")
    out = []
    lead = len(target) - x.rank
    for i, t in enumerate(target):
        src = x.shape[i - lead] if i >= lead else None
        if isinstance(t, int) and t == -1:
            if src is None:
                raise Problem("E0303", "-1 in `expand` keeps an existing dimension",
                              label=f"position {i} is new")
            out.append(src)
        elif src is None or src == 1 or src == t:
            out.append(t)
        else:
            raise Problem("E0302", "`expand` can only stretch dimensions of size 1",
                          label=f"{fmt(x)} to {format_shape(target)}")
    return x.with_shape(out)


register(OpDef(name="expand", kind="function", category="shape", args=(Arg("shape", "dims"),),
               shape=_expand_shape, flops=lambda a, ins, out: _FREE,
               doc="Broadcast size-1 dimensions to a larger shape without copying."))


def _concat_norm(a: dict, ins: list[TensorType]) -> dict:
    if not ins:
        raise Problem("E0303", "`concat` needs at least one tensor", label="got an empty list")
    return {**a, "dim": normalize_axis("concat", a["dim"], ins[0].rank, ins[0])}


def _concat_shape(a: dict, ins: list[TensorType]) -> TensorType:
    first = ins[0]
    axis = a["dim"]
    total: Dim = 0
    for i, t in enumerate(ins):
        if t.rank != first.rank or any(
            j != axis and d != e for j, (d, e) in enumerate(zip(t.shape, first.shape, strict=True))
        ):
            raise Problem("E0306", f"tensors to concatenate along dim {axis} differ elsewhere",
                          label=f"tensor 0 is {fmt(first)}, tensor {i} is {fmt(t)}")
        if t.dtype != first.dtype:
            raise Problem("E0308", "tensors to concatenate have different dtypes",
                          label=f"{first.dtype} and {t.dtype}")
        total = total + t.shape[axis]
    s = list(first.shape)
    s[axis] = total
    return first.with_shape(s)


register(OpDef(name="concat", kind="function", category="shape", inputs=("tensors",),
               args=(Arg("dim", "dim", 0),), tensor_list_input=True, normalize=_concat_norm,
               shape=_concat_shape, flops=lambda a, ins, out: _FREE,
               doc="concat([a, b], dim=1): join along one dimension (default 0, as torch.cat)."))


def reduce_norm(op: str):
    """`dim`: None (every dimension), an int or a list of them; normalized to non-negative."""
    def norm(a: dict, ins: list[TensorType]) -> dict:
        r = ins[0].rank
        d = a["dim"]
        items = [] if d is None else list(d) if isinstance(d, (list, tuple)) else [d]
        for x in items:
            if isinstance(x, bool) or not isinstance(x, int):
                raise Problem("E0402", f"`dim` of `{op}` must be an integer or a list of them",
                              label=f"got {x!r}")
        # PyTorch reads `dim=[]` as every dimension, as if `dim` were not given
        dims = None if not items else [normalize_axis(op, x, r, ins[0]) for x in items]
        if dims is not None and len(set(dims)) != len(dims):
            raise Problem("E0307", f"a dimension repeated in `{op}`",
                          label=f"got {d} for the tensor {fmt(ins[0])}")
        return {**a, "dim": dims}
    return norm


def _reduce_shape(op: str):
    """PyTorch's dtypes: `sum` of integers or booleans is i64; `mean` needs floats."""
    def shape(a: dict, ins: list[TensorType]) -> TensorType:
        x = ins[0]
        if op == "mean" and x.dtype not in FLOAT_DTYPES:
            raise Problem("E0308", "`mean` needs a floating-point input",
                          label=f"got {x.dtype}{fmt(x)}",
                          hint="average in f32: `mean(x * 1.0, ...)`")
        if x.dtype not in FLOAT_DTYPES:
            x = TensorType.model_construct(dtype="i64", shape=x.shape)
        return reduced(x, a)
    return shape


def reduced(x: TensorType, a: dict) -> TensorType:
    """`x` without the dimensions `a["dim"]` (all when None), or with them kept as 1."""
    dims = set(range(x.rank)) if a["dim"] is None else set(a["dim"])
    if a["keepdim"]:
        return x.with_shape([1 if i in dims else d for i, d in enumerate(x.shape)])
    return x.with_shape([d for i, d in enumerate(x.shape) if i not in dims])


for _name in ("mean", "sum"):
    register(OpDef(name=_name, kind="function", category="shape",
                   args=(Arg("dim", "any", None), Arg("keepdim", "bool", False)),
                   normalize=reduce_norm(_name), shape=_reduce_shape(_name),
                   flops=lambda a, ins, out: Flops(other=numel(ins[0].shape)),
                   doc=f"{_name}(x, dim, keepdim=false) over one dimension or a list of them."))


def _slice_text(item: list) -> str:
    start, stop, step = ("" if v is None else str(v) for v in item)
    return f"{start}:{stop}" + (f":{step}" if step else "")


def _index_shape(a: dict, ins: list[TensorType]) -> TensorType:
    (x,) = ins
    items = a["index"]
    if len(items) > x.rank:
        raise Problem("E0307", "too many indices", label=f"{len(items)} indices for {fmt(x)}")
    out: list[Dim] = []
    for axis, item in enumerate(items):
        n = x.shape[axis]
        if isinstance(item, int):
            if isinstance(n, int) and not -n <= item < n:
                raise Problem("E0307", f"index {item} is out of range for dimension {axis}",
                              label=f"size {n}")
            continue
        start, stop, step = item
        step = 1 if step is None else step
        if step < 1:
            raise Problem("E0403", "slice steps must be positive", label=f"step {step}")
        if isinstance(n, int):
            out.append(len(range(*slice(start, stop, step).indices(n))))
            continue
        _check_unclamped(item, n, step)
        s: Dim = 0 if start is None else (n + start if start < 0 else start)
        e: Dim = n if stop is None else (n + stop if stop < 0 else stop)
        length = ceildiv(e - s, step)
        if isinstance(length, Sym) and any(c < 0 for _, c in length.terms if _):
            raise Problem("E0405", f"the length of slice {_slice_text(item)} of the symbolic "
                          f"`{format_dim(n)}` cannot be decided",
                          label="its bounds count from opposite ends",
                          hint="use bounds from the same end, e.g. `-3:` or `0:4`")
        out.append(length)
    for d in out:
        if isinstance(d, int) and d < 1:
            raise Problem("E0309", "the slice selects nothing", label=f"result {format_shape(out)}")
    return x.with_shape(out + list(x.shape[len(items):]))


def _check_unclamped(item: list, n: Sym, step: int) -> None:
    """On a symbolic dimension a slice's length is computed as if its bounds lay inside it.
    PyTorch cuts a bound that passes an end, so a dimension shorter than the bounds need gives
    another length: refused when that happens for a size at which the slice is not empty.
    (Cut lengths only shrink with the size, so the sizes just below the need decide.)"""
    start, stop = item[0], item[1]
    need = max(abs(b) for b in (start, stop, 0) if b is not None)
    for short in range(max(1, need - min(step, 64) - 1), need):
        clamped = len(range(*slice(start, stop, step).indices(short)))
        s = 0 if start is None else (short + start if start < 0 else start)
        e = short if stop is None else (short + stop if stop < 0 else stop)
        if clamped > 0 and clamped != -((s - e) // step):
            raise Problem("E0405", f"the slice {_slice_text(item)} of the symbolic "
                          f"`{format_dim(n)}` has no fixed length",
                          label=f"PyTorch cuts it short when `{format_dim(n)}` is below "
                                f"{need}",
                          hint="declare that dimension as a number in the input's type")


register(OpDef(name="getitem", kind="function", category="shape", args=(Arg("index", "any"),),
               meta={"internal": True},
               shape=_index_shape, flops=lambda a, ins, out: _FREE,
               doc="x[:, -1], x[:, 0:4]: integers drop a dimension, slices keep it."))


def new_axis(op: str, axis: int, t: TensorType) -> int:
    """Where a new dimension goes in `t` (`unsqueeze`, `stack`), made non-negative."""
    r = t.rank + 1
    if not -r <= axis < r:
        raise Problem("E0307", f"dimension {axis} is out of range for `{op}`",
                      label=f"a new dimension of the rank-{t.rank} {fmt(t)} goes at one of "
                            f"[{-r}, {r - 1}]")
    return axis % r


def _stack_norm(a: dict, ins: list[TensorType]) -> dict:
    if not ins:
        raise Problem("E0303", "`stack` needs at least one tensor", label="got an empty list")
    return {**a, "dim": new_axis("stack", a["dim"], ins[0])}


def _stack_shape(a: dict, ins: list[TensorType]) -> TensorType:
    first = ins[0]
    for i, t in enumerate(ins):
        if t.shape != first.shape:
            raise Problem("E0306", "tensors to stack must have one shape",
                          label=f"tensor 0 is {fmt(first)}, tensor {i} is {fmt(t)}")
        if t.dtype != first.dtype:
            raise Problem("E0308", "tensors to stack have different dtypes",
                          label=f"{first.dtype} and {t.dtype}")
    s = list(first.shape)
    s.insert(a["dim"], len(ins))
    return first.with_shape(s)


register(OpDef(name="stack", kind="function", category="shape", inputs=("tensors",),
               args=(Arg("dim", "dim", 0),), tensor_list_input=True, normalize=_stack_norm,
               shape=_stack_shape, flops=lambda a, ins, out: _FREE,
               doc="stack([a, b], dim=0): join equal tensors along a new dimension (as "
                   "torch.stack; like `concat`, one dtype)."))


def _unsqueeze_norm(a: dict, ins: list[TensorType]) -> dict:
    return {**a, "dim": new_axis("unsqueeze", a["dim"], ins[0])}


def _unsqueeze_shape(a: dict, ins: list[TensorType]) -> TensorType:
    s = list(ins[0].shape)
    s.insert(a["dim"], 1)
    return ins[0].with_shape(s)


register(OpDef(name="unsqueeze", kind="function", category="shape", args=(Arg("dim", "dim"),),
               normalize=_unsqueeze_norm, shape=_unsqueeze_shape,
               flops=lambda a, ins, out: _FREE, doc="A new dimension of size 1 at `dim`."))


def _squeeze_norm(a: dict, ins: list[TensorType]) -> dict:
    (x,) = ins
    axis = normalize_axis("squeeze", a["dim"], x.rank, x)
    if x.shape[axis] != 1:
        raise Problem("E0303", f"`squeeze` removes only a dimension of size 1; dimension "
                      f"{axis} is {format_dim(x.shape[axis])}", label=f"the tensor is {fmt(x)}",
                      hint="a symbolic dimension is never proven to be 1" if
                      isinstance(x.shape[axis], Sym) else None)
    return {**a, "dim": axis}


register(OpDef(name="squeeze", kind="function", category="shape", args=(Arg("dim", "dim"),),
               normalize=_squeeze_norm,
               shape=lambda a, ins: ins[0].with_shape(
                   [d for i, d in enumerate(ins[0].shape) if i != a["dim"]]),
               flops=lambda a, ins, out: _FREE,
               doc="Remove dimension `dim`, which must be proven to be 1."))


def _flatten_fn_norm(a: dict, ins: list[TensorType]) -> dict:
    (x,) = ins
    rank = max(x.rank, 1)  # torch.flatten of a 0-d tensor gives a 1-d one
    start = normalize_axis("flatten", a["start"], rank, x)
    end = normalize_axis("flatten", a["end"], rank, x)
    if start > end:
        raise Problem("E0307", "`start` of `flatten` comes after its `end`",
                      label=f"start {a['start']} is dimension {start}, end {a['end']} is "
                            f"dimension {end} of {fmt(x)}")
    return {**a, "start": start, "end": end}


def _flatten_fn_shape(a: dict, ins: list[TensorType]) -> TensorType:
    s = list(ins[0].shape) or [1]
    return ins[0].with_shape([*s[:a["start"]], numel(s[a["start"]:a["end"] + 1]),
                              *s[a["end"] + 1:]])


register(OpDef(name="flatten", kind="function", category="shape",
               args=(Arg("start", "dim", 1), Arg("end", "dim", -1)),
               normalize=_flatten_fn_norm, shape=_flatten_fn_shape,
               flops=lambda a, ins, out: _FREE,
               doc="torch.flatten(x, start_dim=start, end_dim=end); `start` defaults to 1, as "
                   "nn.Flatten."))
