"""Classes with a constructor and a `forward` (PyTorch's and the NumPy backend's layout).

`split` divides a class's statements: modules go to the constructor, computation to
`forward`, each keeping the `if`s and loops around it and the locals it reads. `Method`
lays a statement list out as indented, formatted lines, spelling each name as that method
must (`stride` in the constructor, `self.stride` in `forward`). `class_source` writes a
whole class as torchvision writes one; a target gives its tensor type and any lines its
constructor starts with.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePath

from .classes import ClassCode, Fail, For, If, Line, Local, Module, Param, Stmt
from .docs import docstring
from .lowering import TOKEN, plain, token_uses
from .pycode import INDENT, Call, Chain, Comp, Expr, Index, Seq, flat, layout, statement

CLASS_TOKEN = re.compile("\0c:([0-9]+)\0")


# ---- splitting ----------------------------------------------------------------------------------
def split(body: list[Stmt]) -> tuple[list[Stmt], list[Stmt]]:
    init = prune(_keep(body, (Module, Fail)))
    forward = prune(_keep(body, (Line, Fail)))
    return init, forward


def _keep(stmts: list[Stmt], kinds: tuple[type, ...]) -> list[Stmt]:
    out: list[Stmt] = []
    for s in stmts:
        if isinstance(s, (Local, *kinds)):
            out.append(s)
        elif isinstance(s, If):
            then, orelse = _keep(s.then, kinds), _keep(s.orelse, kinds)
            if _substantial(then) or _substantial(orelse):
                out.append(If(s.cond, then, orelse, s.uses, s.negated))
        elif isinstance(s, For):
            body = _keep(s.body, kinds)
            if _substantial(body):
                out.append(For(s.var, s.iterable, body, s.uses))
    return out


def _substantial(stmts: list[Stmt]) -> bool:
    return any(not isinstance(s, Local) for s in stmts)


def prune(stmts: list[Stmt]) -> list[Stmt]:
    """Drop locals nothing after them reads."""
    needed: set[str] = set()
    return _prune_into(stmts, needed)


def _prune_into(stmts: list[Stmt], needed: set[str]) -> list[Stmt]:
    out: list[Stmt] = []
    for s in reversed(stmts):
        if isinstance(s, Local):
            if f"l:{s.name}" in needed:
                out.append(s)
                needed |= s.uses
            continue
        if isinstance(s, If):
            then = _prune_into(s.then, needed)
            orelse = _prune_into(s.orelse, needed)
            needed |= s.uses
            out.append(If(s.cond, then, orelse, s.uses, s.negated))
        elif isinstance(s, For):  # an iteration may read what the one before assigned
            inner = needed | tokens_of(s.body)
            body = _prune_into(s.body, inner)
            needed |= inner | s.uses
            out.append(For(s.var, s.iterable, body, s.uses))
        else:
            needed |= tokens_of([s])
            out.append(s)
    return list(reversed(out))


def tokens_of(stmts: list[Stmt]) -> set[str]:
    found: set[str] = set()
    for s in stmts:
        if isinstance(s, Module):
            found |= _expr_tokens(s.make)
        elif isinstance(s, Line):
            found |= _expr_tokens(s.code) | token_uses(" ".join(s.before))
        elif isinstance(s, Local):
            found |= s.uses
        elif isinstance(s, If):
            found |= s.uses | tokens_of(s.then) | tokens_of(s.orelse)
        elif isinstance(s, For):
            found |= s.uses | tokens_of(s.body)
    return found


def _expr_tokens(e: Expr) -> frozenset[str]:
    return token_uses(flat(e))


# ---- spelling names in a method ---------------------------------------------------------------
Speller = Callable[[str, str], str]  # (kind, name) -> text


def spell(text: str, names: Speller, classes: dict[str, str]) -> str:
    text = TOKEN.sub(lambda m: names(m.group(1), m.group(2)), text)
    return CLASS_TOKEN.sub(lambda m: classes[m.group(1)], text)


def spell_expr(e: Expr, names: Speller, classes: dict[str, str]) -> Expr:
    if isinstance(e, str):
        return spell(e, names, classes)
    if isinstance(e, Call):
        func = spell(e.func, names, classes) if isinstance(e.func, str) else \
            spell_expr(e.func, names, classes)
        return Call(func, tuple(spell_expr(a, names, classes) for a in e.args))
    if isinstance(e, Seq):
        return Seq(tuple(spell_expr(a, names, classes) for a in e.items), e.open, e.close,
                   e.prefix)
    if isinstance(e, Chain):
        return Chain(tuple(spell_expr(a, names, classes) for a in e.operands), e.ops, e.level)
    if isinstance(e, Index):
        return Index(spell_expr(e.value, names, classes), spell(e.index, names, classes))
    return Comp(spell_expr(e.element, names, classes), spell(e.clause, names, classes),
                e.prefix)


def class_names(classes: list[ClassCode]) -> dict[str, str]:
    return {str(id(c)): c.name for c in classes}


# ---- laying methods out -------------------------------------------------------------------------
class Method:
    """Lines of one method body, each name spelled as this method must."""

    def __init__(self, names: Speller, classes: dict[str, str],
                 module_ref: Callable[[str], str]) -> None:
        self.names, self.classes, self.module_ref = names, classes, module_ref
        self.made: set[str] = set()  # containers already made

    def lines(self, stmts: list[Stmt], depth: int) -> list[str]:
        out: list[str] = []
        for s in stmts:
            out += self.stmt(s, depth)
        return out

    def text(self, text: str) -> str:
        return spell(text, self.names, self.classes)

    def expr(self, e: Expr) -> Expr:
        return spell_expr(e, self.names, self.classes)

    def containers(self, ensure: tuple[tuple[str, Expr], ...], depth: int,
                   loop_var: str | None = None) -> list[str]:
        """Make the containers not made yet (but those indexed by `loop_var`, which only
        exist inside that loop)."""
        out: list[str] = []
        for path, empty in ensure:
            if path in self.made or (loop_var and f"[{loop_var}]" in path):
                continue
            self.made.add(path)
            if path.endswith("]"):
                parent = path[: path.rindex("[")]
                out += statement(Call(f"{self.module_ref(parent)}.append", (empty,)),
                                 indent=depth)
            else:
                out += statement(empty, self.module_ref(path), indent=depth)
        return out

    def stmt(self, s: Stmt, depth: int) -> list[str]:
        pad = INDENT * depth
        if isinstance(s, Module):
            if s.fill is not None:
                made = self.containers(s.ensure, depth)
                return made + statement(
                    Call(f"{self.module_ref(s.fill)}.append", (self.expr(s.make),)),
                    indent=depth)
            return statement(self.expr(s.make), self.module_ref(s.attr), indent=depth)
        if isinstance(s, Line):
            before = [f"{pad}{self.text(b)}" for b in s.before]
            return before + statement(self.expr(s.code), self.text(s.target),
                                      plain(s.comment), depth)
        if isinstance(s, Local):
            return statement(self.text(s.code), s.name, indent=depth)
        if isinstance(s, Fail):
            return layout("raise ", Call("ValueError", (_quoted(s.message),)), "", depth)
        if isinstance(s, If):
            cond = self.text(s.cond)
            if not s.then:
                negated = self.text(s.negated) if s.negated else f"not ({cond})"
                return [f"{pad}if {negated}:", *self.lines(s.orelse, depth + 1)]
            lines = [f"{pad}if {cond}:", *self.lines(s.then, depth + 1)]
            if s.orelse:
                lines += [f"{pad}else:", *self.lines(s.orelse, depth + 1)]
            return lines
        assert isinstance(s, For)
        made = [ln for m in _modules(s.body) for ln in self.containers(m.ensure, depth, s.var)]
        body = self.lines(s.body, depth + 1)
        var = s.var if any(re.search(rf"\b{s.var}\b", ln) for ln in body) else "_"
        return [*made, f"{pad}for {var} in {self.text(s.iterable)}:", *body]


def _modules(stmts: list[Stmt]) -> list[Module]:
    out: list[Module] = []
    for s in stmts:
        if isinstance(s, Module):
            out.append(s)
        elif isinstance(s, If):
            out += _modules(s.then) + _modules(s.orelse)
        elif isinstance(s, For):
            out += _modules(s.body)
    return out


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- signatures ---------------------------------------------------------------------------------
def constructor_params(cls: ClassCode) -> list[str]:
    """`C: int, channels: int, stride: int = 1` (a default computed from earlier
    parameters is `None` here and set in the body)."""
    out = [f"{s}: int" for s in cls.sizes]
    for p in cls.params:
        kind = p.kind if p.late is None else f"{p.kind} | None"
        out.append(f"{p.name}: {kind}" if p.default is None else
                   f"{p.name}: {kind} = {p.default}")
    return out


def late_defaults(params: list[Param], depth: int) -> list[str]:
    pad = INDENT * depth
    out = []
    for p in params:
        if p.late is not None:
            out += [f"{pad}if {p.name} is None:",
                    f"{pad}{INDENT}{p.name} = {spell(p.late, lambda k, n: n, {})}"]
    return out

# ---- a whole class ------------------------------------------------------------------------------
def class_source(cls: ClassCode, names: dict[str, str], tensor: str,
                 preamble: list[str] | None = None) -> str:
    """`class Name(nn.Module)` with its constructor and `forward`; `tensor` annotates the
    tensors, `preamble` are lines the constructor runs after `super().__init__()`."""
    init, forward = split(cls.body)
    init, forward = optional_modules(init, forward)
    forward = prune(forward)
    stored = sorted(n for k, n in (t.split(":", 1) for t in tokens_of(forward)) if k == "p")

    def init_name(kind: str, name: str) -> str:
        return name

    def forward_name(kind: str, name: str) -> str:
        return f"self.{name}" if kind == "p" else name

    def ref(attr: str) -> str:
        return f"self.{attr}"

    lines = [f"class {cls.name}(nn.Module):", *class_doc(cls), ""]
    head = layout("def __init__", Call("", ("self", *constructor_params(cls))), " -> None:", 1)
    body = [f"{INDENT * 2}super().__init__()", *(preamble or []),
            *late_defaults(cls.params, 2)]
    body += [f"{INDENT * 2}self.{n} = {n}" for n in stored]
    body += Method(init_name, names, ref).lines(init, 2)
    lines += [*head, *body, ""]
    inputs = [f"{v}: {tensor}" for v in cls.input_vars] + [f"{n}: int" for n in cls.runtime]
    returns = tensor if len(cls.returns) == 1 else \
        f"tuple[{', '.join(tensor for _ in cls.returns)}]"
    lines += layout("def forward", Call("", ("self", *inputs)), f" -> {returns}:", 1)
    lines += size_reads(cls, forward)
    lines += Method(forward_name, names, ref).lines(forward, 2)
    lines += layout("return ", ", ".join(cls.returns), "", 2)
    return "\n".join(lines)


def class_doc(cls: ClassCode) -> list[str]:
    ins = "; ".join(f"{n} {cls.shapes[n]}" for n, _ in cls.inputs)
    outs = "; ".join(f"{n} {cls.shapes[n]}" for n, _ in cls.outputs)
    where = f" of {PurePath(cls.file).name}" if cls.file else ""
    return docstring([f"The `{cls.definition.name}` {cls.kind}{where}: {ins} -> {outs}."])


def size_reads(cls: ClassCode, forward: list[Stmt]) -> list[str]:
    """`B, _, H, W = x.shape` for the sizes `forward` reads."""
    used = {n for k, n in (t.split(":", 1) for t in tokens_of(forward)) if k == "s"}
    by_input: dict[int, dict[int, str]] = {}
    for name, (index, axis) in cls.size_reads.items():
        if name in used:
            by_input.setdefault(index, {})[axis] = name
    lines = []
    for index, axes in sorted(by_input.items()):
        var = cls.input_vars[index]
        if len(axes) == 1:
            (axis, name), = axes.items()
            lines.append(f"{INDENT * 2}{name} = {var}.shape[{axis}]")
            continue
        last = max(axes)
        targets = [axes.get(a, "_") for a in range(last + 1)]
        rank = len(dict(cls.inputs)[cls.input_names[index]].shape)
        star = ", *_" if last + 1 < rank else ""
        lines.append(f"{INDENT * 2}{', '.join(targets)}{star} = {var}.shape")
    return lines


def optional_modules(init: list[Stmt], forward: list[Stmt]) -> tuple[list[Stmt], list[Stmt]]:
    """torchvision's way with a module only some instances have: `self.shortcut = None`
    otherwise, and `forward` asks `if self.shortcut is not None:` instead of recomputing the
    condition from the parameters."""
    conditions: dict[str, str] = {}
    new_init: list[Stmt] = []
    for s in init:
        if isinstance(s, If) and s.then and not s.orelse and \
                all(isinstance(m, Module) and m.fill is None for m in s.then):
            attrs = [m.attr for m in s.then if isinstance(m, Module)]
            conditions[s.cond] = attrs[0]
            none = [Module(a, "None") for a in attrs]
            new_init.append(If(s.cond, s.then, none, s.uses))  # type: ignore[arg-type]
        else:
            new_init.append(s)
    new_forward: list[Stmt] = []
    for s in forward:
        if isinstance(s, If) and s.cond in conditions:
            cond = f"self.{conditions[s.cond]} is not None"
            new_forward.append(If(cond, s.then, s.orelse, frozenset()))
        else:
            new_forward.append(s)
    return new_init, new_forward
