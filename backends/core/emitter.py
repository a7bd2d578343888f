"""The emitter: one definition's syntax tree, written as a class any target can render.

The emitter walks the definition as the elaborator did, statement by statement, and asks
the elaboration's records (`archdsl.staging`) what each expression made: the op and its
resolved arguments, the block instance, the branch an `if` took. It writes what the spec
wrote: its names, its `if`s (both branches: the record of the one not taken comes from a
speculative elaboration), its loops (a Python loop when every iteration reads alike), and
sizes as expressions of the definition's parameters and input sizes. Per-op knowledge stays
in the target's lowering table; the emitter only knows the language.

Names in emitted code are tokens (`\\0p:stride\\0`) until a target renders a method, because a
parameter reads `stride` in a constructor and `self.stride` in `forward`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archdsl import syntax as ast
from archdsl.expr import (
    E,
    Lit,
    Op,
    Traced,
    Var,
    binary,
    call,
    expr_of,
    lit,
    neg,
    negate,
    render,
    substitute,
)
from archdsl.graph import Node, TensorType
from archdsl.names import attribute_ok
from archdsl.ops import REGISTRY
from archdsl.ops.registry import OpDef
from archdsl.staging import InstanceLog, Record
from archdsl.symbolic import Sym, format_dim

from .classes import ClassCode, Fail, For, If, Line, Local, Module, Param, Stmt
from .pycode import Call, Expr

if TYPE_CHECKING:
    from .generator import Generator

TOKEN = re.compile("\0([psl]):([^\0]*)\0")


def token(kind: str, name: str) -> str:
    """A name whose spelling depends on the method: `p` parameter, `s` size, `l` local."""
    return f"\0{kind}:{name}\0"


class Refused(Exception):
    """This construct cannot be written for this target; `loc` says where in the spec."""

    def __init__(self, message: str, loc: Any = None, label: str = "") -> None:
        super().__init__(message)
        self.loc, self.label = loc, label


# ---- values the walk passes around --------------------------------------------------------------
@dataclass
class Tensor:
    code: Expr
    type: TensorType
    temp: bool = False  # an intermediate nothing else reads: an in-place op may reuse it
    op: str = ""
    learned: bool = False  # a parameter read from a module (`self.gain`): no variable needed


@dataclass
class Scalar:
    e: E


@dataclass
class LayerRef:
    """A layer configured at `site` (not yet applied): an op or a block, with the arguments
    as the spec wrote them, or a repeat (`L * n`)."""

    name: str
    op: OpDef | None
    definition: ast.Definition | None
    given: dict[str, E]
    site: ast.Node
    count: E | None = None  # `L * n`
    bound: str | None = None
    keywords: frozenset[str] = frozenset()  # the arguments given by name
    depth: int | None = None  # the loops around its binding, for a bound layer


@dataclass
class LayerName:
    """A layer or block named but not configured (`ReLU`, `Conv2d`)."""

    name: str
    op: OpDef | None
    definition: ast.Definition | None


@dataclass
class Function:
    op: OpDef


@dataclass
class Parts:
    items: list[Any]


@dataclass
class OpSite:
    """What a lowering rule sees of one op application."""

    op: OpDef
    node: Node
    ins: list[TensorType]
    xs: list[Expr]
    given: dict[str, E]
    module: str | None
    text: Callable[[Any], str]  # any value or expression, as code in this class
    temp: Callable[[str], str]
    reusable: bool = False  # the first input may be overwritten (an in-place op)

    @property
    def args(self) -> dict[str, Any]:
        return self.node.args

    @property
    def x(self) -> Expr:
        return self.xs[0]

    def arg(self, name: str) -> str:
        """An argument as code: as the spec wrote it, else its resolved value."""
        if name in self.given:
            return self.text(self.given[name])
        return self.text(self.args[name])

    def fixed(self, name: str) -> bool:
        """Whether the argument is the same for every instance of the class (a literal)."""
        if name in self.given:
            return isinstance(self.given[name], Lit)
        return isinstance(expr_of(self.args[name]), Lit)

    def dim(self, d: Any) -> str:
        return self.text(d)

    def keyword(self, name: str, default: Any, keyword: str | None = None) -> list[str]:
        """`[keyword=value]` when the spec gives the argument a value other than `default`
        (a literal equal to it, of its type, counts as not given), else `[]`."""
        given = self.given.get(name)
        if given is None or (isinstance(given, Lit) and given.value == default and
                             type(given.value) is type(default)):
            return []
        return [f"{keyword or name}={self.text(given)}"]

    def ints(self, name: str) -> str:
        """A size argument as written (`3`, `(3, 5)`), or its resolved value, compacted to
        one number when every dimension has it."""
        if name in self.given:
            return self.text(self.given[name])
        v = self.args[name]
        if isinstance(v, list) and len(set(map(int, v))) == 1:
            return self.text(v[0])
        return self.text(tuple(v) if isinstance(v, list) else v)


@dataclass
class Lowered:
    """`target.format(out) = code`, after the statements in `before`."""

    code: Expr
    target: str = "{}"
    before: tuple[str, ...] = ()


# ---- the walk -----------------------------------------------------------------------------------
@dataclass
class _Loop:
    var: str
    python: bool  # a Python loop (the body written once) or unrolled
    value: int  # the loop variable's value in this iteration (records are kept by it)
    index: int  # the iteration, from 0 (layer paths number by it)


class Emitter:
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
        self.loops: list[_Loop] = []
        self.subst: dict[str, E] = {}
        self.out: list[Stmt] = []
        self.built: set[str] = set()
        self.uses: list[ClassCode] = []
        self.size_reads: dict[str, tuple[int, int]] = {}  # size -> (input index, axis)
        self.input_vars: list[str] = []
        self.sym_names: dict[str, str] = {}
        self.taken = set(_all_names(definition)) | gen.reserved
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
                value = _evaluate(e, log, self.loops)
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
        dims = [_plain(self.text(d)) for d in t.shape]
        text = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
        return text if t.dtype == "f32" else f"{text} {t.dtype}"

    def temp(self, base: str = "h") -> str:
        return self.fresh(base)

    # -- the class --------------------------------------------------------------------------------
    def emit(self) -> ClassCode:
        defn = self.defn
        outputs_read = {s.name for s in defn.body if isinstance(s, ast.Output)}
        self.later = _read_later(defn.body, outputs_read)
        params = self._params()
        for stmt in defn.body:
            self.statement(stmt)
        inputs = [(n, t.type) for n, t in self.log.inputs]
        outputs = [(n, t.type) for n, t in self.log.outputs]
        sizes = self._declared_sizes()
        shapes = {n: _plain(self.shape(t)) for n, t in (*inputs, *outputs)}
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
        self.out.append(Local(self.var(name), code, _uses(code)))

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
        concrete = [_value(b, self) for b in bounds]
        values = list(range(*concrete)) or [range(*concrete).start]  # none ran: the start
        self.kinds[stmt.var] = "loop"
        var = self.var(stmt.var)
        python = not self.loops and not _has_loop(stmt.body) and \
            (len(concrete) == 1 or (concrete[0] == 0 and concrete[2:] in ([], [1])))
        if python and len(values) > 1:
            first, _ = self._iteration(stmt, var, values[0], 0, python=True)
            second, _ = self._iteration(stmt, var, values[1], 1, python=True)
            python = _same(first, second) and not _modules_under_if(first)
        if python or not rec.count:
            body, env = self._iteration(stmt, var, values[0], 0, python=True, keep=True)
            iterable = f"range({', '.join(self.text(b) for b in bounds)})"
            self.out.append(For(var, iterable, body, _uses(iterable)))
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
        self.loops.append(_Loop(var, python, value, index))
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

    # -- expressions ------------------------------------------------------------------------------
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
        if not _names(cond):  # decided by literals and constants alone
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
            other_body: list[Stmt] = [Fail(_fail_message(self.defn, e))]
        else:
            other_body, _ = self._branch(second, var)
        then, orelse = (taken_body, other_body) if rec.taken else (other_body, taken_body)
        code = self.text(cond)
        self.out.append(If(code, then, orelse, _uses(code), self.text(negate(cond))))
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
            given = _given(op.args, [self.scalar_or_list(a) for a in rest], {})
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
            return v.items[_value(self.scalar(e.items[0]), self)]
        return self.op_at(e, [v], target)

    def _Attribute(self, e: ast.Attribute, target: str | None) -> Any:
        rec = self.record(e, "node")
        node = self.node(rec.node)
        module = self.module_ref(node.layer or "")
        name = node.args["name"]
        code = f"{module}.{name}" if name else module
        return Tensor(code, node.type, learned=True)

    # -- layers -----------------------------------------------------------------------------------
    def configure(self, ref: LayerName, site: ast.Node, call_site: Any) -> LayerRef:
        given: dict[str, E] = {}
        if isinstance(site, ast.Call):
            values = [self.scalar_or_list(a) for a in site.args]
            kwargs = {k.name: self.scalar_or_list(k.value) for k in site.kwargs}
            if ref.op is not None:
                if ref.op.variadic:
                    given = {ref.op.variadic: Op("list", tuple(values)), **kwargs}
                else:
                    given = _given(ref.op.args, values, kwargs)
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


# ---- small helpers ------------------------------------------------------------------------------
def _given(decls: Any, values: list[E], kwargs: dict[str, E]) -> dict[str, E]:
    names = [a.name for a in decls]
    return {**dict(zip(names, values, strict=False)), **kwargs}


def _value(e: E, em: Emitter) -> int:
    from archdsl.expr import evaluate
    env: dict[str, Any] = {}
    for name in _names(e):
        for log in em.logs:
            if name in log.params:
                env[name] = int(log.params[name])
                break
        else:
            for lp in em.loops:
                if lp.var == name:
                    env[name] = lp.value
    return int(evaluate(substitute(e, em.subst) if em.subst else e, env))


def _evaluate(e: E, log: InstanceLog, loops: list[_Loop]) -> Any:
    """`e`'s value in one instance, or None where it reads a name the instance does not
    hold (a local of the spec)."""
    from archdsl.expr import evaluate
    env = {k: (int(v) if isinstance(v, Traced) else v) for k, v in log.params.items()}
    env.update({lp.var: lp.value for lp in loops})
    try:
        return evaluate(e, env)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


def _names(e: E) -> set[Any]:
    from archdsl.expr import names
    return names(e)


def _uses(code: str) -> frozenset[str]:
    return frozenset(f"{k}:{n}" for k, n in TOKEN.findall(code))


def _plain(text: str) -> str:
    return TOKEN.sub(lambda m: m.group(2), text)


def _same(a: list[Stmt], b: list[Stmt]) -> bool:
    return repr(a) == repr(b)


def _has_loop(body: tuple[ast.Node, ...]) -> bool:
    return any(isinstance(s, ast.For) for s in body)


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


def _fail_message(defn: ast.Definition, e: ast.IfElse) -> str:
    where = f"{e.loc.file}:{e.loc.line}" if e.loc else defn.name
    return (f"{defn.name} was generated without this branch ({where}): no elaboration could "
            "build it; recompile the spec with values that take it")


def _read_later(body: tuple[ast.Node, ...], after: set[str]) -> dict[int, set[str]]:
    """For each statement, the names some later statement reads (in a loop, the whole body
    counts as later: the next iteration reads it)."""
    out: dict[int, set[str]] = {}
    acc = set(after)
    for stmt in reversed(body):
        if isinstance(stmt, ast.For):
            inner = acc | _reads(stmt)
            out.update(_read_later(stmt.body, inner))
            acc |= inner
        out[id(stmt)] = set(acc)
        acc |= _reads(stmt)
    return out


def _reads(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            found.add(n.id)
        elif isinstance(n, ast.Node):
            for attr in getattr(n, "__slots__", ()):
                child = getattr(n, attr, None)
                if isinstance(child, ast.Node):
                    stack.append(child)
                elif isinstance(child, tuple):
                    stack.extend(c for c in child if isinstance(c, ast.Node))
    return found


def _all_names(defn: ast.Definition) -> set[str]:
    out = {p.name for p in defn.params}
    stack: list[Any] = list(defn.body)
    while stack:
        s = stack.pop()
        if isinstance(s, (ast.Input, ast.Assign, ast.Output)):
            out.add(s.name)
        if isinstance(s, ast.Input):
            out.update(d.id for d in s.type.dims if isinstance(d, ast.Name))
        if isinstance(s, ast.For):
            out.add(s.var)
            stack.extend(s.body)
    return out

