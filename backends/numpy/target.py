"""How each op becomes NumPy code: the lowering rules of the NumPy target.

One generic rule covers every op with a kernel, from its declaration alone (`signature.py`):

- an op with parameters is a layer built in `__init__` (`nn.Conv2d(C, channels, (3, 3),
  stride=stride, padding=1, bias=False)`) and called in `forward` (`self.conv1(x)`);
- any other op is a function call in `forward` (`nn.relu(h)`, `nn.max_pool2d(x, (2, 2),
  stride=2)`), with `training=self.training` where its declaration says it behaves
  differently in training; as a stage of a container it is a layer (`nn.MaxPool2d(...)`).

`FORWARD` holds the few ops a person writes differently: the operators (`nn.add(h, x)`,
`nn.mul(x, 0.5)`), indexing (`nn.getitem(x, np.s_[:, -1])`), and `Flatten`/`Reshape` as
the reshapes they are. An op without a kernel is refused with its location (E0901).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from archdsl.expr import Lit, Op, Traced, Var
from archdsl.ops.registry import never
from archdsl.symbolic import Sym

from ..core.lowering import OpSite, Refused, plain
from ..core.pycode import Call, Expr, Seq
from .kernels import KERNELS
from .nn import tables
from .signature import has_params, layout

_WRITTEN = ("float", "number", "bool", "str")  # kinds normalize never changes: as written


def _key(v: Any) -> Any:
    """What makes two argument values the same in every instance of a class: a size is its
    expression, a literal its type and value."""
    if isinstance(v, Sym):
        return ("sym", str(v))
    if isinstance(v, Traced):
        return ("expr", v.expr)
    if isinstance(v, Lit):
        return ("lit", type(v.value), v.value)
    if isinstance(v, (Var, Op)):
        return ("expr", v)
    return ("lit", type(v), v)


def _same(a: Any, b: Any) -> bool:
    return _key(a) == _key(b)


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, (list, tuple)) else v


def _args(site: OpSite) -> list[Expr]:
    """The op's arguments as a call writes them: sizes as the definition computes them,
    other settings as the spec wrote them."""
    op = site.op
    kinds = {a.name: a.kind for a in op.args}
    skip = {*op.keyword_inputs, *op.number_inputs}
    args = {k: site.given[k] if kinds.get(k) in _WRITTEN and k in site.given else v
            for k, v in site.args.items() if k not in skip}
    positional, keywords = layout(op, args, _same)
    return [*(site.text(_tuples(v)) for v in positional),
            *(f"{k}={site.text(_tuples(v))}" for k, v in keywords.items())]


def _refuse(site: OpSite) -> Refused:
    return Refused(f"the NumPy backend has no kernel for `{site.op.name}`", site.node.loc)


def construct(site: OpSite) -> Expr:
    """A layer (`nn.Conv2d(...)`); a learned tensor is an array (`nn.parameter((w,))`)."""
    if site.op.name not in tables().layers:
        raise _refuse(site)
    func = "nn.parameter" if site.op.name == "Parameter" else f"nn.{site.op.name}"
    return Call(func, tuple(_args(site)))


def _inputs(site: OpSite) -> list[Expr]:
    """The tensors of a call: numbers where the op takes one in a tensor's place, tensors
    given by keyword last, by name."""
    op = site.op
    given = [k for k in op.keyword_inputs if site.args.get(k) is True]
    xs = list(site.xs)
    positional = xs[: len(xs) - len(given)]
    out: list[Expr] = []
    for name in op.positional_inputs:
        if name in op.number_inputs and site.args.get(name) is not None:
            out.append(site.arg(name))
        elif positional:
            out.append(positional.pop(0))
    out += positional
    return [*out, *(f"{k}={x}" for k, x in zip(given, xs[len(xs) - len(given):], strict=True))]


def _call(site: OpSite) -> Expr:
    op = site.op
    if site.module is not None:
        return Call(site.module, tuple(_inputs(site)))
    name = tables().functions[op.name]
    tensors: list[Expr] = [Seq(tuple(site.xs))] if op.tensor_list_input else _inputs(site)
    training = ["training=self.training"] if op.training is not never and \
        op.training(site.args) else []
    return Call(f"nn.{name}", (*tensors, *_args(site), *training))


def _binary(site: OpSite) -> Expr:
    """`nn.add(h, x)`; with a number, on the side the spec wrote it: `nn.sub(1.0, x)`."""
    if len(site.xs) == 2:
        return Call(f"nn.{site.op.name}", tuple(site.xs))
    scalar = site.arg("scalar")
    pair = (scalar, site.x) if site.args["scalar_first"] else (site.x, scalar)
    return Call(f"nn.{site.op.name}", pair)


def _slice(bounds: list[str]) -> str:
    """`0:4`, `1:`; around a bound that is an expression, spaced as the formatter spaces
    it: `0 : F // parts`, `F // parts :`, `:: n + 1`."""
    if all(re.fullmatch(r"-?[\w.]*", plain(b)) for b in bounds):
        return ":".join(bounds)
    text = bounds[0]
    for b in bounds[1:]:
        text += (" :" if text and not text.endswith(":") else ":") + (f" {b}" if b else "")
    return text


def _getitem(site: OpSite) -> Expr:
    """`nn.getitem(x, np.s_[:, 0:4])`: NumPy's own spelling of an index."""
    parts = []
    for item in site.args["index"]:
        if not isinstance(item, (list, tuple)):
            parts.append(site.text(item))
            continue
        start, stop, step = ("" if v is None else site.text(v) for v in item)
        parts.append(_slice([start, stop] if step in ("", "1") else [start, stop, step]))
    return Call("nn.getitem", (site.x, f"np.s_[{', '.join(parts)}]"))


def _batch(site: OpSite) -> str:
    return site.dim(site.node.type.shape[0])


def _reshape_layer(site: OpSite) -> Expr:
    """`Reshape(C, 1, 1)` keeps the batch: `nn.reshape(x, (B, C, 1, 1))`."""
    dims = [site.text(d) for d in site.args["dims"]]
    return Call("nn.reshape", (site.x, Seq((_batch(site), *dims), "(", ")")))


def _flatten(site: OpSite) -> Expr:
    return Call("nn.reshape", (site.x, Seq((_batch(site), "-1"), "(", ")")))


Rule = Callable[[OpSite], Expr]

FORWARD: dict[str, Rule] = {
    **{op: _binary for op in ("add", "sub", "mul", "div", "eq", "ne", "lt", "le", "gt", "ge")},
    "getitem": _getitem,
    "Reshape": _reshape_layer,
    "Flatten": _flatten,
}


def forward(site: OpSite) -> Expr:
    if site.op.name not in KERNELS:
        raise _refuse(site)
    rule = FORWARD.get(site.op.name)
    return rule(site) if rule is not None and site.module is None else _call(site)


def has_module(op: Any) -> bool:
    """Layers with parameters are built in `__init__`, and so is a layer whose snake-case
    name a function op owns with another kernel."""
    return has_params(op) or (op.kind == "layer" and op.name not in tables().functions
                              and op.name not in FORWARD)
