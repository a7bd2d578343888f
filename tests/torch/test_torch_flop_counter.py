"""`analyze` against the tools people already trust: for every spec, the built PyTorch
module's parameter count equals `params`, and FlopCounterMode's total (grad enabled, attention
under the MATH kernel, which is made of products it counts) plus the documented formula for
LSTM layers (whose fused kernel it cannot see) equals `flops`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import archdsl
from archdsl.backends.torch import build
from archdsl.cost import analyze_graph
from archdsl.graph import GanGraph
from archdsl.verify import make_inputs

ROOT = Path(__file__).resolve().parents[2]
# Dimension values per spec (B=1 everywhere); GPT-2 at a short context keeps the test fast.
BIND = {"gpt2_small.arch": {"T": 32}}


def cases():
    for path in sorted((ROOT / "specs").glob("*.arch")):
        g = archdsl.load(path).graph()
        for side in ([g.generator, g.discriminator] if isinstance(g, GanGraph) else [g]):
            yield pytest.param(path, side.name, id=f"{path.stem}/{side.name}")


@pytest.mark.parametrize("path,name", list(cases()))
def test_params_and_flops_match_the_built_module(path, name):
    g = archdsl.load(path).graph()
    graph = next(s for s in ([g.generator, g.discriminator] if isinstance(g, GanGraph) else [g])
                 if s.name == name)
    bind = {"B": 1, **{s: 8 for s in graph.symbols if s != "B"}, **BIND.get(path.name, {})}
    report = analyze_graph(graph, bind)
    module = build(graph)
    assert sum(p.numel() for p in module.parameters()) == report.total.params
    inputs = [torch.from_numpy(x.astype(np.float32) if x.dtype.kind == "f" else x)
              for x in make_inputs(graph, report.bind, np.random.default_rng(0))]
    module.eval()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        module(*inputs)
    lstm = sum(r.flops for r in report.layers if r.op == "LSTM")
    assert counter.get_total_flops() + lstm == report.total.flops
