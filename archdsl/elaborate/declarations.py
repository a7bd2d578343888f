"""Declared tensors: `input`s (a model's own, or a block's bound to its caller's
tensors) and the shapes and dtypes that statements declare and `assert`."""

from __future__ import annotations

from typing import Any

from archdsl import syntax as ast
from archdsl.diagnostics import Loc, Problem, suggest
from archdsl.elaborate.frames import (
    Frame,
    check_dim_limit,
    named,
)
from archdsl.expr import expr_of
from archdsl.graph import (
    DTYPES,
    SymbolSource,
    TensorType,
)
from archdsl.ops import REGISTRY
from archdsl.staging import retyped
from archdsl.symbolic import (
    Dim,
    Sym,
    format_dim,
    format_shape,
)
from archdsl.values import (
    Skip,
    Tensor,
    a_kind,
)


class Declarations:
    """Mixed into `Elaborator`, whose evaluator computes the declared sizes."""

    def input(self, stmt: ast.Input, frame: Frame, top: bool) -> None:
        if not top:
            raise Problem("E0605", "`input` inside a `for` loop", loc=stmt.loc,
                          label="inputs are declared at the top of a block or model")
        if any(n == stmt.name for n, _ in frame.inputs):
            raise Problem("E0202", f"input `{stmt.name}` declared twice", loc=stmt.loc)
        dtype = self.dtype_of(stmt.type)
        frame.input_locs[stmt.name] = stmt.loc
        bound = frame.env.get(f" input:{stmt.name}")
        if bound is not None:  # a block instance: bind to the caller's tensor
            bound = self.unify_input(stmt, bound, dtype, frame)
            frame.inputs.append((stmt.name, bound))
            frame.env[stmt.name] = bound
            return
        shape: list[Dim] = []
        index = len(frame.inputs)
        g = frame.builder.graph
        for axis, dim in enumerate(stmt.type.dims):
            if isinstance(dim, ast.Name) and dim.id not in frame.env and \
                    not self._is_global(dim.id, frame):
                sym = Sym.symbol(dim.id)
                frame.env[dim.id] = sym
                g.symbols[dim.id] = SymbolSource(input=index, axis=axis)
                shape.append(sym)
                continue
            shape.append(self.dim_value(dim, frame))
        t = frame.builder.add("input", [], {"name": stmt.name}, TensorType(dtype=dtype,
                              shape=tuple(shape)), stmt.loc, frame.path)
        frame.builder.graph.nodes[t.node].name = stmt.name
        frame.inputs.append((stmt.name, t))
        frame.env[stmt.name] = t

    def _is_global(self, name: str, frame: Frame) -> bool:
        return name in frame.scope.consts

    def dtype_of(self, t: ast.TensorTypeExpr) -> str:
        if t.dtype is None:
            return "f32"
        if t.dtype not in DTYPES:
            near = suggest(t.dtype, DTYPES)
            raise Problem("E0402", f"unknown dtype `{t.dtype}`", loc=t.dtype_loc,
                          label=f"one of {', '.join(DTYPES)}",
                          hint=f"did you mean `{near}`?" if near else None)
        return t.dtype

    def dim_value(self, dim: ast.Node, frame: Frame) -> Dim:
        name = dim.id if isinstance(dim, ast.Name) else None
        if name is not None and name not in frame.env and not self._is_global(name, frame) \
                and name not in frame.scope.definitions and name not in REGISTRY:
            sizes = [k for k, v in frame.env.items() if isinstance(v, Sym)]
            raise Problem("E0201", f"undefined dimension `{name}`", loc=dim.loc,
                          label="symbolic dimensions are introduced by model inputs only",
                          hint=f"symbolic dimensions here: {', '.join(sizes)}" if sizes else None)
        v = self.ev(dim, frame)
        if isinstance(v, bool) or not isinstance(v, (int, Sym)):
            raise Problem("E0402", "a dimension must be an integer", loc=dim.loc,
                          label=f"this is {a_kind(v)}")
        if isinstance(v, int) and v < 1:
            raise Problem("E0403", "a dimension must be at least 1", loc=dim.loc,
                          label=f"got {v}")
        check_dim_limit(v, self.limits, dim.loc)
        return v

    def unify_input(self, stmt: ast.Input, actual: Tensor, dtype: str, frame: Frame
                    ) -> Tensor:
        """Bind the sizes a block's input declares to the caller's tensor. The tensor the
        block sees is the caller's, with its sizes (when tracing) in the block's own names."""
        declared = stmt.type
        got = actual.type
        if len(declared.dims) != got.rank:
            raise Problem("E0303", f"input `{stmt.name}` of `{frame.definition.name}` expects "
                          f"rank {len(declared.dims)}", loc=stmt.type.loc,
                          label=f"declared {self._show_decl(declared)}, given {got}")
        seen: list[Dim] = []
        for dim, have in zip(declared.dims, got.shape, strict=True):
            if isinstance(dim, ast.Name) and dim.id not in frame.env and \
                    not self._is_global(dim.id, frame):
                frame.env[dim.id] = have
                if frame.log is not None and isinstance(have, int):
                    frame.binding[dim.id] = expr_of(have)
                    frame.env[dim.id] = named(have, dim.id)
                seen.append(frame.env[dim.id])
                continue
            want = self.dim_value(dim, frame)
            if want != have:
                raise Problem("E0301", f"input `{stmt.name}` of `{frame.definition.name}` "
                              "has the wrong shape", loc=stmt.type.loc,
                              label=f"declared {self._show_decl(declared, frame)}, "
                                    f"given {got}")
            seen.append(want)
        if dtype != got.dtype:
            raise Problem("E0308", f"input `{stmt.name}` of `{frame.definition.name}` has the "
                          "wrong dtype", loc=stmt.type.loc,
                          label=f"declared {dtype}, given {got.dtype}")
        if frame.log is None:
            return actual
        return retyped(actual, got.with_shape(seen))

    def _show_decl(self, t: ast.TensorTypeExpr, frame: Frame | None = None) -> str:
        parts = []
        for d in t.dims:
            if frame is not None:
                try:
                    v = self.ev(d, frame)
                    if isinstance(v, (int, Sym)) and not isinstance(v, bool):
                        parts.append(format_dim(v))
                        continue
                except (Problem, Skip):
                    pass
            parts.append(d.id if isinstance(d, ast.Name) else "?")
        return "[" + ", ".join(parts) + "]"

    def check_declared(self, name: str, value: Any, t: ast.TensorTypeExpr, frame: Frame,
                       loc: Loc) -> None:
        if not isinstance(value, Tensor):
            raise Problem("E0204", f"`{name}` is {a_kind(value)}, not a tensor", loc=loc,
                          label="only tensors have shapes")
        want = [self.dim_value(d, frame) for d in t.dims]
        got = value.type
        if len(want) != got.rank or any(a != b for a, b in zip(want, got.shape, strict=False)):
            raise Problem("E0301", f"`{name}` does not have the declared shape", loc=t.loc,
                          label=f"declared {format_shape(want)}, but it is {got}",
                          hint=self._shape_hint(want, got))
        if t.dtype is not None and self.dtype_of(t) != got.dtype:
            raise Problem("E0308", f"`{name}` does not have the declared dtype", loc=t.loc,
                          label=f"declared {t.dtype}, but it is {got.dtype}")

    def _shape_hint(self, want: list[Dim], got: TensorType) -> str | None:
        if len(want) != got.rank:
            return "the ranks differ: a Flatten, Reshape or pooling step may be missing"
        diffs = [i for i, (a, b) in enumerate(zip(want, got.shape, strict=True)) if a != b]
        if len(diffs) == 1:
            return f"dimension {diffs[0]} differs"
        return None
