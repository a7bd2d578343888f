"""The layout pass: which tensors travel channels-last, and the Keras code of every op.

Keras's convolutions, pooling and batch norm run channels-last (TensorFlow's fast CPU
layout); the spec is channels-first. One pass over each function's statements, in order,
gives every tensor of rank 3 or more a layout: an op that computes channels-last (`last`)
takes its input transposed there, once, and leaves its result there; elementwise ops keep the
layout of their inputs; ops that read an axis (concat, softmax, sums, indexing, permutes) have
the axis rewritten; every other op (Linear, flatten, reshape, matmul, attention...) and the
model's outputs take the spec's layout, transposed back where a tensor is channels-last. So a
transpose appears only where the spec's channels-first layout is observable.

Functions pass tensors in the layout the callee chose: `Walk` is run for each choice of its
inputs' layouts and the one with the fewest transposes inside wins (ties: the spec's layout);
its results leave in the layout they were computed in. `Signature` records both for callers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from ..core.classes import ClassCode, For, If, Line, Module, Stmt
from ..core.lowering import Refused, plain
from ..core.pycode import Call, Chain, Comp, Expr, Index, Seq, binop, flat, level_of
from .steps import ANCHOR, AXIS, FIRST, LAST, Layer, M, Op, Repeat, Stack, Stages, X

MODULE = re.compile("\0m:([^\0]*)\0")
READ = re.compile("\0m:([^\0]*)\0(?:\\.(\\w+))?")


def module_ref(attr: str) -> str:
    return f"\0m:{attr}\0"


@dataclass
class Value:
    code: Expr
    layout: str
    rank: int


@dataclass
class Made:
    """A layer or block a function makes: where, how often its code refers to it, and the
    local variable holding it when it is used more than once."""

    module: Module
    refs: int
    var: str | None = None
    applied: bool = False


def to_last(rank: int) -> tuple[int, ...]:
    return (0, *range(2, rank), 1)


def to_first(rank: int) -> tuple[int, ...]:
    return (0, rank - 1, *range(1, rank - 1))


def axis_in(layout: str, axis: int, rank: int) -> int:
    """Where spec axis `axis` of a rank-`rank` tensor is held in `layout`."""
    if layout == FIRST or rank < 3 or axis == 0:
        return axis
    return rank - 1 if axis == 1 else axis - 1


def _tuple(values: Any) -> str:
    items = [str(v) for v in values]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def names_in(e: Expr) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", plain(flat(e))))


# ---- filling templates ------------------------------------------------------------------------
def fill(template: Expr, slots: dict[str, Expr]) -> Expr:
    """`template` with each placeholder replaced: a leaf equal to one becomes that expression,
    a placeholder inside a longer string its text (bracketed where it binds loosely)."""
    if isinstance(template, str):
        if template in slots:
            return slots[template]
        text = template
        for key, value in slots.items():
            if key in text:
                inner = flat(value)
                text = text.replace(key, inner if level_of(value) >= 10 else f"({inner})")
        return text
    if isinstance(template, Call):  # its function may be a layer: `layers.Dense(4)(x)`
        func = fill(template.func, slots)
        assert isinstance(func, (str, Call))
        return Call(func, tuple(fill(a, slots) for a in template.args))
    if isinstance(template, Index):
        return Index(fill(template.value, slots), template.index)
    if isinstance(template, Seq):
        return Seq(tuple(fill(a, slots) for a in template.items), template.open,
                   template.close, template.prefix)
    if isinstance(template, Chain):
        out = fill(template.operands[0], slots)
        for op, operand in zip(template.ops, template.operands[1:], strict=True):
            out = binop(op, out, fill(operand, slots))
        return out
    assert isinstance(template, Comp)
    return Comp(fill(template.element, slots), template.clause, template.prefix)


def uses(template: Expr, slot: str) -> int:
    return flat(template).count(slot)


# ---- the pass ---------------------------------------------------------------------------------
class Walk:
    """One function's statements in final code, for one choice of its inputs' layouts."""

    def __init__(self, cls: ClassCode, made: dict[str, Made], callees: dict[int, Callee],
                 dynamic: set[str], prefix: str | None, taken: set[str],
                 layouts: list[str]) -> None:
        self.cls = cls
        self.made = made
        self.callees = callees
        self.dynamic = dynamic
        self.prefix = prefix  # the variable holding the function's name; None in a model
        self.taken = set(taken)
        self.loops: list[str] = []  # the loop variables around the statement being written
        self.layout: dict[str, str] = {}
        self.rank: dict[str, int] = {}
        for var, layout, (_, t) in zip(cls.input_vars, layouts, cls.inputs, strict=True):
            self.layout[var], self.rank[var] = layout, t.rank
        self.start = list(layouts)  # the layouts the function takes its inputs in
        self.transposes = 0
        self.pre: list[Stmt] = []

    # -- names ----------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}{k}", k + 1
        self.taken.add(name)
        return name

    def layer_name(self, path: str) -> str:
        """The `name=` of the layer at `path` (`conv1`, `fc[i]`, `outer[0].fc`): its
        state-dict prefix, the loop variables around it filled in."""
        def index(m: re.Match[str]) -> str:
            return f".{{{m.group(1)}}}" if m.group(1) in self.loops else f".{m.group(1)}"

        dotted = re.sub(r"\[(\w+)\]", index, path)
        if self.prefix is not None:
            return f'f"{{{self.prefix}}}.{dotted}"'
        return f'f"{dotted}"' if "{" in dotted else f'"{dotted}"'

    def loop_variable(self) -> str:
        for name in ("i", "j", "k", "n"):
            if name not in self.taken and name not in self.loops:
                return name
        return self.fresh("i")

    # -- conversions ----------------------------------------------------------------------------
    def convert(self, v: Value, want: str) -> Value:
        if v.rank < 3 or v.layout == want:
            return v
        self.transposes += 1
        perm = to_last(v.rank) if want == LAST else to_first(v.rank)
        return Value(Call("keras.ops.transpose", (v.code, _tuple(perm))), want, v.rank)

    def hoist(self, v: Value) -> Value:
        """`v` in a variable, so that using it twice does not compute it twice."""
        if isinstance(v.code, str) and v.code.isidentifier():
            return v
        var = self.fresh("h")
        self.pre.append(Line(var, v.code))
        return Value(var, v.layout, v.rank)

    # -- expressions ----------------------------------------------------------------------------
    def expr(self, e: Expr, rank: int) -> Value:
        if isinstance(e, Op):
            return self.op(e)
        if isinstance(e, str):
            read = READ.fullmatch(e)
            if read:
                return self.read(read.group(1), read.group(2), rank)
            if e.isidentifier():
                return Value(e, self.layout.get(e, FIRST), self.rank.get(e, rank))
            return Value(e, FIRST, rank)
        attr = _applied(e)
        if attr is not None:
            assert isinstance(e, Call)
            code, outs = self.call(attr, e.args)
            if len(outs) != 1:
                raise Refused("a block with several outputs used inside an expression")
            return Value(code, *outs[0])
        return Value(e, FIRST, rank)

    def op(self, e: Op) -> Value:
        ins = [self.expr(x, r) for x, r in zip(e.ins, e.ranks, strict=True)]
        if e.kind == "apply":
            assert e.module is not None
            return self.apply(_attr(e.module), ins, e.code or None)
        return getattr(self, f"op_{e.kind}")(e, ins)

    def slots(self, template: Expr, ins: list[Value]) -> dict[str, Expr]:
        out: dict[str, Expr] = {}
        for k, v in enumerate(ins):
            if uses(template, X[k]) > 1:
                v = self.hoist(v)
            out[X[k]] = v.code
        return out

    @staticmethod
    def common(ins: list[Value], rank: int) -> str:
        """The layout elementwise inputs share: channels-last when any of them is and all
        have the result's rank (broadcasting aligns trailing dimensions, which a transpose
        would move); the spec's otherwise."""
        tensors = [v for v in ins if v.rank >= 1]
        if rank >= 3 and all(v.rank == rank for v in tensors) and \
                any(v.layout == LAST for v in tensors):
            return LAST
        return FIRST

    def placed(self, e: Op, ins: list[Value], layout: str,
               extra: dict[str, Expr] | None = None) -> Value:
        ins = [self.convert(v, layout) for v in ins]
        code = fill(e.code, {**self.slots(e.code, ins), **(extra or {})})
        return Value(code, layout if e.rank >= 3 else FIRST, e.rank)

    def op_any(self, e: Op, ins: list[Value]) -> Value:
        return self.placed(e, ins, self.common(ins, e.rank))

    def op_first(self, e: Op, ins: list[Value]) -> Value:
        return self.placed(e, ins, FIRST)

    def op_last(self, e: Op, ins: list[Value]) -> Value:
        return self.placed(e, ins, LAST)

    def op_axis(self, e: Op, ins: list[Value]) -> Value:
        layout = self.common(ins, e.rank)
        return self.placed(e, ins, layout, {AXIS: str(axis_in(layout, e.data[0], e.rank))})

    def op_reduce(self, e: Op, ins: list[Value]) -> Value:
        """A reduction keeps channels-last when it keeps the channels and the batch."""
        axes, keep = e.data
        (x,) = ins
        if x.layout == LAST and axes is not None and 0 in axes and not keep:
            x = self.convert(x, FIRST)
        code = fill(e.code, {X[0]: x.code})
        assert isinstance(code, Call)
        held = None if axes is None else sorted(axis_in(x.layout, a, x.rank) for a in axes)
        extra = [] if held is None else [f"axis={held[0] if len(held) == 1 else _tuple(held)}"]
        code = Call(code.func, (*code.args, *extra, *(["keepdims=True"] if keep else [])))
        keeps = keep or (axes is not None and 1 not in axes)
        return Value(code, x.layout if keeps and e.rank >= 3 else FIRST, e.rank)

    def op_getitem(self, e: Op, ins: list[Value]) -> Value:
        (x,) = ins
        full = (None, None, None)
        items = list(e.data) + [full] * (x.rank - len(e.data))
        if x.layout == LAST and isinstance(items[0], int):
            x = self.convert(x, FIRST)
        layout = FIRST
        if x.layout == LAST:
            layout = FIRST if isinstance(items[1], int) else LAST
            items = [items[0], *items[2:], items[1]]
        while items and items[-1] == full:
            items.pop()
        text = ", ".join(_index(i) for i in items) or ":"
        code = fill(f"{X[0]}[{text}]", {X[0]: x.code})
        return Value(code, layout if e.rank >= 3 else FIRST, e.rank)

    def op_pad(self, e: Op, ins: list[Value]) -> Value:
        """Padding keeps its input's layout: `data` holds each spec dimension's (before,
        after), written where `AXIS` stands in the order the input holds them."""
        (x,) = ins
        pairs = list(e.data)
        if x.layout == LAST and x.rank >= 3:
            pairs = [pairs[0], *pairs[2:], pairs[1]]
        widths = _tuple(f"({b}, {a})" for b, a in pairs)
        code = fill(e.code, {X[0]: x.code, AXIS: widths})
        return Value(code, x.layout if e.rank >= 3 else FIRST, e.rank)

    def op_permute(self, e: Op, ins: list[Value]) -> Value:
        """A permute of a channels-last tensor is one transpose to the spec's result."""
        (x,) = ins
        perm = [axis_in(x.layout, a, x.rank) for a in e.data]
        return Value(Call("keras.ops.transpose", (x.code, _tuple(perm))), FIRST, e.rank)

    def unknown(self, dim: str) -> bool:
        """Whether a size is not known when the model is built (Keras's `None`)."""
        return dim == "-1" or bool(names_in(dim) & self.dynamic)

    def op_reshape(self, e: Op, ins: list[Value]) -> Value:
        """`layers.Reshape` keeping the batch, or `keras.ops.reshape`, when at most one size
        is unknown until run time (written -1); `ReshapeTo` reading sizes when it runs
        otherwise."""
        x = self.convert(ins[0], FIRST)
        dims = list(e.data)
        kept = e.code == "batch"
        rest = dims[1:] if kept else dims
        if sum(self.unknown(d) for d in rest) <= 1:
            shape = _tuple("-1" if self.unknown(d) else d for d in rest)
            code: Expr = Call(Call("keras.layers.Reshape", (shape,)), (x.code,)) if kept else \
                Call("keras.ops.reshape", (x.code, shape))
            return Value(code, FIRST, e.rank)
        if kept and "-1" not in rest:
            dims[0] = "-1"
        template = _tuple("None" if self.unknown(d) and d != "-1" else d for d in dims)
        sizes = Seq(tuple(d for d in dims if self.unknown(d) and d != "-1"))
        return Value(Call(Call("ReshapeTo", (template,)), (x.code, sizes)), FIRST, e.rank)

    def op_expand(self, e: Op, ins: list[Value]) -> Value:
        """torch's expand: `keras.ops.broadcast_to` when every size is known when the model
        is built, else `ExpandTo` (-1 keeps a size, the others are read when it runs)."""
        x = self.convert(ins[0], FIRST)
        dims, have = e.data
        lead = len(dims) - len(have)
        kept = [k >= lead and (d == "-1" or d == have[k - lead]) for k, d in enumerate(dims)]
        sizes = [have[k - lead] if keep else d
                 for k, (d, keep) in enumerate(zip(dims, kept, strict=True))]
        if not any(self.unknown(d) for d in sizes):
            return Value(Call("keras.ops.broadcast_to", (x.code, _tuple(sizes))), FIRST,
                         e.rank)
        template = _tuple("-1" if keep else "None" if self.unknown(d) else d
                          for d, keep in zip(sizes, kept, strict=True))
        given = Seq(tuple(d for d, keep in zip(sizes, kept, strict=True)
                          if not keep and self.unknown(d)))
        return Value(Call(Call("ExpandTo", (template,)), (x.code, given)), FIRST, e.rank)

    # -- layers and blocks ----------------------------------------------------------------------
    def layer_code(self, attr: str, path: str | None = None) -> Expr:
        """The layer at `attr`: its variable, or where it is used once, the layer itself."""
        made = self.made[attr]
        if made.var is not None:
            return made.var
        return named(made.module.make, self.layer_name(path or attr))

    def read(self, attr: str, param: str | None, rank: int) -> Value:
        """A learned tensor: a `Parameter`, or a parameter of a layer (`wte.weight`), read
        against any tensor of the function (a functional model's tensors all derive from its
        inputs)."""
        made = self.made.get(attr)
        anchor = self.cls.input_vars[0] if self.cls.input_vars else None
        if made is None or anchor is None:
            raise Refused(f"the learned tensor `{attr}` cannot be read here")
        make = made.module.make
        made.applied = True
        if param is None:
            assert isinstance(make, Layer) and make.read
            return Value(fill(make.apply, {M: self.layer_code(attr), ANCHOR: anchor}), FIRST,
                         rank)
        attribute = WEIGHTS.get((getattr(make, "func", ""), param))
        if attribute is None:
            raise Refused(f"the Keras backend cannot read `{param}` of this layer")
        if made.var is None:
            raise Refused(f"`{param}` of a layer is read before the layer is applied")
        keras_name, transposed = attribute
        code: Expr = Call(Call("Weight", (made.var, f'"{keras_name}"')), (anchor,))
        if transposed:
            code = Call("keras.ops.transpose", (code,))
        return Value(code, FIRST, rank)

    def apply(self, attr: str, ins: list[Value], template: Expr | None) -> Value:
        """A layer applied, its input moved to the layout it computes in."""
        made = self.made[attr]
        made.applied = True
        make = made.module.make
        if isinstance(make, Stack):
            x = self.convert(ins[0], FIRST)
            if made.var is not None:
                return Value(Call(made.var, (x.code,)), FIRST, make_rank(make))
            code = x.code
            for layer, suffix in zip(make.layers, make.names, strict=True):
                head = layer if suffix is None else named(layer, self.layer_name(
                    f"{attr}.{suffix}" if suffix else attr))
                code = Call(head, (code,))
            return Value(code, FIRST, make_rank(make))
        assert isinstance(make, Layer), make
        return self.applied(make, self.layer_code(attr), ins, template)

    def applied(self, make: Layer, head: Expr, ins: list[Value],
                template: Expr | None = None) -> Value:
        want = make.kind if make.kind != "any" else self.common(ins, make.rank)
        ins = [self.convert(v, want) for v in ins]
        first = ins[0].code
        for step in make.before:
            first = fill(step, {X[0]: first})
        ins = [Value(first, want, ins[0].rank), *ins[1:]]
        template = template or make.apply
        code = fill(template, {**self.slots(template, ins), M: head})
        for step in make.after:
            code = fill(step, {X[0]: code})
        return Value(code, want if make.rank >= 3 else FIRST, make.rank)

    def call(self, attr: str, args: tuple[Expr, ...]) -> tuple[Expr, list[tuple[str, int]]]:
        """A block (or a layer, as a stage) applied: the callee's function, its inputs moved
        to the layouts it takes. Returns the code and each result's layout and rank."""
        made = self.made[attr]
        made.applied = True
        make = made.module.make
        if isinstance(make, (Repeat, Stages)):
            raise Refused("a repeat used inside an expression")
        if isinstance(make, (Layer, Stack)):
            rank = make.ranks[0] if isinstance(make, Layer) and make.ranks else 3
            v = self.apply(attr, [self.expr(args[0], rank)], None)
            return v.code, [(v.layout, v.rank)]
        callee = self.callees[_class_key(make)]
        cls = callee.cls
        ins = [self.convert(self.expr(a, t.rank), layout) for a, (_, t), layout in
               zip(args, cls.inputs, callee.inputs, strict=False)]
        runtime = args[len(cls.inputs):]
        if made.var is not None:
            code: Expr = Call(made.var, (*(v.code for v in ins), *runtime))
        else:
            code = Call(callee.name, (*(v.code for v in ins), *runtime,
                                      *block_args(make, cls), f"name={self.layer_name(attr)}"))
        return code, [(layout, t.rank) for layout, (_, t) in
                      zip(callee.outputs, cls.outputs, strict=True)]

    # -- statements -----------------------------------------------------------------------------
    def stmts(self, body: list[Stmt]) -> list[Stmt]:
        out: list[Stmt] = []
        for s in body:
            out += self.stmt(s)
        return out

    def stmt(self, s: Stmt) -> list[Stmt]:
        if isinstance(s, Module):
            return self.module(s)
        if isinstance(s, Line):
            return self.line(s)
        if isinstance(s, If):
            return self.branch(s)
        if isinstance(s, For):
            return self.loop(s)
        return [s]  # Local, Fail

    def module(self, s: Module) -> list[Stmt]:
        """A layer used more than once is made here, into a variable; one used once is made
        where it is applied."""
        made = self.made.get(s.attr)
        if made is None or made.var is None:
            return []
        make, name = s.make, self.layer_name(s.attr)
        if isinstance(make, Layer):
            return [Line(made.var, named(make, name))]
        if isinstance(make, Stack):
            stages = tuple(layer if suffix is None else named(layer, self.layer_name(
                f"{s.attr}.{suffix}" if suffix else s.attr))
                for layer, suffix in zip(make.layers, make.names, strict=True))
            return [Line(made.var, Call("keras.Sequential", (Seq(stages),)))]
        if isinstance(make, (Repeat, Stages)):
            raise Refused("a repeated layer applied more than once")
        callee = self.callees[_class_key(make)]
        if callee.cls.runtime:
            raise Refused("a shared block that takes a size as an argument")
        free = [f"free={_tuple(callee.free)}"] if callee.free else []
        return [Line(made.var, Call("Shared", (callee.name, *block_args(make, callee.cls),
                                               f"name={name}", *free)))]

    def line(self, s: Line) -> list[Stmt]:
        targets = [t.strip() for t in s.target.split(",")]
        attr = _applied(s.code)
        if attr is not None and isinstance(self.made[attr].module.make, (Repeat, Stages)):
            assert isinstance(s.code, Call)
            return self.repeat(targets[0], attr, s.code.args[0], s.comment)
        if len(targets) > 1 and isinstance(s.code, Op) and s.code.kind == "apply":
            # a layer with several results (LSTMCell, return_state): `data` holds their ranks
            value = self.expr(s.code, 0)
            out = [*self.flush(), Line(s.target, value.code, s.comment)]
            for target, rank in zip(targets, s.code.data, strict=True):
                self.bind(target, Value(target, FIRST, rank))
            return out
        if len(targets) > 1 and isinstance(s.code, Op):  # split, chunk: parts alike
            value = self.expr(s.code, 0)
            code, out = value.code, self.flush()
            if isinstance(code, Call) and code.args and isinstance(code.args[0], Call):
                var = self.fresh("h")  # the input computed on lines of its own
                out += [Line(t, piece) for t, piece in _unnest(var, code.args[0])]
                code = Call(code.func, (var, *code.args[1:]))
            for target in targets:
                self.bind(target, Value(target, value.layout, value.rank))
            comment = ", ".join(held(c, value.layout, value.rank) for c in _groups(s.comment))
            return [*out, Line(s.target, code, comment)]
        if len(targets) > 1:  # a block with several outputs
            assert attr is not None and isinstance(s.code, Call)
            code, outs = self.call(attr, s.code.args)
            out = [*self.flush(), Line(s.target, code, s.comment)]
            for target, (layout, rank) in zip(targets, outs, strict=True):
                self.bind(target, Value(target, layout, rank))
            return out
        value = self.expr(s.code, self.rank.get(targets[0], 0))
        out = self.flush()
        pieces = _unnest(targets[0], value.code)
        for k, (target, piece) in enumerate(pieces):
            comment = held(s.comment, value.layout, value.rank) if k == len(pieces) - 1 \
                else ""
            out.append(Line(target, piece, comment))
        self.bind(targets[0], value)
        return out

    def bind(self, var: str, v: Value) -> None:
        self.layout[var], self.rank[var] = v.layout, v.rank
        self.taken.add(var)

    def flush(self) -> list[Stmt]:
        out, self.pre = self.pre, []
        return out

    def repeat(self, target: str, attr: str, source: Expr, comment: str) -> list[Stmt]:
        """`x |> Block(c) * n`: a Python loop over the copies, each named by its index."""
        made = self.made[attr]
        if made.var is not None:
            raise Refused("a repeated layer applied more than once")
        made.applied = True
        make = made.module.make
        current = self.expr(source, 0)
        out: list[Stmt] = []

        def once(m: Expr, path: str) -> None:
            nonlocal current
            current = self.copy(m, current, path)
            out.extend([*self.flush(), Line(target, current.code)])
            current = Value(target, current.layout, current.rank)

        if isinstance(make, Stages):
            for k, m in enumerate(make.makes):
                once(m, f"{attr}[{k}]")
        else:
            assert isinstance(make, Repeat)
            m, start = make.first, ""
            if make.rest is not None:
                once(make.first, f"{attr}[0]")
                m, start = make.rest, "1, "
            var = self.loop_variable()
            carried = self.layouts_of(m, current.layout)[1]
            current = self.convert(current, carried)
            if current.code != target:
                out.extend([*self.flush(), Line(target, current.code)])
            self.loops.append(var)
            step = self.copy(m, Value(target, carried, current.rank), f"{attr}[{var}]")
            self.loops.pop()
            out.append(For(var, f"range({start}{make.count})",
                           [*self.flush(), Line(target, step.code)]))
            current = Value(target, step.layout, step.rank)
        if out and isinstance(out[-1], Line):
            out[-1] = replace(out[-1], comment=held(comment, current.layout, current.rank))
        self.bind(target, current)
        return out

    def layouts_of(self, make: Expr, layout: str) -> tuple[str, str]:
        """The layout one copy of a repeat takes its input in and leaves its result in."""
        if isinstance(make, Layer):
            want = make.kind if make.kind != "any" else layout
            return want, want
        callee = self.callees[_class_key(make)]
        return callee.inputs[0], callee.outputs[0]

    def copy(self, make: Expr, x: Value, path: str) -> Value:
        """One copy of a repeat applied to `x`."""
        if isinstance(make, Layer):
            return self.applied(make, named(make, self.layer_name(path)), [x])
        callee = self.callees[_class_key(make)]
        x = self.convert(x, callee.inputs[0])
        code = Call(callee.name, (x.code, *block_args(make, callee.cls),
                                  f"name={self.layer_name(path)}"))
        return Value(code, callee.outputs[0], callee.cls.outputs[0][1].rank)

    def branch(self, s: If) -> list[Stmt]:
        """Both branches start from the same layouts; a variable they leave in different
        layouts is transposed at the end of the `else` branch to the `then` branch's."""
        layout, rank = dict(self.layout), dict(self.rank)
        then = self.stmts(s.then)
        then_layout, then_rank = self.layout, self.rank
        self.layout, self.rank = layout, rank
        orelse = self.stmts(s.orelse)
        for var, want in then_layout.items():
            if var in self.layout and self.layout[var] != want:
                v = self.convert(Value(var, self.layout[var], self.rank[var]), want)
                orelse.append(Line(var, v.code))
        self.layout = {**self.layout, **then_layout}
        self.rank = {**self.rank, **then_rank}
        return [If(s.cond, then, orelse, s.uses)]

    def loop(self, s: For) -> list[Stmt]:
        """A variable the loop body leaves in another layout than it found it in enters the
        loop in the layout the body leaves it in (a trial run of the body tells)."""
        layout, count, taken = dict(self.layout), self.transposes, set(self.taken)
        self.loops.append(s.var)
        self.stmts(s.body)
        self.loops.pop()
        leaves = self.layout
        self.layout, self.transposes, self.taken, self.pre = layout, count, taken, []
        out: list[Stmt] = []
        for var, want in leaves.items():
            if var in layout and layout[var] != want:
                v = self.convert(Value(var, layout[var], self.rank[var]), want)
                out.append(Line(var, v.code))
                self.layout[var] = want
        self.loops.append(s.var)
        body = self.stmts(s.body)
        self.loops.pop()
        out.append(For(s.var, s.iterable, body, s.uses))
        return out


@dataclass
class Callee:
    """A function a block call goes to: its class, name, and the layouts of its tensors."""

    cls: ClassCode
    name: str
    inputs: list[str]
    outputs: list[str]
    free: tuple[tuple[int, int], ...] = ()  # (input, axis) of sizes that differ between calls


def named(make: Expr, name: str) -> Expr:
    """A layer's constructor with its `name=`."""
    assert isinstance(make, Call)
    return Call(make.func, (*make.args, f"name={name}"))


def make_rank(make: Stack) -> int:
    return 3 if "return_sequences=True" in flat(make.layers[-1]) else 2


def block_args(make: Call, cls: ClassCode) -> tuple[Expr, ...]:
    """The arguments a block's constructor took, but the input sizes (a function reads them
    from its inputs)."""
    return make.args[len(cls.sizes):]


def _class_key(make: Expr) -> int:
    assert isinstance(make, Call)
    found = re.fullmatch("\0c:([0-9]+)\0", make.func)
    assert found is not None, make
    return int(found.group(1))


def _attr(ref: str) -> str:
    found = MODULE.fullmatch(ref)
    assert found is not None, ref
    return found.group(1)


def _applied(e: Expr) -> str | None:
    """The module a call applies (`self.x(...)` in the core's terms), if it is one."""
    if isinstance(e, Call) and not isinstance(e, Op) and isinstance(e.func, str):
        found = MODULE.fullmatch(e.func)
        return found.group(1) if found else None
    return None


def _index(item: Any) -> str:
    if isinstance(item, int):
        return str(item)
    start, stop, step = item
    text = f"{'' if start is None else start}:{'' if stop is None else stop}"
    return text if step in (None, 1) else f"{text}:{step}"


def _unnest(target: str, code: Expr) -> list[tuple[str, Expr]]:
    """`y = layers.Conv2D(...)(layers.ZeroPadding2D(1)(x))` as two statements, one step
    each: a layer's input computed by a call goes on a line of its own, when nothing else in
    the statement reads `target`."""
    if isinstance(code, Call) and isinstance(code.func, Call) and code.args and \
            isinstance(code.args[0], Call) and \
            not any(target in names_in(a) for a in code.args[1:]):
        return [*_unnest(target, code.args[0]), (target, Call(code.func,
                                                              (target, *code.args[1:])))]
    return [(target, code)]


def _groups(comment: str) -> list[str]:
    """`(B, 4), (B, 2)` -> its bracketed groups."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(comment):
        depth += (ch in "([") - (ch in ")]")
        if ch == "," and depth == 0:
            out.append(comment[start:i].strip())
            start = i + 1
    return [*out, comment[start:].strip()]


def held(comment: str, layout: str, rank: int) -> str:
    """A shape comment in the layout the tensor is held in: `(B, H, W, C)`."""
    if layout != LAST or rank < 3 or not comment.startswith("("):
        return comment
    depth, start, dims = 0, 1, []
    for i, ch in enumerate(comment):
        depth += ch == "(" or ch == "["
        depth -= ch == ")" or ch == "]"
        if (ch == "," and depth == 1) or depth == 0:
            dims.append(comment[start:i].strip())
            start = i + 1
        if depth == 0:
            break
    if len(dims) != rank:
        return comment
    return f"({', '.join([dims[0], *dims[2:], dims[1]])}){comment[start:]}"


# Parameters of a layer a spec may read (`wte.weight`): the Keras attribute, and whether it is
# PyTorch's layout transposed.
WEIGHTS: dict[tuple[str, str], tuple[str, bool]] = {
    ("keras.layers.Embedding", "weight"): ("embeddings", False),
    ("PaddedEmbedding", "weight"): ("weight", False),
    ("keras.layers.Dense", "weight"): ("kernel", True),
    ("keras.layers.Dense", "bias"): ("bias", False),
    ("keras.layers.LayerNormalization", "weight"): ("gamma", False),
    ("keras.layers.LayerNormalization", "bias"): ("beta", False),
    ("PositionalEmbedding", "weight"): ("weight", False),
}
