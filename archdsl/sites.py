"""How unnamed layers are named: from where they are written, not from what ran.

A layer bound to a name is that name (`wte = Embedding(...)`). Every other layer is named by
its site in the definition's source, so every instance of a block names its layers alike
whatever its `if`s chose, and one generated class fits them all:

- the layers of an `if … then … else` bound once to a name are that name: `shortcut` for a
  single layer, else `shortcut.0`, `shortcut.1`, … counted in each branch (PyTorch: one
  optional `nn.Sequential`, as torchvision's `downsample`);
- any other layer is its op's stem numbered in source order (`conv1`, `bn1`, `conv2`), or the
  bare stem when the definition has one layer of that kind (`attn`); a block's stem is its
  name in snake case (`basic_block1`).

Numbers skip names the definition binds itself. A layer inside `for` or repeated with `* n`
gets the iteration after its name (`fc.0`, `fc.1`), added where it is applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from archdsl import syntax as ast
from archdsl.names import attribute_ok


def snake(name: str) -> str:
    """`BasicBlock` -> `basic_block`, `GPT2Block` -> `gpt2_block`."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return text.lower()


def site_names(defn: ast.Definition, stem_of: Callable[[str], str | None]) -> dict[int, str]:
    """`id(site node) -> base name` for every layer site of `defn`. `stem_of(name)` is the
    stem of a layer or block called `name`, or None if `name` is not one."""
    bound = bound_names(defn)
    assigned = _assignment_counts(defn.body)
    sites: list[tuple[ast.Node, str]] = []  # (site, stem) in source order
    groups: dict[int, str] = {}
    for stmt in defn.body:
        if isinstance(stmt, (ast.Assign, ast.Output)) and isinstance(stmt.value, ast.IfElse) \
                and assigned.get(stmt.name) == 1:
            branches = [list(_sites(b, stem_of, bound)) for b in _branches(stmt.value)]
            if any(branches):
                many = max(len(b) for b in branches) > 1
                for branch in branches:
                    for k, (site, _) in enumerate(branch):
                        groups[id(site)] = f"{stmt.name}.{k}" if many else stmt.name
                bound.add(stmt.name)
                continue
        sites.extend(_statement_sites(stmt, stem_of, bound))
    sites = [(site, stem if attribute_ok(stem) else f"{stem}_") for site, stem in sites]
    counts: dict[str, int] = {}
    for _, stem in sites:
        counts[stem] = counts.get(stem, 0) + 1
    names: dict[int, str] = dict(groups)
    taken = set(bound)
    next_number: dict[str, int] = {}
    for site, stem in sites:
        if counts[stem] == 1 and stem not in taken:
            name = stem
        else:
            k = next_number.get(stem, 1)
            while f"{stem}{k}" in taken:
                k += 1
            next_number[stem] = k + 1
            name = f"{stem}{k}"
        taken.add(name)
        names[id(site)] = name
    return names


def _branches(e: ast.IfElse) -> Iterator[ast.Node]:
    yield e.then
    yield e.orelse


def _statement_sites(stmt: ast.Node, stem_of: Callable[[str], str | None], bound: set[str]
                     ) -> Iterator[tuple[ast.Node, str]]:
    if isinstance(stmt, (ast.Assign, ast.Output)):
        value = stmt.value
        if isinstance(stmt, ast.Assign) and _is_layer_construction(value, stem_of, bound):
            # `name = Conv2d(...)`: the layer is `name`; only its arguments may hold sites
            args = value.left if isinstance(value, ast.BinOp) else value
            if isinstance(args, ast.Call):
                for a in (*args.args, *(k.value for k in args.kwargs)):
                    yield from _sites(a, stem_of, bound)
            return
        yield from _sites(value, stem_of, bound)
    elif isinstance(stmt, ast.For):
        for inner in stmt.body:
            yield from _statement_sites(inner, stem_of, bound)


def _is_layer_construction(e: ast.Node, stem_of: Callable[[str], str | None],
                           bound: set[str]) -> bool:
    if isinstance(e, ast.BinOp) and e.op == "*":
        return _is_layer_construction(e.left, stem_of, bound) or \
            _is_layer_construction(e.right, stem_of, bound)
    if isinstance(e, ast.Call):
        e = e.func
    return isinstance(e, ast.Name) and e.id not in bound and stem_of(e.id) is not None


def _layer_stem(e: ast.Node, stem_of: Callable[[str], str | None], bound: set[str]
                ) -> str | None:
    """The stem when `e` configures a layer class (`ReLU`, `Conv2d(...)`)."""
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Name):
        e = e.func
    if isinstance(e, ast.Name) and e.id not in bound:
        return stem_of(e.id)
    return None


def _sites(e: ast.Node | None, stem_of: Callable[[str], str | None], bound: set[str]
           ) -> Iterator[tuple[ast.Node, str]]:
    """The layer sites of an expression in evaluation order: where the elaborator configures
    a layer, keyed as it keys them (the call, the bare name, or the `L * n` of a repeat)."""
    if e is None:
        return
    if isinstance(e, ast.BinOp) and e.op == "*":
        for side, other in ((e.left, e.right), (e.right, e.left)):
            stem = _layer_stem(side, stem_of, bound)
            if stem is not None:
                if isinstance(side, ast.Call):
                    for a in (*side.args, *(k.value for k in side.kwargs)):
                        yield from _sites(a, stem_of, bound)
                yield from _sites(other, stem_of, bound)
                yield e, stem
                return
    if isinstance(e, ast.Pipeline):
        yield from _sites(e.source, stem_of, bound)
        stem = _layer_stem(e.stage, stem_of, bound)
        if isinstance(e.stage, ast.Name) and stem is not None:
            yield e.stage, stem
            return
        yield from _sites(e.stage, stem_of, bound)
        return
    if isinstance(e, ast.Call):
        stem = _layer_stem(e, stem_of, bound) if isinstance(e.func, ast.Name) else None
        if stem is None:
            yield from _sites(e.func, stem_of, bound)
        for a in (*e.args, *(k.value for k in e.kwargs)):
            yield from _sites(a, stem_of, bound)
        if stem is not None:
            yield e, stem
        return
    for child in _children(e):
        yield from _sites(child, stem_of, bound)


def _children(e: ast.Node) -> Iterator[ast.Node]:
    if isinstance(e, ast.BinOp):
        yield e.left
        yield e.right
    elif isinstance(e, ast.UnaryOp):
        yield e.operand
    elif isinstance(e, ast.IfElse):
        yield e.cond
        yield e.then
        yield e.orelse
    elif isinstance(e, (ast.TupleExpr, ast.ListExpr)):
        yield from e.items
    elif isinstance(e, ast.Index):
        yield e.value
        for item in e.items:
            if isinstance(item, ast.Slice):
                yield from (p for p in (item.start, item.stop, item.step) if p is not None)
            else:
                yield item
    elif isinstance(e, ast.Attribute):
        yield e.value
    elif isinstance(e, ast.Keyword):
        yield e.value


def bound_names(defn: ast.Definition) -> set[str]:
    """Every name the definition binds: parameters, inputs, assignments, loop variables and
    the sizes its input types name."""
    out = {p.name for p in defn.params}

    def visit(stmts: tuple[ast.Node, ...]) -> None:
        for s in stmts:
            if isinstance(s, (ast.Input, ast.Assign, ast.Output)):
                out.add(s.name)
            if isinstance(s, ast.Input):
                out.update(d.id for d in s.type.dims if isinstance(d, ast.Name))
            if isinstance(s, ast.For):
                out.add(s.var)
                visit(s.body)

    visit(defn.body)
    return out


def _assignment_counts(stmts: tuple[ast.Node, ...], inside_loop: bool = False
                       ) -> dict[str, int]:
    """How often each name is assigned; a name assigned in a loop counts as assigned twice."""
    out: dict[str, int] = {}
    for s in stmts:
        if isinstance(s, (ast.Input, ast.Assign, ast.Output)):
            out[s.name] = out.get(s.name, 0) + (2 if inside_loop else 1)
        elif isinstance(s, ast.For):
            for k, n in _assignment_counts(s.body, True).items():
                out[k] = out.get(k, 0) + n
    return out
