"""Elaboration: a definition's statements, with concrete parameters, become a typed `Graph`.

Every shape rule runs here (through the op registry), every `assert` and declared shape is
proved or reported, and `if`/`for` are decided and unrolled. A failing statement reports once
and poisons the names it binds, so later statements that use them stay quiet while
independent statements are still checked: one run reports every independent error.

The stages, each in its module: `frames` (the state: file scopes, the graph being built, a
definition instance), `evaluator` (expressions), `layers` (configuring and applying layers
and blocks), `declarations` (inputs and declared shapes), `elaborator` (statements and loops,
the entry point), `scalars` (number, string and size arithmetic), `training` (a `train`
section) and `gan_pairing` (a gan's two models against each other).
"""

from archdsl.elaborate.elaborator import Elaborator
from archdsl.elaborate.frames import FileScope, Frame, GraphBuilder
from archdsl.elaborate.gan_pairing import check_gan_pairing

__all__ = ["Elaborator", "FileScope", "Frame", "GraphBuilder", "check_gan_pairing"]
