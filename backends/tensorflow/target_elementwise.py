"""Keras lowerings of LANGUAGE.md section 10's activations, elementwise functions and
comparisons, tensor makers, reductions, shape functions, norms, padding and structured
dropout; joined into `target.py`'s tables. The layers and functions of
`layers_elementwise.py` stand in where Keras lacks PyTorch's semantics (docs/codegen.md
lists each op's lowering).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from itertools import accumulate

from ..core.lowering import OpSite
from ..core.pycode import Expr, Seq, binop, call, flat
from . import steps
from .steps import AXIS, FIRST, LAST, Layer, M, X
from .target import DTYPES, _apply, _batch_norm, _cast, _literal, _op, _reduce, applied

Rule = Callable[[OpSite], steps.Op]
FLOATING = ("f16", "bf16", "f32", "f64")


# ---- activations -----------------------------------------------------------------------------
def _unary(func: str) -> Rule:
    """`func(x)`, elementwise in any layout."""
    return lambda site: _op(site, "any", call(func, X[0]))


def _mish(site: OpSite) -> steps.Op:
    """x * tanh(softplus(x)), in keras.ops (keras.activations.mish calls TensorFlow
    directly, which a functional model's symbolic tensors refuse)."""
    return _op(site, "any", binop("*", X[0], call("keras.ops.tanh",
                                                  call("keras.ops.softplus", X[0]))))


def _elu(site: OpSite) -> steps.Op:
    return _op(site, "any", call("keras.ops.elu", X[0], *site.keyword("alpha", 1.0)))


def _softplus(site: OpSite) -> steps.Op:
    """keras.ops.softplus is PyTorch's at beta 1, threshold 20 below float64 (past 20,
    x + exp(-x) rounds to x); otherwise PyTorch's formula."""
    if _literal(site, "beta") == 1.0 and _literal(site, "threshold") == 20.0 and \
            site.ins[0].dtype != "f64":
        return _op(site, "any", call("keras.ops.softplus", X[0]))
    return _op(site, "any", call("softplus_threshold", X[0], site.arg("beta"),
                                 site.arg("threshold")))


def _log_softmax(site: OpSite) -> steps.Op:
    return _op(site, "axis", call("keras.ops.log_softmax", X[0], f"axis={AXIS}"),
               (site.args["dim"] % site.ins[0].rank,))


def _prelu(site: OpSite) -> Layer:
    """One slope in any layout; one per channel with the channels last (rank 3 or more),
    where PyTorch's `weight` [C] broadcasts."""
    rank = site.ins[0].rank
    per_channel = site.args["num_parameters"] != 1
    return Layer("PReLU", (*site.keyword("num_parameters", 1), *site.keyword("init", 0.25)),
                 apply=call(M, X[0]), kind=LAST if per_channel and rank >= 3 else "any",
                 ranks=(rank,), rank=rank)


# ---- elementwise functions and comparisons ---------------------------------------------------
def _extreme(name: str) -> Rule:
    """torch.maximum / minimum: floating operands through `even_<name>`, which splits the
    gradient at a tie as PyTorch does; integers (no gradient) through keras.ops."""
    def rule(site: OpSite) -> steps.Op:
        floating = site.node.type.dtype in FLOATING
        func = f"even_{name}" if floating else f"keras.ops.{name}"
        return _op(site, "any", call(func, _cast(site, 0), _cast(site, 1)))
    return rule


def _clamp(site: OpSite) -> steps.Op:
    x = _cast(site, 0)
    bounds = [b for b in ("min", "max") if site.args[b] is not None]
    if len(bounds) == 2:
        return _op(site, "any", call("keras.ops.clip", x, site.arg("min"), site.arg("max")))
    func = "keras.ops.maximum" if bounds == ["min"] else "keras.ops.minimum"
    return _op(site, "any", call(func, x, site.arg(bounds[0])))


_COMPARISON = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
               "gt": "greater", "ge": "greater_equal"}


def _comparison(site: OpSite) -> steps.Op:
    func = f"keras.ops.{_COMPARISON[site.op.name]}"
    if len(site.xs) == 2:
        return _op(site, "any", call(func, X[0], X[1]))
    scalar = site.arg("scalar")
    operands = (scalar, X[0]) if site.args["scalar_first"] else (X[0], scalar)
    return _op(site, "any", call(func, *operands))


def _where(site: OpSite) -> steps.Op:
    """keras.ops.where; tensors in the result's dtype, two numbers written as floats (the
    language gives them `f32`)."""
    tensors = iter(range(1, len(site.xs)))
    numbers = [site.args[k] for k in ("a", "b")]
    both = all(n is not None for n in numbers)
    operands: list[Expr] = [
        _cast(site, next(tensors)) if n is None else
        site.text(float(n)) if both else site.arg(k)
        for k, n in zip(("a", "b"), numbers, strict=True)]
    return _op(site, "any", call("keras.ops.where", X[0], *operands))


def _masked_fill(site: OpSite) -> steps.Op:
    code: Expr = call("keras.ops.where", X[1], site.arg("value"), X[0])
    if site.ins[0].dtype not in FLOATING:  # the value in x's dtype
        code = call("keras.ops.cast", code, f'"{DTYPES[site.ins[0].dtype]}"')
    return _op(site, "any", code)


def _randn_like(site: OpSite) -> steps.Op:
    """Noise in the input's layout; `archdsl.noise` draws in the spec's, which the layer
    moves to where the input holds its channels (`channels`, rank 3 or more)."""
    if site.ins[0].rank < 3:
        return _op(site, "any", applied(call("RandnLike"), X[0]))
    return _op(site, "axis", applied(call("RandnLike", f"channels={AXIS}"), X[0]), (1,))


# ---- reductions ---------------------------------------------------------------------------
def _var(site: OpSite) -> steps.Op:
    return _reduce("unbiased_var" if site.args["unbiased"] else "keras.ops.var")(site)


# ---- shape functions ----------------------------------------------------------------------
def _new_axis(func: str) -> Rule:
    """An op whose `dim` names an axis of its result (stack, unsqueeze) or of its input
    of one more dimension (squeeze): written in the spec's layout, which ranks that differ
    from the result's give it."""
    def rule(site: OpSite) -> steps.Op:
        rank = max(site.node.type.rank, site.ins[0].rank)
        inputs: Expr = Seq(X[:len(site.xs)]) if site.op.name == "stack" else X[0]
        return _op(site, "axis", call(func, inputs, f"axis={AXIS}"),
                   (site.args["dim"] % rank,))
    return rule


def _flatten(site: OpSite) -> steps.Op:
    x, dims = site.ins[0], tuple(site.dim(d) for d in site.node.type.shape)
    kept = site.args["start"] != 0 and dims[0] == site.dim(x.shape[0])
    return _op(site, "reshape", code="batch" if kept else "", data=dims)


def _parts(site: OpSite) -> steps.Op:
    """split and chunk: keras.ops.split at the boundaries of the parts, their sizes as the
    spec computes them (a block shared by inputs of several widths reads them). Each part
    keeps its input's layout."""
    x = site.ins[0]
    dim = site.args["dim"] % x.rank
    cuts = _cuts([site.dim(part.shape[dim]) for part in site.node.parts])
    op = _op(site, "axis", call("keras.ops.split", X[0], Seq(cuts), f"axis={AXIS}"), (dim,))
    return replace(op, rank=x.rank, dtype=x.dtype)


def _cuts(sizes: list[str]) -> tuple[str, ...]:
    """Where parts of these sizes end, but the last: [2, 3, 2] -> 2, 5; [n, n, m] -> n,
    2 * n."""
    if all(s.isdigit() for s in sizes):
        return tuple(str(c) for c in accumulate(int(s) for s in sizes[:-1]))
    out: list[str] = []
    for k, size in enumerate(sizes[:-1]):
        equal = all(s == size for s in sizes[:k + 1])
        total = size if k == 0 else binop("*", str(k + 1), size) if equal else \
            binop("+", out[-1], size)
        out.append(flat(total))
    return tuple(out)


# ---- padding ------------------------------------------------------------------------------
def _pad(site: OpSite) -> steps.Op:
    """keras.ops.pad for "constant" and "reflect" (numpy's `reflect` is PyTorch's);
    `pad_edges` for "replicate" and "circular". `data` holds each spec dimension's
    (before, after); the layout pass writes them in the input's layout."""
    rank, padding = site.ins[0].rank, site.args["padding"]
    pairs = [(0, 0)] * rank
    for i in range(len(padding) // 2):
        pairs[rank - 1 - i] = (padding[2 * i], padding[2 * i + 1])
    mode = site.args["mode"]
    if mode == "constant":
        value = [] if site.args["value"] == 0.0 else [f"constant_values={_fill(site)}"]
        code = call("keras.ops.pad", X[0], AXIS, *value)
    elif mode == "reflect":
        code = call("keras.ops.pad", X[0], AXIS, 'mode="reflect"')
    else:
        code = call("pad_edges", X[0], AXIS, f'"{mode}"')
    return _op(site, "pad", code, tuple(pairs))


def _fill(site: OpSite) -> str:
    """The padding value in the input's dtype (F.pad truncates it to an integer one)."""
    dtype = site.ins[0].dtype
    cast = "bool" if dtype == "bool" else "int" if dtype.startswith("i") else None
    if cast is None:
        return site.arg("value")
    if _literal(site, "value") is not None:
        return site.text(bool(site.args["value"]) if cast == "bool" else
                         int(site.args["value"]))
    return f"{cast}({site.arg('value')})"


# ---- norms --------------------------------------------------------------------------------
def _affine(site: OpSite) -> list[str]:
    """Keras's `center` and `scale` for PyTorch's `affine`, when it is not true."""
    if _literal(site, "affine") is True:
        return []
    return [f"center={site.arg('affine')}", f"scale={site.arg('affine')}"]


def _norm(site: OpSite, func: str, args: list[str], kind: str) -> Layer:
    rank = site.ins[0].rank
    return Layer(func, tuple(args), apply=call(M, X[0]), kind=kind if rank >= 3 else "any",
                 ranks=(rank,), rank=rank)


def _group_norm(site: OpSite) -> Layer:
    """Keras's GroupNormalization over the channels held last: population variance,
    epsilon inside the root, as PyTorch's."""
    return _norm(site, "keras.layers.GroupNormalization",
                 [site.arg("groups"), f"epsilon={site.arg('eps')}", *_affine(site)], LAST)


def _instance_norm(site: OpSite) -> Layer:
    return _norm(site, "InstanceNorm", [
        *site.keyword("eps", 1e-5, "epsilon"), *site.keyword("momentum", 0.1),
        *site.keyword("affine", False), *site.keyword("track_running_stats", False)], LAST)


def _rms_norm(site: OpSite) -> Layer:
    return _norm(site, "RMSNorm", [*site.keyword("eps", 1e-6, "epsilon"),
                                   *site.keyword("elementwise_affine", True, "scale")], FIRST)


CONSTRUCT: dict[str, Callable[[OpSite], Layer]] = {
    "PReLU": _prelu,
    "BatchNorm3d": _batch_norm,
    "GroupNorm": _group_norm,
    "InstanceNorm1d": _instance_norm,
    "InstanceNorm2d": _instance_norm,
    "RMSNorm": _rms_norm,
}

FORWARD: dict[str, Rule] = {
    # activations, as layers and as functions
    "ReLU6": _unary("keras.ops.relu6"),
    "relu6": _unary("keras.ops.relu6"),
    "Hardswish": _unary("keras.ops.hard_silu"),
    "hardswish": _unary("keras.ops.hard_silu"),
    "Hardsigmoid": _unary("keras.ops.hard_sigmoid"),
    "hardsigmoid": _unary("keras.ops.hard_sigmoid"),
    "Mish": _mish,
    "mish": _mish,
    "ELU": _elu,
    "elu": _elu,
    "Softplus": _softplus,
    "softplus": _softplus,
    "LogSoftmax": _log_softmax,
    "log_softmax": _log_softmax,
    "PReLU": _apply,
    # elementwise functions and comparisons
    "abs": _unary("keras.ops.abs"),
    "exp": _unary("keras.ops.exp"),
    "log": _unary("keras.ops.log"),
    "sqrt": _unary("keras.ops.sqrt"),
    "rsqrt": _unary("keras.ops.rsqrt"),
    "pow": lambda s: _op(s, "any", binop("**", X[0], s.arg("exponent"))),
    "clamp": _clamp,
    "maximum": _extreme("maximum"),
    "minimum": _extreme("minimum"),
    **dict.fromkeys(_COMPARISON, _comparison),
    "where": _where,
    "masked_fill": _masked_fill,
    # tensor makers
    "ones_like": _unary("keras.ops.ones_like"),
    "zeros_like": _unary("keras.ops.zeros_like"),
    "randn_like": _randn_like,
    # reductions
    "amax": _reduce("keras.ops.max"),
    "amin": _reduce("keras.ops.min"),
    "var": _var,
    # shape functions
    "stack": _new_axis("keras.ops.stack"),
    "unsqueeze": _new_axis("keras.ops.expand_dims"),
    "squeeze": _new_axis("keras.ops.squeeze"),
    "flatten": _flatten,
    "split": _parts,
    "chunk": _parts,
    # norms
    "BatchNorm3d": _apply,
    "GroupNorm": _apply,
    "InstanceNorm1d": _apply,
    "InstanceNorm2d": _apply,
    "RMSNorm": _apply,
    # padding
    "Pad": _pad,
    "pad": _pad,
    # structured dropout (the identity at p = 0, which the core never lowers)
    "Dropout1d": lambda s: _op(s, LAST, applied(call("keras.layers.SpatialDropout1D",
                                                     s.arg("p")), X[0])),
    "Dropout2d": lambda s: _op(s, LAST, applied(call("keras.layers.SpatialDropout2D",
                                                     s.arg("p")), X[0])),
    "DropPath": lambda s: _op(s, "any", applied(call("DropPath", s.arg("p")), X[0])),
}
