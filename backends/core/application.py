"""The emitter's layers: configuring one where the spec calls it, making its module where it
is first applied (inside loops, in containers), applying ops, blocks and repeats."""

from __future__ import annotations

from typing import Any

from archdsl import syntax as ast
from archdsl.expr import E, Lit, Op, binary
from archdsl.graph import Node
from archdsl.names import attribute_ok
from archdsl.ops import REGISTRY
from archdsl.ops.registry import OpDef
from archdsl.staging import Record

from .classes import ClassCode, Line, Module
from .lowering import Lowered, OpSite, Refused
from .pycode import Call, Expr
from .reads import given_args
from .values import LayerName, LayerRef, Parts, Tensor


class Application:
    """Mixed into `Emitter` (emitter.py), whose state these methods read and write."""

    def configure(self, ref: LayerName, site: ast.Node, call_site: Any) -> LayerRef:
        given: dict[str, E] = {}
        if isinstance(site, ast.Call):
            values = [self.scalar_or_list(a) for a in site.args]
            kwargs = {k.name: self.scalar_or_list(k.value) for k in site.kwargs}
            if ref.op is not None:
                if ref.op.variadic:
                    given = {ref.op.variadic: Op("list", tuple(values)), **kwargs}
                else:
                    given = given_args(ref.op.args, values, kwargs)
            else:
                assert ref.definition is not None
                names = [p.name for p in ref.definition.params]
                given = {**dict(zip(names, values, strict=False)), **kwargs}
        keywords = frozenset(k.name for k in site.kwargs) if isinstance(site, ast.Call) \
            else frozenset()
        layer = LayerRef(ref.name, ref.op, ref.definition, given, site, keywords=keywords)
        if ref.op is not None and not ref.op.inputs:  # `Parameter(...)` is a tensor at once
            return self.apply(layer, [], {}, site, None)
        return layer

    def module_ref(self, path: str) -> str:
        """`self.layer2[0].conv1` for a layer path of this instance (loop indices as the
        enclosing loops' variables)."""
        rel = self._relative(path)
        parts = rel.split(".")
        return self.target.module_ref(self._attr(parts))

    def _relative(self, path: str) -> str:
        prefix = self.log.path + "." if self.log.path else ""
        if not path.startswith(prefix):
            raise Refused(f"the layer `{path}` is not in `{self.defn.name}`")
        return path[len(prefix):]

    def _attr(self, parts: list[str], loops: int | None = None) -> str:
        """Path components as an attribute: the trailing index of each loop enclosing the
        layer's binding (all enclosing loops for an unbound layer) becomes the loop's name."""
        n = len(self.loops) if loops is None else loops
        head, tail = parts[: len(parts) - n], parts[len(parts) - n:]
        text = head[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in head[1:])
        for lp, p in zip(self.loops[:n], tail, strict=True):
            text += f"[{lp.var}]" if lp.python else f"[{p}]"
        return text

    def apply(self, layer: LayerRef, args: list[Any], kwargs: dict[str, Any], site: ast.Node,
              target: str | None) -> Any:
        tensors = [a for a in args if isinstance(a, Tensor)]
        if any(isinstance(a, Parts) for a in args):
            tensors = [t for a in args for t in (a.items if isinstance(a, Parts) else [a])]
        if layer.count is not None:
            return self.apply_repeat(layer, tensors, site, target)
        if layer.definition is not None:
            recs = self.records(site, "call")
            if not recs:
                raise Refused("nothing was elaborated here", site.loc)
            return self.call_block(layer, recs[0], tensors, kwargs, target)
        rec = self.record(site, "node")
        return self.layer_op(layer, rec, tensors, kwargs, target)

    def layer_op(self, layer: LayerRef, rec: Record, tensors: list[Tensor],
                 kwargs: dict[str, Any], target: str | None) -> Any:
        node = self.node(rec.node)
        op = REGISTRY[node.op]
        module = None
        if node.layer is not None and self.target.has_module(op):
            module = self.build(node, layer)
        inputs = list(tensors)
        for k, v in kwargs.items():
            if isinstance(v, Tensor):
                while len(inputs) <= op.inputs.index(k):
                    inputs.append(None)  # type: ignore[arg-type]
                inputs[op.inputs.index(k)] = v
        # keyword inputs follow the positional ones in the node (`key_padding_mask=`)
        inputs = [t for t in inputs if t is not None]
        if op.alias(node.args) and inputs:
            return inputs[0]
        if not inputs and module is not None and not op.inputs:  # a learned tensor
            return Tensor(module, node.type, learned=True)
        return self.compute(op, node, inputs, module, layer.given, target)

    def build(self, node: Node, layer: LayerRef) -> str:
        """Make the module of `node`'s layer where it is first applied; its reference."""
        rel = self._relative(node.layer or "")
        parts = rel.split(".")
        if not attribute_ok(parts[0]):
            raise Refused(f"`{parts[0]}` cannot name a submodule", node.loc,
                          "a module already has an attribute of this name; rename the binding")
        attr = self._attr(parts, layer.depth)
        ref = self.target.module_ref(attr)
        if attr not in self.built:
            self.built.add(attr)
            spec = self.staging.layer(self.graph, node.layer or "")
            op = REGISTRY[spec.op]
            ins = [self.node(i).type for i in node.inputs]
            site = OpSite(op, node, ins, [], self.consistent(layer.given, node), ref, self.text,
                          self.temp)
            make = self.target.construct(site)
            self.out.append(self._module(attr, parts, make, op, layer.depth))
        return ref

    def _module(self, attr: str, parts: list[str], make: Expr, op: OpDef | None,
                depth: int | None = None) -> Module:
        """A module statement; inside loops, an append to the container of each loop level
        (made on first use: `self.fc = nn.ModuleList()` before a Python loop)."""
        enclosing = self.loops[: len(self.loops) if depth is None else depth]
        name = op.name if op else ""
        if not enclosing:
            return Module(attr, make, op=name)
        head = parts[: len(parts) - len(enclosing)]
        if len(head) != 1:
            raise Refused("a layer inside a loop whose name has no container to live in")
        kind = "params" if op is not None and not op.inputs else "modules"
        path = head[0]
        ensure = [(path, self.target.container(kind if len(enclosing) == 1 else "modules"))]
        for k, lp in enumerate(enclosing[:-1]):
            path += f"[{lp.var if lp.python else lp.index}]"
            ensure.append((path, self.target.container(
                kind if k == len(enclosing) - 2 else "modules")))
        return Module(attr, make, fill=path, ensure=tuple(ensure), op=name)

    def compute(self, op: OpDef, node: Node, inputs: list[Tensor], module: str | None,
                given: dict[str, E], target: str | None) -> Any:
        xs = [t.code for t in inputs]
        reusable = bool(inputs) and inputs[0].temp and REGISTRY.get(inputs[0].op) is not None \
            and REGISTRY[inputs[0].op].output_reusable
        site = OpSite(op, node, [t.type for t in inputs], xs, self.consistent(given, node),
                      module, self.text,
                      self.temp, reusable=reusable)
        low = self.target.forward(site)
        low = low if isinstance(low, Lowered) else Lowered(low)
        if node.parts:  # several outputs: `a, b = x.split(2)` (`{0}`, `{1}` in the target)
            names = self.unpack if self.unpack and len(self.unpack) == len(node.parts) else \
                [self.temp(f"{target or 'h'}{k}") for k in range(len(node.parts))]
            form = low.target if "{0}" in low.target else ", ".join(
                f"{{{k}}}" for k in range(len(node.parts)))
            comment = ", ".join(self.shape(t) for t in node.parts)
            self.out.append(Line(form.format(*names), low.code, comment, low.before))
            return Parts([Tensor(n, t) for n, t in zip(names, node.parts, strict=True)])
        if target is not None or low.before or low.target != "{}":
            var = target or self.temp()
            first = inputs[0].type if inputs else None
            self.out.append(Line(low.target.format(var), low.code,
                                 self._comment_change(node.type, first), low.before))
            return Tensor(var, node.type, temp=True, op=op.name)
        return Tensor(low.code, node.type, temp=True, op=op.name)

    def op_at(self, site: ast.Node, inputs: list[Any], target: str | None,
              given: dict[str, E] | None = None) -> Tensor:
        rec = self.record(site, "node")
        node = self.node(rec.node)
        op = REGISTRY[node.op]
        if op.alias(node.args) and inputs:
            return inputs[0]
        tensors = [t for t in inputs if isinstance(t, Tensor)]
        return self.compute(op, node, tensors, None, given or {}, target)

    def call_block(self, layer: LayerRef, rec: Record, tensors: list[Tensor],
                   kwargs: dict[str, Any], target: str | None) -> Any:
        scope = rec.scope
        assert scope is not None and layer.definition is not None
        child_log = self.staging.log_of(scope)
        child = self.gen.class_for(layer.definition, child_log)
        inputs = list(tensors)
        names = [n for n, _ in child_log.inputs]
        for k, v in kwargs.items():
            if isinstance(v, Tensor):
                while len(inputs) <= names.index(k):
                    inputs.append(None)  # type: ignore[arg-type]
                inputs[names.index(k)] = v
        rel = self._relative(scope.path)
        parts = rel.split(".")
        attr = self._attr(parts, layer.depth)
        ref = self.target.module_ref(attr)
        if attr not in self.built:
            self.built.add(attr)
            make = self.block_make(child, layer.given, inputs, layer.keywords)
            self.out.append(self._module(attr, parts, make, None, layer.depth))
            if child not in self.uses:
                self.uses.append(child)
        sizes = tuple(self.text(layer.given[n]) for n in child.runtime)
        code = Call(ref, (*(t.code for t in inputs), *sizes))
        outs = rec.outputs
        if len(outs) == 1:
            if target is None:
                return Tensor(code, outs[0].type)
            first = inputs[0].type if inputs else None
            self.out.append(Line(target, code, self._comment_change(outs[0].type, first)))
            return Tensor(target, outs[0].type)
        names_out = [self.fresh(n) for n, _ in child_log.outputs]
        self.out.append(Line(", ".join(names_out), code,
                             ", ".join(self.shape(t.type) for t in outs)))
        return Parts([Tensor(n, t.type) for n, t in zip(names_out, outs, strict=True)])

    def block_make(self, child: ClassCode, given: dict[str, E], inputs: list[Tensor],
                   keywords: frozenset[str] = frozenset()) -> Expr:
        """`Bottleneck(64, 256, stride=2)`: the sizes the child's constructor takes, as this
        class computes them for the tensors it passes, then the arguments as written."""
        args: list[Expr] = []
        for size in child.sizes:
            index, axis = child.size_reads[size]
            args.append(self.text(inputs[index].type.shape[axis]))
        names = [p.name for p in child.definition.params if p.name not in child.runtime]
        positional = True
        for name in names:
            if name not in given:
                positional = False
                continue
            positional = positional and name not in keywords
            code = self.text(given[name])
            args.append(code if positional else f"{name}={code}")
        return Call(child.token, tuple(args))

    def apply_repeat(self, layer: LayerRef, tensors: list[Tensor], site: ast.Node,
                     target: str | None) -> Any:
        """`x |> L * n`: n copies in a container, chained (PyTorch: `nn.Sequential`)."""
        kind = "call" if layer.definition is not None else "node"
        recs = self.records(site, kind)
        if not recs:
            raise Refused("nothing was elaborated here", site.loc)
        makes: list[Expr] = []
        path = ""
        current = tensors
        for rec in recs:
            if rec.kind == "call":
                assert rec.scope is not None and layer.definition is not None
                child_log = self.staging.log_of(rec.scope)
                child = self.gen.class_for(layer.definition, child_log)
                if child not in self.uses:
                    self.uses.append(child)
                makes.append(self.block_make(child, layer.given, current, layer.keywords))
                path = rec.scope.path
                current = [Tensor("", rec.outputs[0].type)]
            else:
                node = self.node(rec.node)
                spec = self.staging.layer(self.graph, node.layer or "")
                op = REGISTRY[spec.op]
                makes.append(self.target.construct(OpSite(
                    op, node, [t.type for t in current], [], self.consistent(layer.given, node),
                    None, self.text, self.temp)))
                path = node.layer or ""
                current = [Tensor("", node.type)]
        out_type = current[0].type
        parts = self._relative(path).split(".")[:-1]
        attr = self._attr(parts)
        ref = self.target.module_ref(attr)
        if attr not in self.built:
            self.built.add(attr)
            self.out.append(self._module(attr, parts, self._repeat(layer, makes, site), None))
        var = target or self.temp()
        code = Call(ref, tuple(t.code for t in tensors))
        self.out.append(Line(var, code, self._comment_change(out_type, tensors[0].type)))
        return Tensor(var, out_type)

    def _repeat(self, layer: LayerRef, makes: list[Expr], site: ast.Node) -> Expr:
        assert layer.count is not None
        count = layer.count
        first, rest = makes[0], makes[1:]
        if all(m == first for m in rest):
            return self.target.repeat(first, None, self.text(count), "")
        if len(rest) and all(m == rest[0] for m in rest):
            return self.target.repeat(first, rest[0], self.text(count),
                                      self.text(binary("-", count, 1)))
        if not isinstance(count, Lit):
            raise Refused("the copies of a repeat differ in ways its count does not explain",
                          site.loc)
        return self.target.sequential(makes)
