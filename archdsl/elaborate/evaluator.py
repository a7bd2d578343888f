"""Expressions: names, literals, operators, calls, indexing and pipelines, each
evaluated by one method of `Evaluator` (chosen by the node's type)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archdsl import syntax as ast
from archdsl.diagnostics import Loc, Problem, suggest
from archdsl.elaborate.frames import (
    FileScope,
    Frame,
    GraphBuilder,
    check_string_limit,
)
from archdsl.elaborate.scalars import min_max, scalar_binop
from archdsl.elaborate.training import optimizer, schedule
from archdsl.limits import raise_hint
from archdsl.ops import REGISTRY
from archdsl.schedules import SCHEDULES
from archdsl.staging import Record
from archdsl.symbolic import (
    Sym,
    SymbolicError,
    SymbolicLimit,
    format_dim,
)
from archdsl.values import (
    Function,
    LayerClass,
    LayerValue,
    OptimizerClass,
    ParamRef,
    Poison,
    ScalarFunction,
    ScheduleClass,
    Skip,
    Tensor,
    a_kind,
    kind_of,
)

# Operators on tensors -> their ops (archdsl/ops/arith.py).
TENSOR_OPERATORS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "**": "pow",
                    "==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}

class Evaluator:
    """Mixed into `Elaborator`, whose layers and records it uses."""

    def ev(self, e: ast.Node, frame: Frame) -> Any:
        method = self._dispatch[type(e)]
        try:
            return method(self, e, frame)
        except Problem as p:
            if p.loc is None:
                p.loc = e.loc
            raise
        except SymbolicLimit as exc:
            raise Problem("E0801", str(exc), loc=e.loc,
                          label="symbolic sizes stay small enough to compare and print",
                          hint="see docs/limits.md") from None
        except SymbolicError as exc:
            raise Problem("E0405", str(exc), loc=e.loc) from None

    def _ev_traced(self, e: ast.Node, frame: Frame) -> Any:
        """`ev` that keeps `frame.site`: what an op application makes is recorded there."""
        outer, frame.site = frame.site, e
        try:
            return Evaluator.ev(self, e, frame)
        finally:
            frame.site = outer

    def lookup(self, name: str, frame: Frame, loc: Loc) -> Any:
        if name in frame.env:
            v = frame.env[name]
            if isinstance(v, Poison):
                raise Skip
            return v
        scope = frame.scope
        if name in scope.consts:
            return self.const(name, scope, loc)
        if name in scope.definitions:
            return LayerClass(name, definition=scope.definitions[name])
        op = REGISTRY.get(name)
        if op is not None and not op.meta.get("internal"):
            return LayerClass(name, op=op) if op.kind == "layer" else Function(op)
        if name in ("min", "max"):
            return ScalarFunction(name)
        if name in ("SGD", "Adam", "AdamW"):
            return OptimizerClass(name)
        if name in SCHEDULES:
            return ScheduleClass(name)
        near_layer = self._suggest(name, lambda: [
            *(n for n, o in REGISTRY.items() if o.kind == "layer"), *scope.definitions]) \
            if name[:1].isupper() else None
        if near_layer or (name[:1].isupper() and any(c.islower() for c in name)):
            raise Problem("E0203", f"unknown layer `{name}`", loc=loc,
                          label="not a layer of the language or a block in scope",
                          hint=f"did you mean `{near_layer}`?" if near_layer else
                          "define it with `block` or import the file that does")
        near = self._suggest(name, lambda: [
            *(n for n in frame.env if not n.startswith(" ")), *scope.consts,
            *(n for n, o in REGISTRY.items()
              if o.kind == "function" and not o.meta.get("internal"))])
        raise Problem("E0201", f"undefined name `{name}`", loc=loc,
                      label="not defined before this point",
                      hint=f"did you mean `{near}`?" if near else None)

    def _suggest(self, name: str, candidates: Callable[[], list[str]]) -> str | None:
        """`suggest` while this run's budget lasts: it scans every name in scope, so a spec
        with thousands of undefined names gets hints for its first ones only."""
        if self.suggestions <= 0:
            return None
        self.suggestions -= 1
        return suggest(name, candidates())

    def const(self, name: str, scope: FileScope, loc: Loc) -> Any:
        owner = scope.const_scopes.get(name, scope)
        if name in owner.const_values:
            return owner.const_values[name]
        decl = owner.consts[name]
        if name in owner.evaluating:
            cycle = " -> ".join([*owner.evaluating[owner.evaluating.index(name):], name])
            raise Problem("E0607", f"constants defined in a cycle: {cycle}", loc=loc,
                          label="used before it has a value")
        owner.evaluating.append(name)
        try:
            tmp = Frame(owner, ast.Definition(decl.loc, "const", name, decl.name_loc, (), (),
                                              owner.file), GraphBuilder("", "", self.limits,
                                                                        self.steps), "")
            value = self.ev(decl.value, tmp)
        finally:
            owner.evaluating.remove(name)
        if isinstance(value, Tensor) or isinstance(value, (LayerValue,)):
            raise Problem("E0204", f"constant `{name}` must be a number, string or bool",
                          loc=decl.value.loc, label=f"this is {a_kind(value)}")
        owner.const_values[name] = value
        return value

    def _name(self, e: ast.Name, frame: Frame) -> Any:
        v = self.lookup(e.id, frame, e.loc)
        if isinstance(v, Tensor) and any(n == e.id and t is v for n, t in frame.inputs):
            frame.used_inputs.add(e.id)
        return v

    def _literal(self, e: ast.Literal, frame: Frame) -> Any:
        return e.value

    def _tuple(self, e: ast.TupleExpr, frame: Frame) -> Any:
        return tuple(self.ev(x, frame) for x in e.items)

    def _list(self, e: ast.ListExpr, frame: Frame) -> Any:
        return [self.ev(x, frame) for x in e.items]

    def _unary(self, e: ast.UnaryOp, frame: Frame) -> Any:
        v = self.ev(e.operand, frame)
        if e.op == "not":
            if not isinstance(v, bool):
                raise Problem("E0402", "`not` needs a true/false value",
                              label=f"this is {a_kind(v)}")
            return not v
        if isinstance(v, Tensor):
            return self.apply_op(REGISTRY["neg"], {}, [v], e.loc, frame)
        if isinstance(v, bool) or not isinstance(v, (int, float, Sym)):
            raise Problem("E0402", "unary `-` needs a number or a tensor",
                          label=f"this is {a_kind(v)}")
        return -v

    def _ifelse(self, e: ast.IfElse, frame: Frame) -> Any:
        cond = self.ev(e.cond, frame)
        if not isinstance(cond, bool):
            raise Problem("E0402", "an `if` condition must be true or false", loc=e.cond.loc,
                          label=f"this is {a_kind(cond)}")
        if self.staging is not None and frame.log is not None:
            other = e.orelse if cond else e.then
            ok = self.speculate(frame, lambda: self.ev(other, frame))
            self.record(frame, Record("if", frame.loop, taken=cond, failed=not ok), e)
        return self.ev(e.then if cond else e.orelse, frame)

    def _binop(self, e: ast.BinOp, frame: Frame) -> Any:
        if e.op in ("and", "or"):
            a = self.ev(e.left, frame)
            if not isinstance(a, bool):
                raise Problem("E0402", f"`{e.op}` needs true/false values", loc=e.left.loc,
                              label=f"this is {a_kind(a)}")
            if (e.op == "and" and not a) or (e.op == "or" and a):
                return a
            b = self.ev(e.right, frame)
            if not isinstance(b, bool):
                raise Problem("E0402", f"`{e.op}` needs true/false values", loc=e.right.loc,
                              label=f"this is {a_kind(b)}")
            return b
        a, b = self._both(e.left, e.right, frame)
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            return self.tensor_binop(e, a, b, frame)
        if isinstance(a, LayerValue | LayerClass) or isinstance(b, LayerValue | LayerClass):
            return self.repeat(e, a, b, frame)
        if isinstance(a, str) and isinstance(b, str) and e.op == "+":
            check_string_limit(len(a) + len(b), self.limits)
        return scalar_binop(e.op, a, b)

    def tensor_binop(self, e: ast.BinOp, a: Any, b: Any, frame: Frame) -> Tensor:
        op = TENSOR_OPERATORS.get(e.op)
        if op is None:
            raise Problem("E0402", f"`{e.op}` is not defined for tensors", loc=e.op_loc or e.loc,
                          hint="tensors support + - * / ** @ and the comparisons")
        if op == "matmul":
            for side, v in (("left", a), ("right", b)):
                if not isinstance(v, Tensor):
                    raise Problem("E0402", "`@` needs two tensors",
                                  label=f"the {side} side is {a_kind(v)}")
            return self.apply_op(REGISTRY[op], {}, [a, b], e.loc, frame)
        if op == "pow":
            if not isinstance(a, Tensor) or isinstance(b, Tensor):
                raise Problem("E0402", "a tensor power needs a number exponent: `x ** p`",
                              label=f"the base is {a_kind(a)}, the exponent {a_kind(b)}",
                              hint="`exp(log(b) * x)` raises a number to a tensor power")
            self._check_number(e, b)
            return self.apply_op(REGISTRY[op], {"exponent": b}, [a], e.loc, frame)
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            return self.apply_op(REGISTRY[op], {"scalar": None, "scalar_first": False}, [a, b],
                                 e.loc, frame)
        scalar, tensor, first = (b, a, False) if isinstance(a, Tensor) else (a, b, True)
        self._check_number(e, scalar)
        return self.apply_op(REGISTRY[op], {"scalar": scalar, "scalar_first": first}, [tensor],
                             e.loc, frame)

    def _check_number(self, e: ast.BinOp, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            if isinstance(v, Sym):
                raise Problem("E0405", f"`{e.op}` with the symbolic `{format_dim(v)}`",
                              label="a tensor operator with a symbolic size is not supported")
            raise Problem("E0402", f"`{e.op}` between a tensor and {a_kind(v)}",
                          label="the other side must be a tensor or a number")

    def repeat(self, e: ast.BinOp, a: Any, b: Any, frame: Frame) -> LayerValue:
        layer, n = (a, b) if isinstance(a, LayerValue | LayerClass) else (b, a)
        if e.op != "*" or isinstance(n, bool) or not isinstance(n, int):
            raise Problem("E0402", f"`{e.op}` is not defined for a layer and {a_kind(n)}",
                          label="`L * n` repeats a layer n times")
        if n < 1:
            raise Problem("E0403", "a layer must be repeated at least once", label=f"got {n}")
        if n > self.limits.max_repeat:
            raise Problem("E0801", "a repeat count above the limit",
                          label=f"{n:,} > {self.limits.max_repeat:,}",
                          hint=raise_hint("max_repeat"))
        base = layer if isinstance(layer, LayerValue) else self.configure(layer, (), (), e, frame)
        if not isinstance(base, LayerValue):
            raise Problem("E0402", f"`{layer.name}` cannot be repeated", label="it is a tensor")
        return LayerValue(base.cls, base.args, e.loc, id(e), repeat=base.repeat * n,
                          repeated=True)

    def _both(self, left: ast.Node, right: ast.Node, frame: Frame) -> tuple[Any, Any]:
        """Evaluate two operands; if the left one was poisoned, still check the right one."""
        try:
            a = self.ev(left, frame)
        except Skip:
            self.ev(right, frame)
            raise
        return a, self.ev(right, frame)

    def _pipeline(self, e: ast.Pipeline, frame: Frame) -> Any:
        src, stage = self._both(e.source, e.stage, frame)
        inputs = list(src) if isinstance(src, tuple) else [src]
        for v in inputs:
            if not isinstance(v, Tensor):
                raise Problem("E0204", f"only tensors flow through `|>`; this is {a_kind(v)}",
                              loc=e.source.loc, label="the left side of `|>`")
        try:
            if isinstance(stage, LayerClass):
                stage = self.configure(stage, (), (), e.stage, frame)
            if isinstance(stage, LayerValue):
                return self.apply_layer(stage, inputs, {}, e.stage.loc, frame)
            if isinstance(stage, Function):
                return self.apply_function(stage.op, inputs, [], {}, e.stage.loc, frame)
        except Problem as p:
            if p.loc is None:
                p.loc = e.stage.loc
            raise
        raise Problem("E0204", f"{a_kind(stage)} cannot be a pipeline stage", loc=e.stage.loc,
                      label="expected a layer such as `ReLU` or `Linear(10)`")

    def _call(self, e: ast.Call, frame: Frame) -> Any:
        func = self.ev(e.func, frame)
        if isinstance(func, LayerClass):
            return self.configure(func, e.args, e.kwargs, e, frame)
        args = [self.ev(a, frame) for a in e.args]
        kwargs: dict[str, Any] = {}
        for k in e.kwargs:
            if k.name in kwargs:
                raise Problem("E0401", f"argument `{k.name}` given twice", loc=k.loc)
            kwargs[k.name] = self.ev(k.value, frame)
        if isinstance(func, LayerValue):
            for v in [*args, *kwargs.values()]:
                if not isinstance(v, Tensor):
                    raise Problem("E0204", f"a configured layer is applied to tensors, not a "
                                  f"{kind_of(v)}", loc=e.loc,
                                  hint="settings go in the first call: `Layer(settings)(x)`")
            return self.apply_layer(func, args, kwargs, e.loc, frame)
        if isinstance(func, Function):
            n_in = len(func.op.inputs)
            return self.apply_function(func.op, args[:n_in], args[n_in:], kwargs, e.loc, frame,
                                       arg_locs=self._arg_locator(e, n_in))
        if isinstance(func, ScalarFunction):
            return min_max(func.name, args, kwargs, e.loc)
        if isinstance(func, OptimizerClass):
            return optimizer(func.name, args, kwargs, e.loc)
        if isinstance(func, ScheduleClass):
            return schedule(func.name, args, kwargs, e.loc)
        raise Problem("E0204", f"{a_kind(func)} cannot be called", loc=e.func.loc,
                      label="not a layer or a function")

    def _arg_locator(self, e: ast.Call, skip: int) -> Callable[[str | int], Loc | None]:
        def locate(key: str | int) -> Loc | None:
            if isinstance(key, int):
                i = key + skip
                return e.args[i].loc if i < len(e.args) else None
            for k in e.kwargs:
                if k.name == key:
                    return k.loc
            return None
        return locate

    def _index(self, e: ast.Index, frame: Frame) -> Any:
        value = self.ev(e.value, frame)
        if isinstance(value, (tuple, list)):
            if len(e.items) != 1 or isinstance(e.items[0], ast.Slice):
                raise Problem("E0402", "a tuple takes one integer index")
            i = self.ev(e.items[0], frame)
            if isinstance(i, bool) or not isinstance(i, int):
                raise Problem("E0402", "a tuple index must be an integer",
                              label=f"got {kind_of(i)}")
            if not -len(value) <= i < len(value):
                raise Problem("E0307", f"index {i} out of range", label=f"{len(value)} items")
            return value[i]
        if not isinstance(value, Tensor):
            raise Problem("E0204", f"{a_kind(value)} cannot be indexed", loc=e.value.loc)
        items: list[Any] = []
        for item in e.items:
            if isinstance(item, ast.Slice):
                parts = [None if p is None else self._int_index(p, frame)
                         for p in (item.start, item.stop, item.step)]
                items.append(parts)
            else:
                items.append(self._int_index(item, frame))
        return self.apply_op(REGISTRY["getitem"], {"index": items}, [value], e.loc, frame)

    def _int_index(self, node: ast.Node, frame: Frame) -> int:
        v = self.ev(node, frame)
        if isinstance(v, Sym):
            raise Problem("E0405", "an index must be known at compile time", loc=node.loc,
                          label=f"`{format_dim(v)}` is symbolic")
        if isinstance(v, bool) or not isinstance(v, int):
            raise Problem("E0402", "indices must be integers", loc=node.loc,
                          label=f"got {kind_of(v)}", hint="use `x[:, 0:4]` for a range")
        return v

    def _attribute(self, e: ast.Attribute, frame: Frame) -> Any:
        base = self.ev(e.value, frame)
        if isinstance(base, ParamRef):
            layer, name = base.layer, f"{base.prefix}.{e.name}"
        elif isinstance(base, LayerValue):
            layer, name = base, e.name
        else:
            raise Problem("E0204", f"{a_kind(base)} has no attribute `{e.name}`", loc=e.loc,
                          hint="parameters are read from a bound layer: `wte.weight`")
        if layer.path is None or layer.repeat != 1 or layer.cls.op is None:
            raise Problem("E0204", f"`{e.name}` cannot be read here", loc=e.loc,
                          label="apply the layer before reading its parameters"
                          if layer.path is None else "only a single layer's parameters are "
                          "readable")
        spec = frame.builder.graph.layers.get(layer.path)
        if spec is None:  # its application failed, and said why
            raise Skip
        for p in spec.params:
            if p.name == name and p.kind == "param":
                return self.apply_op(REGISTRY["param"], {"name": name, "shape": list(p.shape)},
                                     [], e.loc, frame, layer_path=layer.path)
        if any(p.name.startswith(name + ".") for p in spec.params):
            return ParamRef(layer, name)
        names = [p.name for p in spec.params if p.kind == "param"]
        raise Problem("E0201", f"`{spec.op}` has no parameter `{name}`", loc=e.loc,
                      label=f"its parameters: {', '.join(names) or 'none'}")

    _dispatch: dict[type, Callable[..., Any]] = {
        ast.Name: _name, ast.Literal: _literal, ast.TupleExpr: _tuple, ast.ListExpr: _list,
        ast.UnaryOp: _unary, ast.IfElse: _ifelse, ast.BinOp: _binop, ast.Pipeline: _pipeline,
        ast.Call: _call, ast.Index: _index, ast.Attribute: _attribute,
    }
