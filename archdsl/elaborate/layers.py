"""Layers: configuring a layer or block with its arguments, naming it, and applying
it to tensors (an op's node, or a block's body run in a frame of its own)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archdsl import syntax as ast
from archdsl.diagnostics import Loc, Note, Problem, suggest
from archdsl.elaborate.calls import RecordedCall, call_key
from archdsl.elaborate.frames import (
    Frame,
    GraphBuilder,
    check_string_limit,
)
from archdsl.elaborate.scalars import check_param_type
from archdsl.expr import expr_of, retrace
from archdsl.graph import (
    FLOAT_DTYPES,
    Layer,
    ParamSpec,
    Scope,
    TensorType,
    construct,
)
from archdsl.limits import raise_hint
from archdsl.ops import REGISTRY
from archdsl.ops.registry import OpDef, bind_args
from archdsl.staging import InstanceLog, Record, retyped
from archdsl.values import (
    LayerClass,
    LayerValue,
    Poison,
    Skip,
    Tensor,
    a_kind,
)


class Layers:
    """Mixed into `Elaborator`, whose statements a block's body runs."""

    def configure(self, cls: LayerClass, args: tuple[ast.Node, ...],
                  kwargs: tuple[ast.Keyword, ...], site: ast.Node, frame: Frame) -> LayerValue:
        values = [self.ev(a, frame) for a in args]
        kw: dict[str, Any] = {}
        for k in kwargs:
            if k.name in kw:
                raise Problem("E0401", f"argument `{k.name}` given twice", loc=k.loc)
            kw[k.name] = self.ev(k.value, frame)
        n_inputs = len(cls.op.inputs) if cls.op is not None else sum(
            isinstance(s, ast.Input) for s in cls.definition.body)  # type: ignore[union-attr]
        for node, v in [*zip(args, values, strict=True),
                        *((k.value, kw[k.name]) for k in kwargs)]:
            if isinstance(v, (Tensor, LayerValue, LayerClass)):
                settings = "(...)" if (cls.op.args if cls.op else cls.definition.params) \
                    else "()"  # type: ignore[union-attr]
                apply = f"x |> {cls.name}{settings}" if n_inputs == 1 else \
                    f"{cls.name}{settings}({', '.join('xyzuvw'[:max(n_inputs, 2)])})"
                raise Problem("E0204", f"`{cls.name}` takes settings, not {a_kind(v)}",
                              loc=node.loc, hint=f"configure it, then apply it: `{apply}`"
                              if isinstance(v, Tensor) else None)
        call = site if isinstance(site, ast.Call) else None

        def locate(key: str | int) -> Loc | None:
            if call is None:
                return None
            if isinstance(key, int):
                return call.args[key].loc if key < len(call.args) else None
            for k in call.kwargs:
                if k.name == key:
                    return k.loc
            return None

        if cls.op is not None:
            bound = bind_args(cls.op, values, kw, locate)
        else:
            assert cls.definition is not None
            bound = self.bind_params(cls.definition, values, kw, locate, site.loc)
        lv = LayerValue(cls, bound, site.loc, id(site))
        if cls.op is not None and not cls.op.inputs:  # `Parameter(...)` is a tensor at once
            t = self.apply_layer(lv, [], {}, site.loc, frame)
            frame.unnamed_params.add(t.node)
            return t
        return lv

    def bind_params(self, defn: ast.Definition, values: list[Any], kw: dict[str, Any],
                    locate: Callable[[str | int], Loc | None], loc: Loc) -> dict[str, Any]:
        names = [p.name for p in defn.params]
        if len(values) > len(names):
            raise Problem("E0401", f"`{defn.name}` takes {len(names)} argument"
                          f"{'s' if len(names) != 1 else ''}, got {len(values)}", loc=loc,
                          hint=def_signature(defn))
        given = dict(zip(names, values, strict=False))
        for k, v in kw.items():
            if k not in names:
                near = suggest(k, names)
                raise Problem("E0401", f"`{defn.name}` has no parameter `{k}`", loc=locate(k),
                              label="unknown argument",
                              hint=f"did you mean `{near}`?" if near else def_signature(defn))
            if k in given:
                raise Problem("E0401", f"parameter `{k}` of `{defn.name}` given twice",
                              loc=locate(k))
            given[k] = v
        return self.complete_params(defn, given, locate, loc)

    def complete_params(self, defn: ast.Definition, given: dict[str, Any],
                        locate: Callable[[str | int], Loc | None] | None, loc: Loc
                        ) -> dict[str, Any]:
        """Check given values against parameter types and fill defaults in order."""
        tmp: Frame | None = None  # made only to evaluate a default: a call rarely needs one
        out: dict[str, Any] = {}
        for i, p in enumerate(defn.params):
            if p.name in given:
                v = given[p.name]
                where = (locate(p.name) or locate(i)) if locate else p.loc
                if isinstance(v, str):
                    check_string_limit(len(v), self.limits)
            elif p.default is not None:
                if tmp is None:
                    tmp = Frame(self.scopes[defn.file], defn,
                                GraphBuilder("", "", self.limits, self.steps), "", env=dict(out))
                v = self.ev(p.default, tmp)
                where = p.default.loc
            else:
                raise Problem("E0401", f"`{defn.name}` needs the parameter `{p.name}`",
                              loc=loc, label=f"missing `{p.name}`", hint=def_signature(defn))
            out[p.name] = check_param_type(defn, p, v, where)
            if tmp is not None:
                tmp.env[p.name] = out[p.name]
        return out

    def apply_layer(self, lv: LayerValue, inputs: list[Any], kw_inputs: dict[str, Any],
                    loc: Loc, frame: Frame) -> Any:
        if lv.repeat > 1 or lv.repeated:
            if len(inputs) != 1 or kw_inputs:
                raise Problem("E0401", "a repeated layer takes one tensor", loc=loc)
            x = inputs[0]
            base = self.layer_path(lv, frame)
            nodes = frame.builder.graph.nodes
            for k in range(lv.repeat):
                copy = LayerValue(lv.cls, lv.args, lv.loc, lv.site)
                copy.path = f"{base}.{k}"
                if k < len(lv.applied):
                    copy.applied = [lv.applied[k]]
                before = len(nodes)
                x = self.apply_single(copy, [x], {}, loc, frame, shared=k < len(lv.applied))
                if k == 0:
                    self._predict_nodes(len(nodes) - before, lv.repeat - 1, frame,
                                        f"{lv.repeat:,} copies of `{lv.cls.name}`")
                if k >= len(lv.applied):
                    lv.applied.append(copy.applied[0])
                if isinstance(x, tuple):
                    raise Problem("E0401", "a repeated block must have one output", loc=loc)
            return x
        shared = bool(lv.applied)
        if lv.path is None:
            lv.path = self.layer_path(lv, frame)
        out = self.apply_single(lv, inputs, kw_inputs, loc, frame, shared=shared)
        return out

    def layer_path(self, lv: LayerValue, frame: Frame) -> str:
        if lv.bound is not None:
            return frame.child_path(lv.bound + lv.bound_suffix)
        stem = lv.cls.name.lower()
        return frame.child_path(frame.site_base(lv.site, stem) + frame.loop_suffix())

    def apply_single(self, lv: LayerValue, inputs: list[Any], kw_inputs: dict[str, Any],
                     loc: Loc, frame: Frame, shared: bool) -> Any:
        assert lv.path is not None
        if lv.cls.op is not None:
            op = lv.cls.op
            tensors = self.order_inputs(op.name, list(op.inputs), op.n_min_inputs, inputs,
                                        kw_inputs, loc, op.keyword_inputs)
            given = {k: k in kw_inputs for k in op.keyword_inputs}
            out = self.apply_op(op, {**lv.args, **given}, tensors, loc, frame,
                                layer_path=lv.path, shared=shared)
            if not shared:
                lv.applied.append(True)
            return out
        defn = lv.cls.definition
        assert defn is not None
        out = self.apply_definition(defn, lv.args, inputs, kw_inputs, loc, frame, lv.path,
                                    reuse=shared)
        if not shared:
            lv.applied.append(True)
        return out

    def order_inputs(self, name: str, declared: list[str], n_min: int, inputs: list[Any],
                     kw_inputs: dict[str, Any], loc: Loc, keyword_only: tuple[str, ...] = ()
                     ) -> list[Tensor]:
        """Positional and named inputs in declared order; keyword-only inputs, when given,
        follow them (OpDef.keyword_inputs)."""
        positional = [d for d in declared if d not in keyword_only]
        tensors = list(inputs)
        extra: dict[str, Any] = {}
        for k, v in kw_inputs.items():
            if k in keyword_only:
                extra[k] = v
                continue
            if k not in declared:
                raise Problem("E0401", f"`{name}` has no input `{k}`", loc=loc,
                              label=f"its inputs: {', '.join(declared) or 'none'}")
            idx = positional.index(k)
            while len(tensors) <= idx:
                tensors.append(None)
            if tensors[idx] is not None:
                raise Problem("E0401", f"input `{k}` of `{name}` given twice", loc=loc)
            tensors[idx] = v
        if any(t is None for t in tensors) or not n_min <= len(tensors) <= len(positional):
            want = str(len(positional)) if n_min == len(positional) else \
                f"{n_min} to {len(positional)}"
            raise Problem("E0401", f"`{name}` takes {want} input tensor"
                          f"{'s' if len(positional) != 1 else ''}, got {len(tensors)}", loc=loc,
                          label=f"inputs: {', '.join(positional) or 'none'}",
                          hint=f"give {', '.join(f'`{k}=`' for k in keyword_only)} by name"
                          if keyword_only else None)
        return tensors + [extra[k] for k in keyword_only if k in extra]  # type: ignore[return-value]

    def apply_op(self, op: OpDef, args: dict[str, Any], inputs: list[Tensor], loc: Loc,
                 frame: Frame, layer_path: str | None = None, shared: bool = False) -> Any:
        """The op's node (a tensor), or for a multi-output op a tuple of its `part` nodes."""
        types = [t.type for t in inputs]
        norm = op.normalize(dict(args), types)
        out = op.shape(norm, types)
        parts = list(out) if op.multi_output(norm) else None  # type: ignore[arg-type]
        g = frame.builder.graph
        node_layer = layer_path if op.kind == "layer" or op.name == "param" else None
        if op.kind == "layer":
            assert layer_path is not None
            params = op.params(norm, types)
            check_param_dtypes(op.name, types, params)
            existing = g.layers.get(layer_path)
            # Whether a keyword input was given is a fact of one call, not of the layer.
            layer_args = {k: v for k, v in norm.items() if k not in op.keyword_inputs}
            if existing is not None:
                if not (shared or frame.reuse):
                    raise Problem("E0202", f"two layers named `{layer_path}`", loc=loc,
                                  hint="rename one of the bindings")
                if [p.shape for p in existing.params] != [p.shape for p in params] or \
                        existing.args != layer_args:
                    raise Problem("E0303", f"the shared layer `{layer_path}` is applied to an "
                                  "input it does not fit", loc=loc,
                                  label=f"input {', '.join(str(t) for t in types)}",
                                  hint="a layer bound to a name shares its parameters; use a "
                                       "fresh layer for a differently sized input")
            else:
                g.layers[layer_path] = construct(Layer, path=layer_path, op=op.name,
                                                 args=layer_args, params=params, loc=loc)
        if parts is None:
            t = frame.builder.add(op.name, inputs, norm, out, loc, frame.path, node_layer)
            self.record(frame, Record("node", frame.loop, node=t.node))
            return t
        whole = frame.builder.add(op.name, inputs, norm, parts[0], loc, frame.path, node_layer)
        g.nodes[whole.node].parts = parts
        part = REGISTRY["part"]
        pieces = tuple(frame.builder.add("part", [whole], {"index": k},
                                         part.shape({"index": k}, parts), loc, frame.path)
                       for k in range(len(parts)))
        self.record(frame, Record("node", frame.loop, node=whole.node, outputs=pieces))
        return pieces

    def apply_function(self, op: OpDef, tensors: list[Any], rest: list[Any],
                       kwargs: dict[str, Any], loc: Loc, frame: Frame,
                       arg_locs: Callable[[str | int], Loc | None] | None = None) -> Any:
        if op.tensor_list_input:
            if not tensors or not isinstance(tensors[0], (list, tuple)):
                raise Problem("E0402", f"`{op.name}` takes a list of tensors first",
                              hint=f"`{op.name}([a, b], dim=1)`")
            tensors = list(tensors[0])
        numbers: dict[str, Any] = {}
        for i, t in enumerate(tensors):
            name = op.inputs[i] if i < len(op.inputs) else ""
            if name in op.number_inputs and isinstance(t, (int, float)) \
                    and not isinstance(t, bool):
                numbers[name] = t
            elif not isinstance(t, Tensor):
                raise Problem("E0402", f"`{op.name}` needs tensor input, got {a_kind(t)}",
                              loc=arg_locs(i - len(op.inputs))
                              if arg_locs and not op.tensor_list_input else None,
                              hint=f"`{name}` of `{op.name}` is a tensor or a number"
                              if name in op.number_inputs else
                              f"`{op.name}({', '.join(op.inputs)}{', ...' if op.args else ''})`"
                              f" takes {'tensors' if len(op.inputs) > 1 else 'a tensor'} first")
        if len(tensors) < op.n_min_inputs and not op.tensor_list_input:
            raise Problem("E0401", f"`{op.name}` needs {op.n_min_inputs} tensor argument"
                          f"{'s' if op.n_min_inputs != 1 else ''}")
        args = bind_args(op, rest, kwargs, arg_locs)
        args.update({name: numbers.get(name) for name in op.number_inputs})
        tensors = [t for t in tensors if isinstance(t, Tensor)]
        return self.apply_op(op, args, tensors, loc, frame)

    def apply_definition(self, defn: ast.Definition, params: dict[str, Any], inputs: list[Any],
                         kw_inputs: dict[str, Any], loc: Loc, caller: Frame, path: str,
                         reuse: bool) -> Any:
        if defn.kind == "gan":
            raise Problem("E0204", f"the gan `{defn.name}` cannot be used as a layer", loc=loc)
        if defn.name in caller.stack:
            cycle = " -> ".join([*caller.stack, defn.name])
            raise Problem("E0607", f"`{defn.name}` uses itself", loc=loc, label=cycle)
        if caller.depth + 1 > self.limits.max_call_depth:
            raise Problem("E0801", "blocks nested too deeply", loc=loc,
                          label=f"more than {self.limits.max_call_depth} levels",
                          hint=raise_hint("max_call_depth"))
        declared = [s.name for s in defn.body if isinstance(s, ast.Input)]
        tensors = self.order_inputs(defn.name, declared, len(declared), inputs, kw_inputs, loc)
        g = caller.builder.graph
        key = None
        if self.staging is None and not (reuse or caller.reuse):
            key = call_key(defn, params, tensors, caller.depth, caller.stack)
            recorded = self.calls.get(key) if key is not None else None
            if recorded is not None:
                stamped = recorded.stamp(g, path, [t.node for t in tensors], loc, self.steps,
                                         self.limits.max_nodes)
                if stamped is not None:
                    return self._call_outputs(caller, *stamped)
        first_scope, diagnostics, steps = len(g.scopes), len(self.reporter.diagnostics), \
            self.steps[0]
        input_names = [g.nodes[t.node].name for t in tensors]
        scope = self.scopes[defn.file]
        frame = Frame(scope, defn, caller.builder, path,
                      reuse=reuse or caller.reuse, depth=caller.depth + 1,
                      call_note=Note(message=f"in `{defn.name}` used here", loc=loc),
                      stack=(*caller.stack, defn.name), names=self.names_of(defn))
        frame.env.update(self._own_params(params))
        frame.taken.update(params)
        for name, t in zip(declared, tensors, strict=True):
            frame.env[f" input:{name}"] = t
        scope_entry = construct(Scope, path=path, definition=defn.name, args=dict(params),
                                inputs=[t.node for t in tensors], input_names=declared,
                                outputs=[], output_names=[], loc=loc)
        g.scopes.append(scope_entry)
        if self.staging is not None:
            frame.binding = {k: expr_of(v) for k, v in params.items()}
            frame.log = self.staging.begin(InstanceLog(defn, g, path, scope_entry, dict(frame.env)))
        before = len(self.reporter.errors)
        start = len(g.nodes)
        self.run_body(defn.body, frame, top=True)
        scope_entry.span = (start, len(g.nodes))
        for k in [k for k in frame.env if k.startswith(" input:")]:
            del frame.env[k]
        if len(self.reporter.errors) > before:
            raise Skip
        if not frame.outputs:
            raise Problem("E0604", f"`{defn.name}` has no output", loc=defn.name_loc,
                          label="declare one with `output name = ...`")
        outs = [t for _, t, _ in frame.outputs]
        if any(isinstance(t, Poison) for t in outs):
            raise Skip
        self._check_unused_inputs(frame)
        scope_entry.outputs = [t.node for t in outs]  # type: ignore[union-attr]
        scope_entry.output_names = [n for n, _, _ in frame.outputs]
        scope_entry.caller_names = [None] * len(outs)
        if key is not None and key not in self.calls:
            unchanged = len(self.reporter.diagnostics) == diagnostics and \
                input_names == [g.nodes[t.node].name for t in tensors]
            self.calls[key] = RecordedCall.of(
                g, path, [t.node for t in tensors], outs, start, first_scope,  # type: ignore[arg-type]
                self.steps[0] - steps) if unchanged else None
        if frame.log is not None:  # the caller reads the outputs' sizes in its own names
            frame.log.inputs = list(frame.inputs)
            frame.log.outputs = [(n, t) for n, t, _ in frame.outputs]  # type: ignore[misc]
            outs = [retyped(t, t.type.with_shape(retrace(t.type.shape, frame.binding)))
                    for t in outs]  # type: ignore[union-attr]
            self.record(caller, Record("call", caller.loop, scope=scope_entry,
                                       outputs=tuple(outs)))  # type: ignore[arg-type]
        return self._call_outputs(caller, scope_entry, outs)  # type: ignore[arg-type]

    def _call_outputs(self, caller: Frame, scope_entry: Scope, outs: list[Tensor]
                      ) -> Tensor | tuple[Tensor, ...]:
        """A block call's value: its output, or a tuple of them; the caller remembers which
        call made each (for the names it binds them to)."""
        for k, t in enumerate(outs):
            caller.block_outputs.setdefault(t.node, (scope_entry, k))
        return outs[0] if len(outs) == 1 else tuple(outs)


def check_param_dtypes(op: str, types: list[TensorType], params: list[ParamSpec]) -> None:
    """A layer computes in its parameters' dtype: like PyTorch, it takes no other float."""
    stored = {p.dtype for p in params if p.dtype in FLOAT_DTYPES}
    given = {t.dtype for t in types if t.dtype in FLOAT_DTYPES}
    if stored and given - stored:
        raise Problem("E0308", f"`{op}` receives {', '.join(sorted(given))} but its parameters "
                      f"are {', '.join(sorted(stored))}",
                      label=f"got {', '.join(f'{t.dtype}{t}' for t in types)}",
                      hint="layer parameters are f32: declare the input f32")


def def_signature(defn: ast.Definition) -> str:
    parts = [f"{p.name}: {p.type}" + (" = ..." if p.default is not None else "")
             for p in defn.params]
    return f"`{defn.name}({', '.join(parts)})`"

