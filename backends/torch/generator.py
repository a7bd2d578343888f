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

from ..core.assemble import class_names, class_source
from ..core.classes import ClassCode
from ..core.docs import docstring, module_docstring
from ..core.generator import Generator, Output, TorchContainers, environment
from ..core.generator import generate as generate_with
from ..core.helpers import needed, sources
from ..core.lowering import OpSite
from ..core.pycode import INDENT, Expr
from . import target


class Torch(TorchContainers):
    name = "PyTorch"
    CONSTRUCT = target.CONSTRUCT
    FORWARD = target.FORWARD
    GLOBALS = frozenset({"torch", "nn", "F", "math", "self", "super",
                         *sources(__package__, "layers.py")})

    def as_module(self, site: OpSite) -> Expr | None:
        rule = target.AS_MODULE.get(site.op.name)
        return rule(site) if rule is not None else super().as_module(site)

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
    return class_source(cls, names, "torch.Tensor")


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
