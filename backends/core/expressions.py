"""The emitter's expressions: one method per syntax node (`_Pipeline`, `_Call`, `_IfElse`,
...), each returning the value it made (`values.py`) and writing the statements it needs."""

from __future__ import annotations

from typing import Any

from archdsl import syntax as ast
from archdsl.expr import E, Lit, Op, binary, call, lit, names, neg, negate
from archdsl.ops import REGISTRY
from archdsl.ops.registry import OpDef

from .classes import Fail, If, Line, Module, Stmt
from .lowering import OpSite, Refused, token_uses
from .pycode import Call, Expr
from .reads import fail_message, given_args
from .values import Function, LayerName, LayerRef, Parts, Scalar, Tensor


class Expressions:
    """Mixed into `Emitter` (emitter.py), whose state these methods read and write."""

    def value(self, e: ast.Node, target: str | None = None) -> Any:
        method = getattr(self, f"_{type(e).__name__}")
        return method(e, target)

    def scalar(self, e: ast.Node) -> E:
        v = self.value(e)
        if isinstance(v, Scalar):
            return v.e
        if isinstance(v, Tensor):
            raise Refused("a tensor where a number belongs", e.loc)
        raise Refused(f"`{type(v).__name__}` where a number belongs", e.loc)

    def _Name(self, e: ast.Name, target: str | None) -> Any:
        if e.id in self.env:
            return self.env[e.id]
        found = self.gen.lookup(self.defn, e.id)
        if isinstance(found, ast.Definition):
            return LayerName(e.id, None, found)
        if isinstance(found, OpDef):
            return LayerName(e.id, found, None) if found.kind == "layer" else Function(found)
        if found is not None:
            return Scalar(lit(found))  # a file-level constant
        raise Refused(f"`{e.id}` cannot be written here", e.loc)

    def _Literal(self, e: ast.Literal, target: str | None) -> Any:
        return Scalar(Lit(e.value))

    def _TupleExpr(self, e: ast.TupleExpr, target: str | None) -> Any:
        items = [self.value(x) for x in e.items]
        if all(isinstance(x, Scalar) for x in items):
            return Scalar(Op("tuple", tuple(x.e for x in items)))
        return Parts(items)

    def _ListExpr(self, e: ast.ListExpr, target: str | None) -> Any:
        items = [self.value(x) for x in e.items]
        if all(isinstance(x, Scalar) for x in items):
            return Scalar(Op("list", tuple(x.e for x in items)))
        return Parts(items)

    def _UnaryOp(self, e: ast.UnaryOp, target: str | None) -> Any:
        v = self.value(e.operand)
        if isinstance(v, Tensor):
            return self.op_at(e, [v], target)
        if e.op == "not":
            return Scalar(Op("not", (v.e,)))
        return Scalar(neg(v.e))

    def _BinOp(self, e: ast.BinOp, target: str | None) -> Any:
        a = self.value(e.left)
        if e.op in ("and", "or"):
            b = self.value(e.right)
            return Scalar(Op(e.op, (a.e, b.e)))
        b = self.value(e.right)
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            tensors = [x for x in (a, b) if isinstance(x, Tensor)]
            return self.op_at(e, tensors, target)
        for layer, count in ((a, b), (b, a)):
            if isinstance(layer, (LayerRef, LayerName)) and isinstance(count, Scalar):
                ref = self.configure(layer, e, {}) if isinstance(layer, LayerName) else layer
                return LayerRef(ref.name, ref.op, ref.definition, ref.given, e, count.e,
                                keywords=ref.keywords)
        return Scalar(binary(e.op, a.e, b.e))

    def _IfElse(self, e: ast.IfElse, target: str | None) -> Any:
        cond = self.scalar(e.cond)
        rec = self.record(e, "if")
        if not names(cond):  # decided by literals and constants alone
            return self.value(e.then if rec.taken else e.orelse, target)
        first, second = (e.then, e.orelse) if rec.taken else (e.orelse, e.then)
        var = target or self.temp()
        taken_body, taken = self._branch(first, var)
        if isinstance(taken, Scalar) and not taken_body:
            other = self.value(second)
            then, orelse = (taken, other) if rec.taken else (other, taken)
            return Scalar(Op("if", (then.e, cond, orelse.e)))
        if not isinstance(taken, Tensor):
            raise Refused("an `if` that chooses a layer or several tensors at run time",
                          e.loc)
        if rec.failed and not self._other_logs_have(second):
            other_body: list[Stmt] = [Fail(fail_message(self.defn, e))]
        else:
            other_body, _ = self._branch(second, var)
        then, orelse = (taken_body, other_body) if rec.taken else (other_body, taken_body)
        code = self.text(cond)
        self.out.append(If(code, then, orelse, token_uses(code), self.text(negate(cond))))
        self.kinds[var] = self.kinds.get(var, "tensor")
        return Tensor(var, taken.type)

    def _branch(self, e: ast.Node, var: str) -> tuple[list[Stmt], Any]:
        """The statements of one `if` branch, its value assigned to `var`."""
        saved, self.out = self.out, []
        try:
            value = self._chain(e, var) or self.value(e, var)
            if isinstance(value, Tensor) and value.code != var:
                plain = isinstance(value.code, str) and value.code.isidentifier()
                self.out.append(Line(var, value.code, "" if plain else self._comment(value)))
            return self.out, value
        finally:
            self.out = saved

    def _chain(self, e: ast.Node, var: str) -> Tensor | None:
        """`x |> Conv2d(...) |> BatchNorm2d` whose layers the spec names `shortcut.0`,
        `shortcut.1`: one container applied once (torchvision's `downsample`)."""
        stages: list[ast.Pipeline] = []
        while isinstance(e, ast.Pipeline):
            stages.append(e)
            e = e.source
        stages.reverse()
        if len(stages) < 2 or not all(self._configures_layer(p.stage) for p in stages):
            return None
        paths = []
        for p in stages:
            recs = self.records(p, "node") or self.records(p, "call")
            if len(recs) != 1:
                return None
            rec = recs[0]
            path = self.node(rec.node).layer if rec.kind == "node" else rec.scope.path  # type: ignore[union-attr]
            paths.append(self._relative(path or ""))
        root = paths[0].rsplit(".", 1)[0]
        if paths != [f"{root}.{k}" for k in range(len(stages))] or "." in root or self.loops:
            return None
        src = self.value(e)
        if not isinstance(src, Tensor):
            return None
        makes: list[Expr] = []
        current = [src]
        for p in stages:
            layer = self.value(p.stage)
            if isinstance(layer, LayerName):
                layer = self.configure(layer, p.stage, None)
            make, out = self._stage_make(layer, p, current)
            if make is None:
                return None
            makes.append(make)
            current = [out]
        if root not in self.built:
            self.built.add(root)
            self.out.append(Module(root, self.target.sequential(makes)))
        self.out.append(Line(var, Call(self.target.module_ref(root), (src.code,)),
                             self._comment_change(current[0].type, src.type)))
        return Tensor(var, current[0].type)

    def _configures_layer(self, stage: ast.Node) -> bool:
        name = stage.func if isinstance(stage, ast.Call) else stage
        if not isinstance(name, ast.Name) or name.id in self.env:
            return False
        found = self.gen.lookup(self.defn, name.id)
        return isinstance(found, ast.Definition) or (
            isinstance(found, OpDef) and found.kind == "layer")

    def _stage_make(self, layer: LayerRef, p: ast.Pipeline, current: list[Tensor]
                    ) -> tuple[Expr | None, Tensor]:
        if layer.definition is not None:
            rec = self.record(p, "call")
            assert rec.scope is not None
            child = self.gen.class_for(layer.definition, self.staging.log_of(rec.scope))
            if child not in self.uses:
                self.uses.append(child)
            make = self.block_make(child, layer.given, current, layer.keywords)
            return make, Tensor("", rec.outputs[0].type)
        node = self.node(self.record(p, "node").node)
        site = OpSite(REGISTRY[node.op], node, [t.type for t in current], [],
                      self.consistent(layer.given, node), None, self.text, self.temp)
        return self.target.as_module(site), Tensor("", node.type)

    def _other_logs_have(self, site: ast.Node) -> bool:
        return any(r for log in self.logs[1:] for r in log.sites.get(id(site), ()))

    def _Pipeline(self, e: ast.Pipeline, target: str | None) -> Any:
        inner = (self.via or target) if target is not None else None
        src = self.value(e.source, inner)
        if inner is not None and isinstance(src, Tensor) and isinstance(e.source, ast.Pipeline):
            src = Tensor(self.materialize_to(inner, src), src.type, temp=True, op=src.op)
        stage = self.value(e.stage)
        inputs = src.items if isinstance(src, Parts) else [src]
        if isinstance(stage, LayerName):
            stage = self.configure(stage, e.stage, {})
        if isinstance(stage, LayerRef):
            return self.apply(stage, inputs, {}, e, target)
        if isinstance(stage, Function):
            return self.op_at(e, inputs, target, given={})
        raise Refused("this pipeline stage", e.stage.loc)

    def materialize_to(self, var: str, value: Tensor) -> str:
        if value.code != var:
            self.out.append(Line(var, value.code, self._comment(value)))
        return var

    def _Call(self, e: ast.Call, target: str | None) -> Any:
        if isinstance(e.func, ast.Name) and e.func.id in ("min", "max") and \
                e.func.id not in self.env:
            return Scalar(call(e.func.id, *(self.scalar(a) for a in e.args)))
        func = self.value(e.func)
        if isinstance(func, LayerName):
            return self.configure(func, e, None)
        if isinstance(func, LayerRef):
            args = [self.value(a) for a in e.args]
            kwargs = {k.name: self.value(k.value) for k in e.kwargs}
            return self.apply(func, args, kwargs, e, target)
        if isinstance(func, Function):
            op = func.op
            n = len(op.positional_inputs)
            if op.tensor_list_input:
                first = self.value(e.args[0])
                tensors = first.items if isinstance(first, Parts) else [first]
                rest = e.args[1:]
            else:
                tensors = [self.value(a) for a in e.args[:n]]
                rest = e.args[n:]
            given = given_args(op.args, [self.scalar_or_list(a) for a in rest], {})
            for k in e.kwargs:
                v = self.value(k.value)
                if k.name in op.inputs:  # a tensor input given by name (`key_padding_mask=`)
                    if isinstance(v, Tensor):
                        while len(tensors) <= op.inputs.index(k.name):
                            tensors.append(None)
                        tensors[op.inputs.index(k.name)] = v
                    else:
                        given[k.name] = v.e
                elif isinstance(v, Scalar):
                    given[k.name] = v.e
                else:
                    raise Refused(f"`{k.name}` of `{op.name}` cannot be written here", k.loc)
            for name, t in zip(op.inputs, tensors, strict=False):
                if isinstance(t, Scalar):  # a number where a tensor may stand (`where`)
                    given[name] = t.e
            return self.op_at(e, [t for t in tensors if isinstance(t, Tensor)], target,
                              given=given)
        raise Refused("this call", e.loc)

    def scalar_or_list(self, e: ast.Node) -> E:
        v = self.value(e)
        if isinstance(v, Scalar):
            return v.e
        raise Refused("an argument that is not a number, string or list of them", e.loc)

    def _Index(self, e: ast.Index, target: str | None) -> Any:
        v = self.value(e.value)
        if isinstance(v, Parts):
            return v.items[self.concrete(self.scalar(e.items[0]))]
        return self.op_at(e, [v], target)

    def _Attribute(self, e: ast.Attribute, target: str | None) -> Any:
        rec = self.record(e, "node")
        node = self.node(rec.node)
        module = self.module_ref(node.layer or "")
        name = node.args["name"]
        code = f"{module}.{name}" if name else module
        return Tensor(code, node.type, learned=True)
