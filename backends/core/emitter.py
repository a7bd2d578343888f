"""The emitter: one definition's syntax tree, written as a class any target can render.

The emitter walks the definition as the elaborator did, statement by statement, and asks
the elaboration's records (`archdsl.staging`) what each expression made: the op and its
resolved arguments, the block instance, the branch an `if` took. It writes what the spec
wrote: its names, its `if`s (both branches: the record of the one not taken comes from a
speculative elaboration), its loops (a Python loop when every iteration reads alike), and
sizes as expressions of the definition's parameters and input sizes. Per-op knowledge stays
in the target's lowering table; the emitter only knows the language. Its expressions are in
expressions.py, its layers in application.py.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from archdsl import syntax as ast
from archdsl.expr import E, Lit, Op, Traced, Var, evaluate, expr_of, lit, names, render, substitute
from archdsl.graph import Node, TensorType
from archdsl.sites import bound_names
from archdsl.staging import InstanceLog, Record
from archdsl.symbolic import Sym, format_dim

from .application import Application
from .classes import ClassCode, For, If, Line, Local, Module, Param, Stmt
from .expressions import Expressions
from .lowering import Refused, plain, token, token_uses
from .reads import has_loop, read_later, value_in
from .values import LayerRef, Loop, Parts, Scalar, Tensor

if TYPE_CHECKING:
    from .generator import Generator


class Emitter(Expressions, Application):
    """Writes the class of `definition` from the records of `logs` (the first one leads)."""

    def __init__(self, gen: Generator, definition: ast.Definition, logs: list[InstanceLog],
                 compiled: dict[str, Any] | None = None) -> None:
        self.gen = gen
        self.target = gen.target
        self.staging = gen.staging
        self.defn = definition
        self.logs = logs
        self.log = logs[0]
        self.graph = self.log.graph
        self.compiled = compiled
        self.kinds: dict[str, str] = {}  # spec name -> param, size, local, loop, tensor
        self.env: dict[str, Any] = {}
        self.loops: list[Loop] = []
        self.subst: dict[str, E] = {}
        self.out: list[Stmt] = []
        self.built: set[str] = set()
        self.uses: list[ClassCode] = []
        self.size_reads: dict[str, tuple[int, int]] = {}  # size -> (input index, axis)
        self.input_vars: list[str] = []
        self.sym_names: dict[str, str] = {}
        self.taken = set(bound_names(definition)) | gen.reserved
        self.temps = 0
        self.via: str | None = None
        self.owner: dict[int, InstanceLog] = {}  # node id -> the instance it was made in
        self.unpack: list[str] | None = None  # the names a destructuring binds
        self.runtime: list[str] = []
        self.later: dict[int, set[str]] = {}
        self.returns: list[str] = []
        self.helpers: set[str] = set()

    # -- records ----------------------------------------------------------------------------------
    @property
    def loop_key(self) -> tuple[int, ...]:
        return tuple(lp.value for lp in self.loops)

    def records(self, site: ast.Node, kind: str) -> list[Record]:
        for log in self.logs:
            found = log.at(site, kind, self.loop_key)
            real = [r for r in found if not r.shadow]
            if real or found:
                for r in real or found:
                    self.owner[r.node] = log
                return real or found
        return []

    def consistent(self, given: dict[str, E], node: Node) -> dict[str, E]:
        """The arguments as the spec wrote them, but where one no longer gives the value
        the graph holds (a graph changed after elaboration, as verify's without dropout),
        the graph's value: the graph is what runs."""
        log = self.owner.get(node.id, self.log)
        out = dict(given)
        for name, e in given.items():
            have = node.args.get(name)
            if isinstance(have, (bool, int, float, str)) and not isinstance(have, Traced):
                value = value_in(e, log, self.loops)
                if value is not None and type(value) is type(have) and value != have:
                    out[name] = Lit(have)
        return out

    def record(self, site: ast.Node, kind: str) -> Record:
        found = self.records(site, kind)
        if not found:
            raise Refused("nothing was elaborated here", site.loc)
        return found[0]

    def node(self, i: int) -> Node:
        return self.staging.node(self.graph, i)

    def concrete(self, e: E) -> int:
        """`e`'s value in this iteration of the instances being written."""
        env: dict[str, Any] = {}
        for name in names(e):
            for log in self.logs:
                if name in log.params:
                    env[name] = int(log.params[name])
                    break
            else:
                for lp in self.loops:
                    if lp.var == name:
                        env[name] = lp.value
        return int(evaluate(substitute(e, self.subst) if self.subst else e, env))

    # -- names ------------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        k = 0
        while True:
            name = base if k == 0 else f"{base}{k}"
            if name not in self.taken:
                self.taken.add(name)
                return name
            k += 1

    def var(self, name: str) -> str:
        """The Python variable of a spec name (renamed when it would shadow a global)."""
        return f"{name}_" if name in self.gen.reserved else name

    def rename(self, name: str) -> str:
        if name in self.subst:
            return render(self.subst[name])
        kind = self.kinds.get(name)
        if kind == "param":
            return token("p", name)
        if kind == "size":
            return token("s", self.var(name))
        if kind == "local":
            return token("l", self.var(name))
        return self.var(name)

    def text(self, v: Any) -> str:
        """A value or expression as code: traced sizes as the definition computes them,
        symbolic sizes by this definition's names for them."""
        if isinstance(v, Sym):
            return self._sym(v)
        if isinstance(v, (list, tuple)) and any(isinstance(x, Sym) for x in v):
            inner = ", ".join(self.text(x) for x in v)
            return f"[{inner}]" if isinstance(v, list) else (
                f"({inner},)" if len(v) == 1 else f"({inner})")
        e = v if isinstance(v, (Var, Lit, Op)) else expr_of(v)
        return render(substitute(e, self.subst) if self.subst else e, self.rename)

    def _sym(self, d: Sym) -> str:
        text = format_dim(d.substitute({s: Sym.symbol(self.sym_names.get(s, s))
                                        for s in d.symbols()}))
        for s in sorted({self.sym_names.get(s, s) for s in d.symbols()}, key=len, reverse=True):
            self.kinds.setdefault(s, "size")
            text = re.sub(rf"\b{re.escape(s)}\b", token("s", s), text)
        return re.sub(r"\s*(//|\*)\s*", r" \1 ", text)

    def shape(self, t: TensorType) -> str:
        """A shape comment: `(B, channels, H, W)`, in this definition's names."""
        dims = [plain(self.text(d)) for d in t.shape]
        text = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
        return text if t.dtype == "f32" else f"{text} {t.dtype}"

    def temp(self, base: str = "h") -> str:
        return self.fresh(base)

    # -- the class --------------------------------------------------------------------------------
    def emit(self) -> ClassCode:
        defn = self.defn
        outputs_read = {s.name for s in defn.body if isinstance(s, ast.Output)}
        self.later = read_later(defn.body, outputs_read)
        params = self._params()
        for stmt in defn.body:
            self.statement(stmt)
        inputs = [(n, t.type) for n, t in self.log.inputs]
        outputs = [(n, t.type) for n, t in self.log.outputs]
        sizes = self._declared_sizes()
        shapes = {n: plain(self.shape(t)) for n, t in (*inputs, *outputs)}
        return ClassCode(
            definition=defn, kind=defn.kind, name="", params=params, sizes=sizes,
            inputs=inputs, outputs=outputs, body=self.out, returns=self.returns,
            size_reads=self.size_reads, input_vars=self.input_vars, shapes=shapes,
            runtime=self.runtime,
            uses=self.uses, file=defn.file, compiled=dict(self.compiled or {}),
            helpers=self.helpers,
        )

    def _params(self) -> list[Param]:
        out = []
        for p in self.defn.params:
            self.env[p.name] = Scalar(Var(p.name))
            value = self.log.params.get(p.name)
            if isinstance(value, Sym):
                # a symbolic size given as an argument: known when `forward` runs, so
                # `forward` takes it after the tensors
                self.kinds[p.name] = "runtime"
                if str(value) in value.symbols():
                    self.sym_names[str(value)] = p.name
                self.runtime.append(p.name)
                continue
            self.kinds[p.name] = "param"
            if self.compiled is not None:
                out.append(Param(p.name, p.type, render(lit(self.compiled[p.name]))))
            elif p.default is None:
                out.append(Param(p.name, p.type, None))
            else:
                e = self.scalar(p.default)
                late = None if isinstance(e, Lit) else self.text(e)
                out.append(Param(p.name, p.type, "None" if late else render(e), late))
        return out

    def _declared_sizes(self) -> list[str]:
        """The Python names of the sizes the inputs' types name, in order."""
        out: list[str] = []
        for stmt in self.defn.body:
            if isinstance(stmt, ast.Input):
                out += [self.var(d.id) for d in stmt.type.dims if isinstance(d, ast.Name)
                        and self.kinds.get(d.id) == "size" and self.var(d.id) not in out]
        return out

    # -- statements -------------------------------------------------------------------------------
    def statement(self, stmt: ast.Node) -> None:
        if isinstance(stmt, ast.Input):
            self.input(stmt)
        elif isinstance(stmt, (ast.Assign, ast.Output)):
            self.via = self._intermediate(stmt)
            try:
                value = self.value(stmt.value, self.var(stmt.name))
            finally:
                self.via = None
            self.bind(stmt.name, value)
            if isinstance(stmt, ast.Output):
                self.returns.append(self.materialize(stmt.name, self.env[stmt.name]))
        elif isinstance(stmt, ast.Destructure):
            self.unpack = [self.var(n) for n in stmt.names]
            try:
                value = self.value(stmt.value)
            finally:
                self.unpack = None
            items = value.items if isinstance(value, Parts) else []
            for name, part in zip(stmt.names, items, strict=True):
                self.bind(name, part)
        elif isinstance(stmt, ast.For):
            self.loop(stmt)
        # `assert` statements were proved by the checker; `train` is not part of the model

    def _intermediate(self, stmt: ast.Assign | ast.Output) -> str | None:
        """The variable a pipeline's inner stages assign: its target, but for an output
        (the pooled features are not the logits) its source when nothing reads the source
        afterwards (`x = pool(x)`), else a fresh name."""
        e = stmt.value
        if not isinstance(e, ast.Pipeline) or not isinstance(e.source, ast.Pipeline):
            return None
        if isinstance(stmt, ast.Assign):
            return self.var(stmt.name)
        while isinstance(e, ast.Pipeline):
            e = e.source
        if isinstance(e, ast.Name) and self.kinds.get(e.id) == "tensor" and \
                e.id not in self.later.get(id(stmt), set()):
            return self.var(e.id)
        return self.temp("h")

    def input(self, stmt: ast.Input) -> None:
        name = self.var(stmt.name)
        actual = dict(self.log.inputs)[stmt.name]
        index = len(self.input_vars)
        self.input_vars.append(name)
        for axis, d in enumerate(stmt.type.dims):
            if isinstance(d, ast.Name) and self.kinds.get(d.id) is None \
                    and self.gen.is_free(self.defn, d.id):
                self.kinds[d.id] = "size"
                self.size_reads.setdefault(self.var(d.id), (index, axis))
                got = actual.type.shape[axis]
                if isinstance(got, Sym) and len(got.symbols()) == 1 and \
                        str(got) == next(iter(got.symbols())):
                    self.sym_names[str(got)] = d.id
                self.env[d.id] = Scalar(Var(d.id))
        self.kinds[stmt.name] = "tensor"
        self.env[stmt.name] = Tensor(name, actual.type)

    def bind(self, name: str, value: Any) -> None:
        if isinstance(value, Scalar):
            if isinstance(value.e, Lit) or self.kinds.get(name) in ("param", "size", "loop"):
                self.env[name] = value
                if self.kinds.get(name) in ("param", "size", "loop"):
                    self.kinds[name] = "local"
                    self._local(name, value.e)
                    self.env[name] = Scalar(Var(name))
                return
            self.kinds[name] = "local"
            self._local(name, value.e)
            self.env[name] = Scalar(Var(name))
            return
        if isinstance(value, LayerRef) and value.bound is None:
            value.bound = name
            value.depth = len(self.loops)
        if isinstance(value, Tensor):
            self.kinds[name] = "tensor"
            if value.learned:  # `gain = Parameter(...)`: read `self.gain` where it is used
                self.env[name] = value
                return
            code = self.materialize(name, value)
            self.env[name] = Tensor(code, value.type, op=value.op)
            return
        self.env[name] = value

    def _local(self, name: str, e: E) -> None:
        code = self.text(e)
        self.out.append(Local(self.var(name), code, token_uses(code)))

    def materialize(self, name: str, value: Any) -> str:
        """The variable holding a tensor value, assigning it when it is an expression."""
        if not isinstance(value, Tensor):
            if isinstance(value, Parts):
                raise Refused(f"`{name}` holds several tensors; bind each one")
            raise Refused(f"`{name}` is not a tensor")
        var = self.var(name)
        if value.code != var:
            plain = isinstance(value.code, str) and value.code.isidentifier()
            self.out.append(Line(var, value.code, "" if plain else self._comment(value)))
        return var

    def _comment(self, value: Tensor) -> str:
        return self.shape(value.type)

    def _comment_change(self, out: TensorType, first: TensorType | None) -> str:
        """A shape comment where the shape changes (nanoGPT's habit), else none."""
        text = self.shape(out)
        return "" if first is not None and self.shape(first) == text else text

    def loop(self, stmt: ast.For) -> None:
        """A Python loop when every iteration reads alike and the loop is the only one
        around its layers (they go in one `nn.ModuleList`, indexed by the loop variable);
        otherwise one block of statements per iteration."""
        rec = self.record(stmt, "loop")
        bounds = [self.scalar(a) for a in stmt.args]
        concrete = [self.concrete(b) for b in bounds]
        values = list(range(*concrete)) or [range(*concrete).start]  # none ran: the start
        self.kinds[stmt.var] = "loop"
        var = self.var(stmt.var)
        python = not self.loops and not has_loop(stmt.body) and \
            (len(concrete) == 1 or (concrete[0] == 0 and concrete[2:] in ([], [1])))
        if python and len(values) > 1:
            first, _ = self._iteration(stmt, var, values[0], 0, python=True)
            second, _ = self._iteration(stmt, var, values[1], 1, python=True)
            python = _same(first, second) and not _modules_under_if(first)
        if python or not rec.count:
            body, env = self._iteration(stmt, var, values[0], 0, python=True, keep=True)
            iterable = f"range({', '.join(self.text(b) for b in bounds)})"
            self.out.append(For(var, iterable, body, token_uses(iterable)))
            self.env.update(env)
            return
        for k, v in enumerate(values):  # iterations differ (a size that doubles, say)
            body, env = self._iteration(stmt, var, v, k, python=False, keep=True)
            self.out.extend(body)
            self.env.update(env)

    def _iteration(self, stmt: ast.For, var: str, value: int, index: int, python: bool,
                   keep: bool = False) -> tuple[list[Stmt], dict[str, Any]]:
        saved = (self.out, dict(self.env), set(self.built), set(self.taken), self.temps,
                 list(self.uses), set(self.helpers))
        self.out = []
        self.loops.append(Loop(var, python, value, index))
        if python:
            self.env[stmt.var] = Scalar(Var(stmt.var))
        else:
            self.subst = {**self.subst, stmt.var: Lit(value)}
            self.env[stmt.var] = Scalar(Lit(value))
        try:
            for inner in stmt.body:
                self.statement(inner)
        finally:
            self.loops.pop()
            if not python:
                self.subst = {k: v for k, v in self.subst.items() if k != stmt.var}
        body, env = self.out, self.env
        if keep:
            self.out, self.env = saved[0], saved[1]
            return body, {k: v for k, v in env.items() if k != stmt.var}
        self.out, self.env, self.built, self.taken, self.temps, self.uses, self.helpers = saved
        return body, env



def _same(a: list[Stmt], b: list[Stmt]) -> bool:
    return repr(a) == repr(b)


def _modules_under_if(stmts: list[Stmt], inside: bool = False) -> bool:
    for s in stmts:
        if isinstance(s, Module) and inside:
            return True
        if isinstance(s, If) and (_modules_under_if(s.then, True) or
                                  _modules_under_if(s.orelse, True)):
            return True
        if isinstance(s, For) and _modules_under_if(s.body, inside):
            return True
    return False
