"""Lower a typed graph to one standalone PyTorch module, as source text.

The graph is flat; its `scopes` say which nodes each block instance holds. The generator
rebuilds that hierarchy (`Instance`), plans one class per distinct block specialisation
(`Plan`: same definition, arguments, input types and code give the same class), names the
classes, and hands prepared lines to the Jinja2 templates. Per-op knowledge lives in
`lowering`; line breaking in `code`. Nothing here imports torch.
"""

from __future__ import annotations

import ast
import keyword
import re
import textwrap
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import PurePath
from typing import Any

import jinja2

from archdsl.diagnostics import Diagnostic, Loc, SpecError
from archdsl.graph import GanGraph, Graph, Layer, Node, Scope, TensorType
from archdsl.symbolic import Dim, Sym, format_dim

from .code import INDENT, WIDTH, Call, Comp, Expr, Seq, call, layout, statement
from .lowering import (
    CONSTRUCT,
    FORWARD,
    HELPERS,
    IN_PLACE,
    SAFE_TO_OVERWRITE,
    Lowered,
    Refusal,
    Site,
    lit,
    plain_call,
)

# Names an nn.Module already uses: a submodule by one of these names would be shadowed.
MODULE_ATTRIBUTES = frozenset("""
    T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl
    _compiled_call_impl _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs
    _forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks
    _get_backward_pre_hooks _get_name _is_full_backward_hook _load_from_state_dict
    _load_state_dict_post_hooks _load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook
    _modules _named_members _non_persistent_buffers_set _parameters
    _register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
    _save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version
    _wrapped_call_impl add_module apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
""".split())

# Module-level names of the generated file; locals and classes must not shadow them.
GLOBALS = frozenset({"torch", "nn", "F", "math", "self", "super", "_require_compiled",
                     *HELPERS})


def generate(graph: Graph | GanGraph) -> str:
    """The source of one standalone module holding every class the graph needs."""
    return render(graph)[0]


def render(graph: Graph | GanGraph) -> tuple[str, str]:
    """The source and the name of the class to instantiate (the model, or the gan's pair)."""
    gen = _Generator()
    if isinstance(graph, GanGraph):
        parts = [gen.model(graph.generator), gen.model(graph.discriminator)]
        gen.raise_errors()
        gen.assign_names(parts)
        top = _gan_class(graph, parts, gen)
        return gen.render(graph, top), top["name"]
    plan = gen.model(graph)
    gen.raise_errors()
    gen.assign_names([plan])
    return gen.render(graph, None), plan.name


# ---- the block hierarchy ----------------------------------------------------------------------
@dataclass
class Instance:
    """A model or one block instance: every node it holds, nested instances included."""

    path: str
    scope: Scope | None
    nodes: list[int]
    children: list[Instance] = field(default_factory=list)


def _start(inst: Instance) -> float:
    """Where an instance's call goes among its parent's nodes: at its first node."""
    if inst.nodes:
        return inst.nodes[0]
    return max(inst.scope.inputs if inst.scope else [], default=-1) + 0.5


def _under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + ".")


def instances(g: Graph) -> Instance:
    root = Instance("", None, list(range(len(g.nodes))))
    _attach(root, g.scopes, g)
    return root


def _attach(parent: Instance, entries: list[Scope], g: Graph) -> None:
    """`entries` are the scopes inside `parent`, in call order (pre-order)."""
    calls: list[tuple[Scope, list[Scope]]] = []
    i = 0
    while i < len(entries):
        j = i + 1
        while j < len(entries) and entries[j].path.startswith(entries[i].path + "."):
            j += 1
        calls.append((entries[i], entries[i + 1 : j]))
        i = j
    for scope, inner in calls:
        start, end = scope.span  # a shared instance's calls share a path, not a span
        child = Instance(scope.path, scope, [n for n in parent.nodes if start <= n < end])
        _attach(child, inner, g)
        parent.children.append(child)


# ---- plans: one per generated class ---------------------------------------------------------
@dataclass
class Plan:
    """A class to generate. `modules` are built in `__init__`; `forward` lines are laid out."""

    key: str
    definition: str
    kind: str  # "model" or "block"
    params: dict[str, Any]
    inputs: list[tuple[str, TensorType]]
    outputs: list[tuple[str, TensorType]]
    modules: list[tuple[str, Expr]]
    forward: list[str]
    file: str = ""
    name: str = ""
    uses: list[Plan] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)  # symbols passed after the tensors


class _Generator:
    """Plans the classes of one output file, collects refusals, then renders the file."""

    def __init__(self) -> None:
        self.plans: dict[str, Plan] = {}
        self.errors: list[Diagnostic] = []
        self.helpers: set[str] = set()

    def refuse(self, message: str, loc: Loc | None, label: str = "") -> None:
        diag = Diagnostic(code="E0901", message=message, loc=loc, label=label)
        if diag not in self.errors:  # a block used many times reports once
            self.errors.append(diag)

    def raise_errors(self) -> None:
        if self.errors:
            raise SpecError(self.errors)

    def model(self, g: Graph) -> Plan:
        return self.plan(g, instances(g))

    def plan(self, g: Graph, inst: Instance) -> Plan:
        children = [self.plan(g, c) for c in inst.children]
        body = _Body(self, g, inst, children)
        scope = inst.scope
        if scope is None:
            definition, kind, params = g.name, "model", g.params
            ins = list(zip(g.input_names, g.inputs, strict=True))
            outs = list(zip(g.output_names, g.outputs, strict=True))
        else:  # a symbolic argument is no setting: its value is read from the inputs
            definition, kind = scope.definition, "block"
            params = {k: v for k, v in scope.args.items() if not isinstance(v, Sym)}
            ins = list(zip(scope.input_names, scope.inputs, strict=True))
            outs = list(zip(scope.output_names, scope.outputs, strict=True))
        plan = Plan(
            key="", definition=definition, kind=kind, params=dict(params),
            inputs=[(n, g.nodes[i].type) for n, i in ins],
            outputs=[(n, g.nodes[i].type) for n, i in outs],
            modules=body.modules, forward=body.forward, file=g.file,
            uses=body.uses, sizes=body.sizes,
        )
        plan.key = repr((definition, kind, sorted(params.items()), plan.inputs, plan.modules,
                         plan.forward))
        return self.plans.setdefault(plan.key, plan)

    def assign_names(self, roots: list[Plan]) -> None:
        taken = set(GLOBALS)
        order: list[Plan] = []

        def visit(p: Plan) -> None:
            if p.name:
                return
            base = _identifier(p.definition)
            p.name = base
            k = 1
            while p.name in taken:
                k += 1
                p.name = f"{base}{k}"
            taken.add(p.name)
            order.append(p)
            for q in p.uses:
                visit(q)

        for root in roots:
            visit(root)
        self.order = order

    def render(self, graph: Graph | GanGraph, gan: dict[str, Any] | None) -> str:
        placeholders = {_placeholder(p): p.name for p in self.order}
        classes = [_class_context(p, placeholders) for p in _post_order(self.order)]
        if gan is not None:
            classes.append(gan)
        helpers = [_helper_source(h) for h in _helper_order(self.helpers)]
        code = "\n".join([*helpers, *(ln for c in classes for ln in c["init"] + c["forward"])])
        return _template("module.py.j2").render(
            docstring=_module_docstring(graph),
            math=re.search(r"\bmath\.", code) is not None,
            functional=re.search(r"\bF\.", code) is not None,
            helpers=helpers,
            checks=any(c["params"] for c in classes),
            classes=classes,
        )


def _code(plan: Plan) -> tuple[Any, ...]:
    """What a class runs, whatever its shape comments say."""
    forward = [re.sub(r"  # .*$", "", ln) for ln in plan.forward if not ln.lstrip().startswith("#")]
    return plan.modules, forward


def _post_order(plans: list[Plan]) -> list[Plan]:
    out: list[Plan] = []

    def visit(p: Plan) -> None:
        if p in out:
            return
        for q in p.uses:
            visit(q)
        out.append(p)

    for p in plans:
        visit(p)
    return out


def _placeholder(p: Plan) -> str:
    return f"<class {id(p)}>"


# ---- one instance's __init__ and forward ----------------------------------------------------
@dataclass
class _Module:
    """A node of the submodule tree: a layer, a child block, or a numbered container."""

    order: float
    layer: Layer | None = None
    child: Plan | None = None
    items: dict[str, _Module] = field(default_factory=dict)
    sequential: bool = False


class _Body:
    """Lowers one instance: its submodules (`modules`) and the lines of its `forward`."""

    def __init__(self, gen: _Generator, g: Graph, inst: Instance, children: list[Plan]) -> None:
        self.gen, self.g, self.inst = gen, g, inst
        self.children = dict(zip((id(c) for c in inst.children), children, strict=True))
        self.prefix = inst.path + "." if inst.path else ""
        scope = inst.scope
        self.arg_ids = scope.inputs if scope else g.inputs
        self.arg_names = scope.input_names if scope else g.input_names
        self.out_ids = scope.outputs if scope else g.outputs
        own = [n for n in inst.nodes if g.nodes[n].scope == inst.path and g.nodes[n].op != "input"]
        keyed: list[tuple[float, int, int | Instance]] = [(n, 0, n) for n in own]
        for k, c in enumerate(inst.children):
            keyed.append((_start(c), k + 1, c))
        self.items = [item for _, _, item in sorted(keyed, key=lambda t: (t[0], t[1]))]
        self.tree = self._module_tree()
        self.uses: list[Plan] = []  # the classes this one constructs, in order
        self._collect_uses(self.tree)
        self._count_uses()
        self.forward = self._forward()
        self.modules = self._init_modules()

    # -- submodules ---------------------------------------------------------------------------
    def _rel(self, path: str) -> str:
        return path[len(self.prefix):]

    def _module_tree(self) -> _Module:
        g, inst = self.g, self.inst
        first_use: dict[str, int] = {}
        for n in inst.nodes:
            node = g.nodes[n]
            if node.layer is not None:
                first_use.setdefault(node.layer, n)
        child_paths = {c.path for c in inst.children}
        root = _Module(order=0)
        for path, layer in g.layers.items():
            if (path not in first_use or not _under(path, inst.path)
                    or any(_under(path, c) for c in child_paths)):
                continue
            if layer.op in CONSTRUCT:
                self._insert(root, path, _Module(order=first_use[path], layer=layer), layer.loc)
            elif layer.params:
                self.gen.refuse(f"the PyTorch backend cannot build `{layer.op}`", layer.loc)
        for c in inst.children:
            plan, loc = self.children[id(c)], c.scope.loc if c.scope else None
            existing = self._find(c.path, root)
            if existing is None:
                self._insert(root, c.path, _Module(order=_start(c), child=plan), loc)
            elif existing.child is not None and _code(existing.child) != _code(plan):
                self.gen.refuse("a shared block is applied to inputs its code does not fit",
                                loc, label="PyTorch runs one module for every call; give "
                                           "each call its own block")
        return root

    def _collect_uses(self, m: _Module) -> None:
        for item in sorted(m.items.values(), key=lambda i: i.order):
            if item.child is not None and item.child not in self.uses:
                self.uses.append(item.child)
            self._collect_uses(item)

    def _insert(self, root: _Module, path: str, leaf: _Module, loc: Loc | None) -> None:
        parts = self._rel(path).split(".")
        node = root
        for depth, part in enumerate(parts):
            if depth == 0 and not _attribute_ok(part):
                self.gen.refuse(f"`{part}` cannot name a submodule of a PyTorch module", loc,
                                label="nn.Module already has an attribute of this name, or it "
                                      "is a Python keyword; rename the binding")
            elif depth > 0 and not part.isdigit():
                self.gen.refuse(f"the layer path `{path}` has no PyTorch module layout", loc)
            if depth == len(parts) - 1:
                node.items[part] = leaf
            else:
                node = node.items.setdefault(part, _Module(order=leaf.order))
            node.order = min(node.order, leaf.order)

    def _find(self, path: str, root: _Module | None = None) -> _Module | None:
        node: _Module | None = root or self.tree
        for part in self._rel(path).split("."):
            node = node.items.get(part) if node is not None else None
        return node

    def ref(self, path: str) -> str:
        """`self.layer2[0].conv1` for the module at `path`."""
        text = "self"
        for part in self._rel(path).split("."):
            text += f"[{part}]" if part.isdigit() else f".{part}"
        return text

    def _init_modules(self) -> list[tuple[str, Expr]]:
        return [(name, self._construct(m)) for name, m in
                sorted(self.tree.items.items(), key=lambda kv: kv[1].order)]

    def _construct(self, m: _Module) -> Expr:
        if m.layer is not None:
            try:
                expr = CONSTRUCT[m.layer.op](m.layer)
            except Refusal as r:
                self.gen.refuse(str(r), m.layer.loc)
                return "None"
            if isinstance(expr, Call) and expr.func in HELPERS:
                self.gen.helpers.add(expr.func)
            return expr
        if m.child is not None:
            kwargs = [f"{_identifier(k)}={lit(v)}" for k, v in m.child.params.items()]
            return Call(_placeholder(m.child), tuple(kwargs))
        keys = [str(i) for i in range(len(m.items))]
        if sorted(m.items) != sorted(keys):
            return "None"  # already refused: not a numbered container
        items = [self._construct(m.items[k]) for k in keys]
        same = len(items) > 1 and all(i == items[0] for i in items)
        if m.sequential:
            if same:
                return call("nn.Sequential", Comp(items[0], f"for _ in range({len(items)})", "*"))
            return Call("nn.Sequential", tuple(items))
        layers = [m.items[k].layer for k in keys]
        params = all(layer is not None and layer.op == "Parameter" for layer in layers)
        kind = "nn.ParameterList" if params else "nn.ModuleList"
        if same:
            return call(kind, Comp(items[0], f"for _ in range({len(items)})"))
        return call(kind, Seq(tuple(items)))

    # -- data flow ----------------------------------------------------------------------------
    def _inputs_of(self, item: int | Instance) -> list[int]:
        if isinstance(item, Instance):
            return list(item.scope.inputs)  # type: ignore[union-attr]
        return list(self.g.nodes[item].inputs)

    def _outputs_of(self, item: int | Instance) -> list[int]:
        if isinstance(item, Instance):
            return list(item.scope.outputs)  # type: ignore[union-attr]
        return [item]

    def _count_uses(self) -> None:
        self.users: dict[int, list[int]] = {}
        for k, item in enumerate(self.items):
            for i in self._inputs_of(item):
                self.users.setdefault(i, []).append(k)
        for i in self.out_ids:
            self.users.setdefault(i, []).append(len(self.items))

    def last_use(self, i: int) -> int:
        return max(self.users.get(i, [-1]))

    # -- forward ------------------------------------------------------------------------------
    def _forward(self) -> list[str]:
        g = self.g
        self.var: dict[int, str] = {}
        self.holds: dict[str, set[int]] = {}
        self.static = set(GLOBALS) | {_identifier(s) for s in g.symbols}
        self.symbol_lines: dict[str, tuple[tuple[int, int], str]] = {}
        self.sizes: list[str] = []  # symbols no input has: the caller passes them
        self.arg_vars: dict[int, str] = {}
        params = []
        for name, i in zip(self.arg_names, self.arg_ids, strict=True):
            var = self.alloc(name, -1)
            params.append(f"{var}: torch.Tensor")
            if i in self.arg_vars:  # the same tensor given twice: the code reads the first
                self.holds[var] = set()
                continue
            self.arg_vars[i] = var
            self.bind(i, var)
        self.prefer = self._preferred_names()
        runs = self._runs()
        lines: list[str] = []
        k = 0
        while k < len(self.items):
            item = self.items[k]
            if k in runs:
                n, sequential = runs[k]
                lines += self._run(k, n, sequential)
                k += n
                continue
            if isinstance(item, Instance):
                lines += self._call(k, item)
            else:
                lines += self._node(k, g.nodes[item])
            k += 1
        outs = [self.var[i] for i in self.out_ids]
        returns = f"tuple[{', '.join('torch.Tensor' for _ in outs)}]" if len(outs) > 1 \
            else "torch.Tensor"
        params += [f"{_identifier(s)}: int" for s in self.sizes]
        return [*_def_head("forward", ["self", *params], returns),
                *(line for _, line in sorted(self.symbol_lines.values()) if line), *lines,
                *layout("return ", ", ".join(outs), "", 2)]

    def alloc(self, base: str, now: int, avoid: frozenset[int] = frozenset()) -> str:
        """A local name for a new value: `base` unless it still holds a value needed later."""
        base = _identifier(base)
        k = 0
        while True:
            name = base if k == 0 else f"{base}_{k}"
            k += 1
            if name in self.static:
                continue
            held = self.holds.get(name, set())
            if all(self.last_use(i) <= now and i not in avoid for i in held):
                return name

    def bind(self, i: int, name: str) -> None:
        old = self.var.get(i)
        if old in self.holds:
            self.holds[old].discard(i)
        self.var[i] = name
        self.holds[name] = {i}

    def temp(self, base: str, now: int) -> str:
        name = self.alloc(base, now)
        self.holds[name] = set()
        return name

    def dim(self, d: Dim) -> str:
        """A Python expression for a dimension; symbols are read from the inputs' sizes."""
        if isinstance(d, int):
            return str(d)
        for s in sorted(d.symbols()):
            if s not in self.symbol_lines:
                self.symbol_lines[s] = self._symbol_line(s)
        text = format_dim(d.substitute({s: Sym.symbol(_identifier(s)) for s in d.symbols()}))
        return re.sub(r"\s*(//|\*)\s*", r" \1 ", text)

    def _symbol_line(self, s: str) -> tuple[tuple[int, int], str]:
        """`B = x.size(0)`, with its place among the inputs (so lines come in input order)."""
        target = Sym.symbol(s)
        for k, i in enumerate(self.arg_ids):
            for axis, d in enumerate(self.g.nodes[i].type.shape):
                if d == target:
                    var = self.arg_vars[i]
                    return (k, axis), f"{INDENT * 2}{_identifier(s)} = {var}.size({axis})"
        if self.inst.scope is not None:  # a block given the size as an argument (`Rep(T)`)
            self.sizes.append(s)
            return (len(self.arg_ids), len(self.sizes)), ""
        self.gen.refuse(f"the size `{s}` cannot be read from the inputs of `{self._name()}`",
                        self.inst.scope.loc if self.inst.scope else self.g.loc)
        return (-1, -1), ""

    def _name(self) -> str:
        return self.inst.scope.definition if self.inst.scope else self.g.name

    def _preferred_names(self) -> dict[int, str]:
        """Binding names from the spec, carried back along chains (`x = a |> B |> C`)."""
        prefer: dict[int, str] = {}
        nodes = self.g.nodes
        for item in reversed(self.items):
            if isinstance(item, Instance):
                continue
            node = nodes[item]
            if node.name:
                prefer[item] = node.name
                continue
            users = self.users.get(item, [])
            if len(users) == 1 and users[0] < len(self.items):
                consumer = self.items[users[0]]
                if (not isinstance(consumer, Instance) and nodes[consumer].inputs[:1] == [item]
                        and consumer in prefer):
                    prefer[item] = prefer[consumer]
        return prefer

    def _chain_name(self, item: int | Instance, now: int, fallback: str) -> str:
        ins = self._inputs_of(item)
        first = self.var.get(ins[0]) if ins else None
        if first and first.isidentifier() and self.last_use(ins[0]) <= now:
            return first
        return fallback

    def _is_alias(self, node: Node) -> bool:
        return node.op in ("Identity", "param", "Parameter") or (
            node.op == "Dropout" and node.args["p"] == 0)

    def _node(self, k: int, node: Node) -> list[str]:
        if self._is_alias(node):
            if node.op == "param":
                ref = self.ref(node.layer or "")
                self.var[node.id] = f"{ref}.{node.args['name']}" if node.args["name"] else ref
            elif node.op == "Parameter":
                self.var[node.id] = self.ref(node.layer or "")
            else:
                self.var[node.id] = self.var[node.inputs[0]]
                self.holds.setdefault(self.var[node.id], set()).add(node.id)
            return []
        rule = FORWARD.get(node.op)
        if rule is None:
            self.gen.refuse(f"the PyTorch backend has no lowering for `{node.op}`", node.loc)
            self.var[node.id] = "None"  # keep going: report every gap at once
            return []
        module = self.ref(node.layer) if node.layer and node.op in CONSTRUCT else None
        site = Site(node=node, xs=[self.var[i] for i in node.inputs],
                    ins=[self.g.nodes[i].type for i in node.inputs], module=module,
                    dim=self.dim, temp=lambda base: self.temp(base, k))
        out = rule(site)
        low = out if isinstance(out, Lowered) else Lowered(out)
        code = low.code
        if node.op in IN_PLACE and self._can_overwrite(node, k) and isinstance(code, Call):
            code = Call(code.func, (*code.args, "inplace=True"))
        name = self.prefer.get(node.id) or self._chain_name(node.id, k, "h")
        var = self.alloc(name, k)
        self.bind(node.id, var)
        before = [f"{INDENT * 2}{line}" for line in low.before]
        return [*before, *statement(code, low.target.format(var), _shape(node.type), 2)]

    def _can_overwrite(self, node: Node, k: int) -> bool:
        """Whether an activation may run in place on its input (nothing else needs it)."""
        if node.op == "LeakyReLU" and node.args["slope"] <= 0:
            return False
        (src,) = node.inputs
        producer = self.g.nodes[src]
        return (producer.scope == self.inst.path and producer.op in SAFE_TO_OVERWRITE
                and self.users.get(src) == [k] and src not in self.arg_ids)

    def _call(self, k: int, child: Instance) -> list[str]:
        scope = child.scope
        assert scope is not None
        sizes = [self.dim(Sym.symbol(s)) for s in self.children[id(child)].sizes]
        args = [*(self.var[i] for i in scope.inputs), *sizes]
        code = Call(self.ref(child.path), tuple(args))
        if len(scope.outputs) == 1:
            names = [scope.caller_names[0] or self._chain_name(child, k, scope.output_names[0])]
        else:
            names = [c or n for c, n in zip(scope.caller_names, scope.output_names, strict=True)]
        targets = []
        for name, i in zip(names, scope.outputs, strict=True):
            var = self.alloc(name, k)
            self.bind(i, var)
            targets.append(var)
        comment = ", ".join(_shape(self.g.nodes[i].type) for i in scope.outputs)
        return statement(code, ", ".join(targets), comment, 2)

    # -- repeated layers and blocks: nn.Sequential or a loop over an nn.ModuleList ---------------
    def _callee(self, item: int | Instance) -> str | None:
        if isinstance(item, Instance):
            return None if self.children[id(item)].sizes else self._rel(item.path)
        node = self.g.nodes[item]
        if node.layer and plain_call(node):
            return self._rel(node.layer)
        return None

    def _runs(self) -> dict[int, tuple[int, bool]]:
        """Start item -> (length, single input) for chains that call a whole container."""
        callees = [self._callee(item) for item in self.items]
        counts: dict[str, int] = {}
        for c in callees:
            if c:
                counts[c] = counts.get(c, 0) + 1
        runs: dict[int, tuple[int, bool]] = {}
        for k, c in enumerate(callees):
            if not c or not c.endswith(".0"):
                continue
            base = c[:-2]
            container = self._find(self.prefix + base)
            if container is None:
                continue
            n = len(container.items)
            want = [f"{base}.{i}" for i in range(n)]
            if callees[k : k + n] != want or any(counts[w] != 1 for w in want):
                continue
            if not self._chained(self.items[k : k + n], k):
                continue
            single = all(len(self._inputs_of(it)) == 1 for it in self.items[k : k + n])
            runs[k] = (n, single)
            container.sequential = single
        return runs

    def _chained(self, items: list[int | Instance], start: int) -> bool:
        rest = self._inputs_of(items[0])[1:]
        for j, item in enumerate(items):
            outs, ins = self._outputs_of(item), self._inputs_of(item)
            if len(outs) != 1 or ins[1:] != rest:
                return False
            if j > 0:
                prev = self._outputs_of(items[j - 1])[0]
                if ins[0] != prev or self.users.get(prev) != [start + j]:
                    return False
        return True

    def _run(self, k: int, n: int, sequential: bool) -> list[str]:
        items = self.items[k : k + n]
        first, *rest = self._inputs_of(items[0])
        out = self._outputs_of(items[-1])[0]
        base = self._callee(items[0])[:-2]  # type: ignore[index]
        container = self.ref(self.prefix + base)
        end = k + n - 1
        comment = _shape(self.g.nodes[out].type)
        if sequential:
            name = self.prefer.get(out) or self._chain_name(items[0], k, "h")
            var = self.alloc(name, end)
            self.bind(out, var)
            return statement(call(container, self.var[first]), var, comment, 2)
        # The loop variable carries the chain; the other inputs must outlive the loop.
        name = self.prefer.get(out) or self._chain_name(items[0], k, "h")
        var = self.alloc(name, k, avoid=frozenset(rest))
        lines = [] if var == self.var[first] else statement(self.var[first], var, indent=2)
        self.bind(out, var)
        base = "block" if isinstance(items[0], Instance) else "layer"
        element = self.alloc(base, end, avoid=frozenset([*rest, out]))
        lines.append(f"{INDENT * 2}for {element} in {container}:")
        code = Call(element, (var, *(self.var[i] for i in rest)))
        return lines + statement(code, var, comment, 3)


# ---- class contexts for the template ----------------------------------------------------------
def _def_head(name: str, params: list[str], returns: str) -> list[str]:
    return layout(f"def {name}", call("", *params), f" -> {returns}:", 1)


def _substitute(e: Expr, names: dict[str, str]) -> Expr:
    if isinstance(e, str):
        return e
    if isinstance(e, Call):
        return Call(names.get(e.func, e.func), tuple(_substitute(a, names) for a in e.args))
    if isinstance(e, Seq):
        return Seq(tuple(_substitute(a, names) for a in e.items), e.open, e.close, e.prefix)
    return Comp(_substitute(e.element, names), e.clause, e.prefix)


def _init_lines(name: str, params: dict[str, Any], modules: list[tuple[str, Expr]],
                names: dict[str, str]) -> list[str]:
    classes = set(names.values())
    local = {}
    for k in params:
        local[k] = _identifier(k)
        while local[k] in classes:  # a parameter named like a class would hide it
            local[k] += "_"
    signature = [f"{local[k]}: {type(v).__name__} = {lit(v)}" for k, v in params.items()]
    lines = [*_def_head("__init__", ["self", *signature], "None"),
             f"{INDENT * 2}super().__init__()"]
    if params:
        checks = [f"{local[k]}=({local[k]}, {lit(v)})" for k, v in params.items()]
        lines += statement(call("_require_compiled", lit(name), *checks), indent=2)
    for attr, expr in modules:
        lines += statement(_substitute(expr, names), f"self.{attr}", indent=2)
    return lines


def _class_context(p: Plan, names: dict[str, str]) -> dict[str, Any]:
    return {
        "name": p.name,
        "docstring": _class_docstring(p),
        "params": bool(p.params),
        "init": _init_lines(p.definition, p.params, p.modules, names),
        "forward": p.forward,
    }


def _gan_class(g: GanGraph, parts: list[Plan], gen: _Generator) -> dict[str, Any]:
    taken = {p.name for p in gen.order} | GLOBALS
    name = base = _identifier(g.name)
    k = 1
    while name in taken:
        k += 1
        name = f"{base}{k}"
    modules: list[tuple[str, Expr]] = [
        (attr, Call(p.name, tuple(f"{_identifier(a)}={lit(v)}" for a, v in p.params.items())))
        for attr, p in zip(("generator", "discriminator"), parts, strict=True)
    ]
    doc = _docstring([
        f"The `{g.name}` gan of {PurePath(g.file).name or 'the spec'}: `generator` and "
        f"`discriminator`, trained with the {g.loss} loss.",
        "",
        *_compiled_note(g.params),
    ])
    names = {p.name: p.name for p in parts}
    return {"name": name, "docstring": doc, "params": bool(g.params),
            "init": _init_lines(g.name, g.params, modules, names), "forward": []}


# ---- docstrings -------------------------------------------------------------------------------
def _shape(t: TensorType) -> str:
    dims = [format_dim(d) for d in t.shape]
    text = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
    return text if t.dtype == "f32" else f"{text} {t.dtype}"


def _settings(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={lit(v)}" for k, v in params.items())


def _compiled_note(params: dict[str, Any]) -> list[str]:
    if not params:
        return []
    return [f"Compiled for {_settings(params)}; for other values, recompile the spec with "
            "`--set`."]


def _tensors(label: str, items: list[tuple[str, TensorType]]) -> str:
    return f"{label}: " + "; ".join(f"{n} {_shape(t)}" for n, t in items) + "."


def _class_docstring(p: Plan) -> list[str]:
    if p.kind == "model":
        where = f" of {PurePath(p.file).name}" if p.file else ""
        return _docstring([f"The `{p.definition}` model{where}.", "",
                           _tensors("Inputs", p.inputs), _tensors("Outputs", p.outputs),
                           *([""] + _compiled_note(p.params) if p.params else [])])
    args = f" with {_settings(p.params)}" if p.params else ""
    inputs = ", ".join(f"{n} {_shape(t)}" for n, t in p.inputs)
    return _docstring([f"`{p.definition}`{args}, specialised for {inputs}."])


def _docstring(paragraphs: list[str], indent: str = INDENT) -> list[str]:
    """Docstring lines, wrapped to the line width, never inside a shape such as (B, 8, 8)."""
    lines: list[str] = []
    for para in paragraphs:
        if not para:
            lines.append("")
            continue
        glued = re.sub(r"\([^()]*\)", lambda m: m.group().replace(" ", "\0"), para)
        first = indent + ('"""' if not lines else "")
        wrapped = textwrap.wrap(glued, WIDTH, initial_indent=first, subsequent_indent=indent,
                                break_on_hyphens=False)
        lines += [ln.replace("\0", " ") for ln in wrapped]
    if len(lines) == 1 and len(lines[0]) + 3 <= WIDTH:
        return [lines[0] + '"""']
    return [*lines, f'{indent}"""']


def _module_docstring(graph: Graph | GanGraph) -> str:
    source = PurePath(graph.file).name or "a spec"
    kind = "gan" if isinstance(graph, GanGraph) else "model"
    text = (f"The `{graph.name}` {kind} of {source}, generated by archdsl. Shape comments use "
            "the spec's dimension names (B is the batch). Edit the spec and recompile rather "
            "than editing this file.")
    return "\n".join(_docstring([text], indent=""))


# ---- names --------------------------------------------------------------------------------
def _identifier(name: str) -> str:
    """A spec name as a Python name that shadows nothing the generated code uses."""
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in GLOBALS \
            or name in ("l", "O", "I"):
        return f"{name}_"
    return name


def _attribute_ok(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) \
        and name not in MODULE_ATTRIBUTES and not name.startswith("__")


# ---- templates and helper sources -------------------------------------------------------------
@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def _template(name: str) -> jinja2.Template:
    return _environment().get_template(name)


@cache
def _helper_sources() -> dict[str, str]:
    """The classes of layers.py by name, as source text (read, never imported)."""
    text = resources.files(__package__).joinpath("layers.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    return {n.name: ast.get_source_segment(text, n) or "" for n in tree.body
            if isinstance(n, ast.ClassDef)}


def _helper_source(name: str) -> str:
    return _helper_sources()[name]


def _helper_order(names: set[str]) -> list[str]:
    return [n for n in _helper_sources() if n in names]

