"""How each op of the language becomes ONNX: one rule table keyed by op, `LOWER`.

`LOWER[op](site)` emits the nodes that compute one node of the typed graph and returns the
name of the value holding its result (a list of them for a multi-output op). The rules live
in `rules/<family>.py`, one module per op family; `site.py` says what a rule sees.
Parameters are read under their state-dict keys, in PyTorch's layout; where ONNX wants
another layout (a transposed `Linear` weight, recurrent gates in ONNX's order) the rule
converts it with nodes, which runtimes fold once at load. A rule that meets a case ONNX
cannot express exactly raises `Refusal` with the reason; an op missing from the table is a
gap the generator reports (E0901) with the node's location.
"""

from __future__ import annotations

from archdsl.ops import plugin

from .rules import (
    activation,
    attention,
    conv,
    dense,
    elementwise,
    norm,
    pool,
    recurrent,
    reduce,
    resample,
    shape,
)
from .site import Refusal, Rule, Site

LOWER: dict[str, Rule] = {
    **dense.RULES, **conv.RULES, **pool.RULES, **norm.RULES, **recurrent.RULES,
    **attention.RULES, **activation.RULES, **resample.RULES, **shape.RULES, **reduce.RULES,
    **elementwise.RULES,
}

# A plugin op's rule (archdsl.ops.plugin.lower(op, "onnx", lower=rule)) joins them.
PLUGIN_TABLES = {"lower": LOWER}
plugin.install("onnx", PLUGIN_TABLES)

__all__ = ["LOWER", "Refusal", "Rule", "Site"]
