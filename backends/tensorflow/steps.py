"""What the Keras lowering rules leave for the layout pass: op applications and layers to make,
as data (their `repr` is what makes two instances of a block share one function).

The core's emitter writes a function's statements with these in place of finished code: an
`Op` is one op applied to its inputs, in a template whose input slots (`X[0]`, `X[1]`...) the
layout pass fills once it has decided whether each input travels channels-last; a `Layer` is a
Keras layer a function makes, with the template of its application. Placeholders are strings
between NUL characters, which no generated code contains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.pycode import Call, Expr

X = tuple(f"\0i{k}\0" for k in range(8))  # the inputs of an op, in its template
M = "\0layer\0"  # the layer a template applies
AXIS = "\0axis\0"  # an axis the layout pass writes in the input's layout
ANCHOR = "\0anchor\0"  # any tensor of the function: what a learned tensor is read against

# Layouts: how a tensor of rank 3 or more holds its spec dimensions.
FIRST = "first"  # as the spec writes it, channels (dim 1) first
LAST = "last"  # channels moved to the end: [B, C, H, W] held as [B, H, W, C]


@dataclass(frozen=True)
class Op(Call):
    """One op applied in a function. `kind` says how it treats layouts:

    - `any`: elementwise; its inputs share one layout, which it keeps;
    - `first` / `last`: its inputs must be channels-first / channels-last (rank 3 or more),
      and so is its result;
    - `axis`: `code` names a spec dimension as `AXIS`, written in the input's layout;
    - `reduce`, `getitem`, `reshape`, `expand`, `permute`, `pad`: written by the layout pass from
      `data`;
    - `apply`: the layer `module` applied (its `Layer` says how, unless `code` is given).
    """

    kind: str = "any"
    code: Expr = ""
    ins: tuple[Expr, ...] = ()
    ranks: tuple[int, ...] = ()
    dtypes: tuple[str, ...] = ()
    rank: int = 0
    dtype: str = "f32"
    data: tuple[Any, ...] = ()
    module: str | None = None
    loc: Any = None


@dataclass(frozen=True)
class Layer(Call):
    """A Keras layer to make, `func(args)` (the layout pass adds its `name`), and how it is
    applied: `apply` with `M` for the layer and `X[k]` for the inputs, in layout `kind`
    (`any`, `first` or `last`), after the stateless steps `before` (on input 0) and followed by
    `after` (on the result)."""

    apply: Expr = ""
    kind: str = "any"
    before: tuple[Expr, ...] = ()
    after: tuple[Expr, ...] = ()
    ranks: tuple[int, ...] = ()
    rank: int = 0
    read: bool = False  # a learned tensor (`Parameter`): `apply` reads it against `ANCHOR`


@dataclass(frozen=True)
class Stack(Call):
    """Several Keras layers for one spec layer (a recurrent layer per PyTorch layer), applied
    in turn; `names` are their name suffixes (None: an unnamed stateless step)."""

    layers: tuple[Layer, ...] = ()
    names: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class Repeat(Call):
    """`L * n`: `count` copies chained; `rest` (when given) makes the copies after the first,
    `rest_count` of them."""

    first: Expr = ""
    rest: Expr | None = None
    count: str = ""
    rest_count: str = ""


@dataclass(frozen=True)
class Stages(Call):
    """Different makes applied one after the other (the copies of a repeat that differ)."""

    makes: tuple[Expr, ...] = ()
