"""The op registry: each layer and function of the language, declared once.

An `OpDef` holds an op's arguments (names, kinds, defaults, valid ranges), its inputs, its
shape rule, its parameter shapes (PyTorch's layout) and its FLOP rule. The checker and
`analyze` read these declarations; a backend only lowers an op. Rules are pure functions of
the resolved arguments and input types, and raise `Problem` with the values they received.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from archdsl.diagnostics import Problem
from archdsl.graph import FLOAT_DTYPES, ParamSpec, TensorType
from archdsl.symbolic import Dim, Sym, format_dim, format_shape
from archdsl.values import kind_of


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Arg:
    """One argument. `kind`: int, float, number (an int or a float, kept as given), bool, str,
    ints (int or tuple), padding, dims, dim, any."""

    name: str
    kind: str
    default: Any = REQUIRED
    min: float | None = None
    max: float | None = None
    max_exclusive: bool = False
    choices: tuple[Any, ...] | None = None
    doc: str = ""


@dataclass(frozen=True)
class Flops:
    """`flops` are what FlopCounterMode counts (products); `other` is elementwise work."""

    flops: int = 0
    other: int = 0


Args = dict[str, Any]
# A multi-output op's rule (`multi_output(args)` true) returns one type per output.
ShapeRule = Callable[[Args, list[TensorType]], TensorType | list[TensorType]]
ParamRule = Callable[[Args, list[TensorType]], list[ParamSpec]]
FlopRule = Callable[[Args, list[TensorType], TensorType], Flops]
Normalizer = Callable[[Args, list[TensorType]], Args]


def _no_params(args: Args, ins: list[TensorType]) -> list[ParamSpec]:
    return []


def _identity_norm(args: Args, ins: list[TensorType]) -> Args:
    return args


ArgsTest = Callable[[Args], bool]


def never(args: Args) -> bool:
    return False


def always(args: Args) -> bool:
    return True


@dataclass(frozen=True)
class OpDef:
    """Everything op-specific that is not a backend's lowering.

    Behaviour flags that code generators and runtimes read instead of keeping op-name lists:
    `inplace(args)`: may overwrite its input (its backward needs only its output);
    `output_reusable`: its backward never reads its output, so an in-place op after it may
    overwrite that output; `training(args)`: computes differently in training than in
    evaluation; `alias(args)`: returns its first input unchanged. `derives` names the
    arguments `normalize` infers from the inputs (`in`, `num_features`), which a generated
    constructor takes from the input's size; `stem` names an unnamed layer (`conv` gives
    `conv1`, `conv2`).

    How it is called: `keyword_inputs` are inputs given only by keyword
    (`key_padding_mask=m`); when given they follow the positional inputs in the node's
    inputs, and the node's arguments say which were given (`key_padding_mask: True`; the
    layer's arguments do not: that is a fact of one call). `number_inputs` may be numbers
    instead of tensors (`where(c, x, 0.0)`): a number is held in the arguments under the
    input's name (None there for a tensor) and is not among the node's inputs.
    `multi_output(args)`: the shape rule returns a list of types, and the op evaluates to a
    tuple of `part` nodes, one per output (docs/ir.md).
    """

    name: str
    kind: str  # "layer" (capitalised, constructed then applied) or "function"
    args: tuple[Arg, ...]
    shape: ShapeRule
    inputs: tuple[str, ...] = ("x",)
    min_inputs: int | None = None  # defaults to len(inputs)
    variadic: str | None = None  # name of the arg collecting extra positionals (Reshape dims)
    params: ParamRule = _no_params
    normalize: Normalizer = _identity_norm
    flops: FlopRule | None = None
    doc: str = ""
    tensor_list_input: bool = False  # concat([a, b], ...): first argument is a list of tensors
    category: str = "other"
    derives: tuple[str, ...] = ()
    stem: str = ""
    inplace: ArgsTest = never
    output_reusable: bool = False
    training: ArgsTest = never
    alias: ArgsTest = never
    keyword_inputs: tuple[str, ...] = ()
    number_inputs: tuple[str, ...] = ()
    multi_output: ArgsTest = never
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_params(self) -> bool:
        return self.params is not _no_params

    @property
    def n_min_inputs(self) -> int:
        return len(self.positional_inputs) if self.min_inputs is None else self.min_inputs

    @property
    def positional_inputs(self) -> tuple[str, ...]:
        return tuple(n for n in self.inputs if n not in self.keyword_inputs)

    @property
    def name_stem(self) -> str:
        return self.stem or self.name.lower()


REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    assert op.name not in REGISTRY, op.name
    REGISTRY[op.name] = op
    return op


def layers() -> dict[str, OpDef]:
    return {n: o for n, o in REGISTRY.items() if o.kind == "layer"}


def functions() -> dict[str, OpDef]:
    return {n: o for n, o in REGISTRY.items() if o.kind == "function"}


# ---- argument binding ---------------------------------------------------------------------
def bind_args(op: OpDef, positional: list[Any], keywords: dict[str, Any],
              arg_index: Callable[[str | int], Any] | None = None) -> Args:
    """Match call arguments to the declaration, fill defaults and check kinds and ranges.

    `arg_index` maps an argument (by name or position) to its source location, so a Problem
    can point at the offending argument rather than the whole call.
    """
    names = [a.name for a in op.args]
    out: Args = {}
    pos = list(positional)
    if op.variadic is not None:
        out[op.variadic] = list(pos)
        pos = []
    if len(pos) > len(op.args):
        raise Problem("E0401", f"`{op.name}` takes at most {len(op.args)} positional "
                      f"argument{'s' if len(op.args) != 1 else ''}, got {len(pos)}",
                      label="too many arguments", hint=_signature_hint(op))
    for decl, value in zip(op.args, pos, strict=False):
        out[decl.name] = value
    for key, value in keywords.items():
        if key not in names:
            from archdsl.diagnostics import suggest
            near = suggest(key, names)
            raise Problem("E0401", f"`{op.name}` has no argument `{key}`",
                          label=f"unknown argument `{key}`",
                          hint=f"did you mean `{near}`?" if near else _signature_hint(op),
                          loc=arg_index(key) if arg_index else None)
        if key in out:
            raise Problem("E0401", f"argument `{key}` of `{op.name}` given twice",
                          label="repeated argument",
                          loc=arg_index(key) if arg_index else None)
        out[key] = value
    for i, decl in enumerate(op.args):
        if decl.name not in out:
            if decl.default is REQUIRED:
                raise Problem("E0401", f"`{op.name}` needs the argument `{decl.name}`",
                              label=f"missing `{decl.name}`", hint=_signature_hint(op))
            out[decl.name] = decl.default
            continue
        where = arg_index(decl.name) if arg_index else None
        if where is None and arg_index:
            where = arg_index(i)
        try:
            out[decl.name] = check_arg(op.name, decl, out[decl.name])
        except Problem as p:
            p.loc = p.loc or where
            raise
    return out


def _signature_hint(op: OpDef) -> str:
    return f"`{signature(op)}`"


def signature(op: OpDef) -> str:
    """`Conv2d(out, kernel, stride=1, ...)`; a function's tensors first: `concat(x, dim=1)`."""
    parts = [f"{op.variadic}..."] if op.variadic else []
    parts += [a.name if a.default is REQUIRED else f"{a.name}={default_text(a.default)}"
              for a in op.args]
    if op.kind == "function":
        parts = [*op.inputs, *parts]
    return f"{op.name}({', '.join(parts)})"


def default_text(default: Any) -> str:
    """A declared default as a spec writes it (`1`, `0.0`, `1e-05`, `"zeros"`, `true`); `…`
    for an argument absent by default, whose absence means something of its own (a pooling's
    `stride` is its kernel, `Attention`'s `kv_heads` its `heads`)."""
    if default is None:
        return "…"
    return repr(default) if isinstance(default, float) else show_value(default)


def show_value(v: Any) -> str:
    """A value as a spec writes it: `true`, `"same"`, `(1, 2)`, `[3, 3]`, `H/2`."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, Sym):
        return format_dim(v)
    if isinstance(v, list):
        return "[" + ", ".join(map(show_value, v)) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(map(show_value, v)) + ")"
    if isinstance(v, float):  # a float stays one: `1.0`, `1e-05`, `inf`
        text = f"{v:g}"
        return text if any(c in text for c in ".en") else f"{text}.0"
    return str(v)


def check_arg(op: str, decl: Arg, v: Any) -> Any:
    kind = decl.kind
    if kind == "any":
        return v
    if kind == "int" or kind == "dim":
        if isinstance(v, Sym):
            raise Problem("E0405", f"`{decl.name}` of `{op}` must be known at compile time",
                          label=f"`{decl.name}` is the symbolic `{format_dim(v)}`")
        if not isinstance(v, int) or isinstance(v, bool):
            raise _wrong_type(op, decl, v, "an integer")
    elif kind in ("float", "number"):  # a number argument keeps an int an int
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _wrong_type(op, decl, v, "a number")
        v = float(v) if kind == "float" else v
    elif kind == "bool":
        if not isinstance(v, bool):
            raise _wrong_type(op, decl, v, "`true` or `false`")
    elif kind == "str":
        if not isinstance(v, str):
            raise _wrong_type(op, decl, v, "a string")
    elif kind in ("ints", "padding"):
        if kind == "padding" and isinstance(v, str):
            if v not in ("same", "valid"):
                raise Problem("E0403", f"`padding` of `{op}` must be \"same\", \"valid\" or "
                              f"integers, got \"{v}\"", label="unknown padding mode")
            return v
        items = list(v) if isinstance(v, (tuple, list)) else [v]
        for x in items:
            if isinstance(x, Sym):
                raise Problem("E0405", f"`{decl.name}` of `{op}` must be known at compile time",
                              label=f"`{format_dim(x)}` is symbolic")
            if not isinstance(x, int) or isinstance(x, bool):
                raise _wrong_type(op, decl, v, "an integer or a tuple of integers")
            _check_range(op, decl, x)
        return tuple(items) if isinstance(v, (tuple, list)) else v
    elif kind == "dims":
        items = list(v) if isinstance(v, (tuple, list)) else [v]
        for x in items:
            if not isinstance(x, (int, Sym)) or isinstance(x, bool):
                raise _wrong_type(op, decl, v, "a list of sizes")
        return items
    if decl.choices is not None and v not in decl.choices:
        opts = ", ".join(show_value(c) for c in decl.choices)
        raise Problem("E0403", f"`{decl.name}` of `{op}` must be one of {opts}",
                      label=f"got {show_value(v)}")
    if kind in ("int", "float", "number", "dim"):
        _check_range(op, decl, v)
    return v


def _check_range(op: str, decl: Arg, v: float) -> None:
    lo, hi = decl.min, decl.max
    bad = (lo is not None and (v <= 0 if lo == POSITIVE else v < lo)) or (
        hi is not None and (v >= hi if decl.max_exclusive else v > hi))
    if bad:
        if lo is not None and hi is not None:
            rng = f"[{_num(lo)}, {_num(hi)}{')' if decl.max_exclusive else ']'}"
            want = f"in {rng}"
        elif lo is not None:
            want = f"at least {_num(lo)}" if lo != 1e-300 else "positive"
        else:
            want = f"at most {_num(hi)}"
        raise Problem("E0403", f"`{decl.name}` of `{op}` must be {want}",
                      label=f"got {show_value(v)}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _wrong_type(op: str, decl: Arg, v: Any, want: str) -> Problem:
    return Problem("E0402", f"`{decl.name}` of `{op}` must be {want}",
                   label=f"got {kind_of(v)} {show_value(v) if not hasattr(v, 'kind_name') else ''}"
                   .rstrip())


POSITIVE = 1e-300  # a `min` meaning "strictly positive" for float arguments


# ---- helpers for shape rules ---------------------------------------------------------------
def fmt(t: TensorType) -> str:
    return format_shape(t.shape)


def need_rank(op: str, t: TensorType, ranks: tuple[int, ...], layout: str, what: str = "input"
              ) -> None:
    if t.rank not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise Problem("E0303", f"`{op}` expects a rank-{want} {what} {layout}",
                      label=f"got rank {t.rank}: {fmt(t)}",
                      hint=_rank_hint(op, t, ranks))


def _rank_hint(op: str, t: TensorType, ranks: tuple[int, ...]) -> str | None:
    if op in ("Linear",) or max(ranks) < t.rank:
        return "flatten it first: `|> Flatten`"
    if t.rank < min(ranks):
        return "reshape it first, e.g. `|> Reshape(...)` keeping the batch"
    return None


def need_float(op: str, t: TensorType) -> None:
    if t.dtype not in FLOAT_DTYPES:
        raise Problem("E0308", f"`{op}` needs a floating-point input",
                      label=f"got {t.dtype}{fmt(t)}",
                      hint="integer token ids go through `Embedding` first"
                      if t.dtype in ("i32", "i64") else None)


def need_known(op: str, what: str, d: Dim) -> int:
    if isinstance(d, Sym):
        raise Problem("E0310", f"the {what} of `{op}` must be known to size its parameters",
                      label=f"it is the symbolic `{format_dim(d)}`",
                      hint="declare that dimension as a number in the input's type")
    return d


def pair(v: Any, n: int, name: str, op: str) -> tuple[int, ...]:
    if isinstance(v, tuple):
        if len(v) != n:
            raise Problem("E0403", f"`{name}` of `{op}` needs {n} values",
                          label=f"got {len(v)}: {v}")
        return v
    return (v,) * n


def positive_out(op: str, what: str, d: Dim, t: TensorType) -> Dim:
    if isinstance(d, int) and d < 1:
        raise Problem("E0309", f"`{op}` would produce an empty {what}",
                      label=f"input {fmt(t)} gives size {d}",
                      hint="the input is too small for this kernel, stride and padding")
    return d


def numel(shape: tuple[Dim, ...] | list[Dim]) -> Dim:
    n: Dim = 1
    for d in shape:
        n = n * d
    return n
