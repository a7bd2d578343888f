"""The PyTorch target: a spec's classes as one standalone module of `nn.Module`s.

The core (`backends/core`) writes each definition's class once; this file holds what is
PyTorch's: the lowering tables (`target.py`), containers (`nn.Sequential`, `nn.ModuleList`),
and the layout of a class, as torchvision writes one: a constructor that takes the block's
parameters and the input sizes its layers are built from, and a `forward` that reads every
other size from its inputs.
"""

from __future__ import annotations

import re

from archdsl.graph import GanGraph, Graph

from ..core.assemble import (
    Method,
    class_names,
    constructor_params,
    late_defaults,
    prune,
    split,
    tokens_of,
)
from ..core.classes import ClassCode, If, Module, Stmt
from ..core.docs import docstring, module_docstring
from ..core.emitter import OpSite
from ..core.generator import Generator, Output, Target, environment
from ..core.generator import generate as generate_with
from ..core.helpers import needed, sources
from ..core.pycode import INDENT, Call, Comp, Expr, layout
from . import target


class Torch(Target):
    name = "PyTorch"
    CONSTRUCT = target.CONSTRUCT
    FORWARD = target.FORWARD
    GLOBALS = frozenset({"torch", "nn", "F", "math", "self", "super",
                         *sources(__package__, "layers.py")})

    def as_module(self, site: OpSite) -> Expr | None:
        rule = target.AS_MODULE.get(site.op.name)
        return rule(site) if rule is not None else super().as_module(site)

    def sequential(self, makes: list[Expr]) -> Expr:
        return Call("nn.Sequential", tuple(makes))

    def repeat(self, first: Expr, rest: Expr | None, count: str, rest_count: str) -> Expr:
        if rest is None:
            return Call("nn.Sequential", (Comp(first, f"for _ in range({count})", "*"),))
        return Call("nn.Sequential", (first, Comp(rest, f"for _ in range({rest_count})", "*")))

    def container(self, kind: str) -> Expr:
        return "nn.ParameterList()" if kind == "params" else "nn.ModuleList()"

    def render(self, gen: Generator, graph: Graph | GanGraph) -> str:
        classes = gen.order  # type: ignore[attr-defined]
        names = class_names(classes)
        blocks = [_class_source(c, names) for c in classes]
        if isinstance(graph, GanGraph):
            blocks.append(_gan_source(graph, gen.roots))  # type: ignore[attr-defined]
        code = "\n\n\n".join(blocks)
        helpers = needed(code, __package__, "layers.py", target.plugin_helpers())
        text = "\n".join([*helpers, code])
        return environment(__package__).get_template("module.py.j2").render(
            docstring="\n".join(module_docstring(graph, "PyTorch")),
            math=re.search(r"\bmath\.", text) is not None,
            functional=re.search(r"\bF\.", text) is not None,
            helpers=helpers,
            classes=blocks,
        )


def _class_source(cls: ClassCode, names: dict[str, str]) -> str:
    init, forward = split(cls.body)
    init, forward = _optional_modules(init, forward)
    forward = prune(forward)
    stored = sorted(n for k, n in (t.split(":", 1) for t in tokens_of(forward)) if k == "p")

    def init_name(kind: str, name: str) -> str:
        return name

    def forward_name(kind: str, name: str) -> str:
        return f"self.{name}" if kind == "p" else name

    def ref(attr: str) -> str:
        return f"self.{attr}"

    lines = [f"class {cls.name}(nn.Module):", *cls_doc(cls), ""]
    head = layout("def __init__", Call("", ("self", *constructor_params(cls))), " -> None:", 1)
    body = [f"{INDENT * 2}super().__init__()", *late_defaults(cls.params, 2)]
    body += [f"{INDENT * 2}self.{n} = {n}" for n in stored]
    body += Method(init_name, names, ref).lines(init, 2)
    lines += [*head, *body, ""]
    inputs = [f"{v}: torch.Tensor" for v in cls.input_vars] + [f"{n}: int" for n in cls.runtime]
    returns = "torch.Tensor" if len(cls.returns) == 1 else \
        f"tuple[{', '.join('torch.Tensor' for _ in cls.returns)}]"
    lines += layout("def forward", Call("", ("self", *inputs)), f" -> {returns}:", 1)
    lines += _size_reads(cls, forward)
    lines += Method(forward_name, names, ref).lines(forward, 2)
    lines += layout("return ", ", ".join(cls.returns), "", 2)
    return "\n".join(lines)


def cls_doc(cls: ClassCode) -> list[str]:
    ins = "; ".join(f"{n} {cls.shapes[n]}" for n, _ in cls.inputs)
    outs = "; ".join(f"{n} {cls.shapes[n]}" for n, _ in cls.outputs)
    from pathlib import PurePath
    where = f" of {PurePath(cls.file).name}" if cls.file else ""
    return docstring([f"The `{cls.definition.name}` {cls.kind}{where}: {ins} -> {outs}."])


def _size_reads(cls: ClassCode, forward: list[Stmt]) -> list[str]:
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


def _optional_modules(init: list[Stmt], forward: list[Stmt]) -> tuple[list[Stmt], list[Stmt]]:
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


def _gan_source(graph: GanGraph, roots: list[ClassCode]) -> str:
    gen_cls, disc_cls = roots
    doc = docstring([f"The `{graph.name}` gan: `generator` and `discriminator`, trained with "
                     f"the {graph.loss} loss."])
    return "\n".join([
        f"class {graph.name}(nn.Module):", *doc, "",
        f"{INDENT}def __init__(self) -> None:",
        f"{INDENT * 2}super().__init__()",
        f"{INDENT * 2}self.generator = {gen_cls.name}()",
        f"{INDENT * 2}self.discriminator = {disc_cls.name}()",
    ])


TORCH = Torch()


def generate(graph: Graph | GanGraph) -> str:
    """The source of one standalone module holding every class the graph needs."""
    return generate_with(TORCH, graph).source


def render(graph: Graph | GanGraph) -> tuple[str, str]:
    """The source and the name of the class to instantiate (the model, or the gan's pair)."""
    out: Output = generate_with(TORCH, graph)
    return out.source, out.name
