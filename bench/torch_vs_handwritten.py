"""Training-step time of the generated PyTorch model against a hand-written nn.Module.

    python bench/torch_vs_handwritten.py [--quick] [--threads N]

For a ResNet (specs/resnet_block.arch), a Transformer encoder (specs/text_transformer.arch,
narrowed) and an LSTM language model (specs/char_lstm.arch): builds the generated model with
`archdsl.build(spec, backend="torch")`, loads its weights into the hand-written model of
bench/handwritten_torch.py, checks that both give the same outputs, then times a training
step (forward, cross-entropy, backward, SGD with momentum) of each, interleaved. The ratio is
hand-written time / generated time: 0.97 or more means the generated code is no slower.
"""

# ruff: noqa: E402  (the thread variables must be set before numpy and torch are imported)
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _timing import chosen, interleave, machine, options, pin_torch, print_table

OPTIONS = options(__doc__)

import numpy as np
import torch
from _inputs import describe, random_inputs, sizes
from handwritten_torch import CharLSTM, ResNet20, TextClassifier
from torch import nn

import archdsl
from archdsl.api import graph as spec_graph
from archdsl.backends.torch.training import loss_fn
from archdsl.verify import make_target

SPECS = Path(__file__).resolve().parents[1] / "specs"


@dataclass
class Case:
    name: str
    spec: str
    handwritten: type[nn.Module]
    params: dict[str, Any]
    bind: dict[str, int]
    quick_bind: dict[str, int] = field(default_factory=lambda: {"B": 2, "T": 8})


CASES = [
    Case("ResNet-20, 32x32", "resnet_block.arch", ResNet20, {"classes": 10}, {"B": 32}),
    Case("Transformer encoder", "text_transformer.arch", TextClassifier,
         {"vocab": 1000, "d_model": 128, "heads": 4, "layers": 2, "classes": 2},
         {"B": 16, "T": 64}),
    Case("char LSTM", "char_lstm.arch", CharLSTM, {"vocab": 96, "embed": 64, "hidden": 128},
         {"B": 32, "T": 64}),
]


def load_in_order(model: nn.Module, state: dict[str, np.ndarray]) -> None:
    """Load `state` into `model` by position: the i-th entry of each state dict, same shape."""
    own = model.state_dict()
    if len(own) != len(state):
        raise ValueError(f"{type(model).__name__} has {len(own)} entries, the generated "
                         f"model {len(state)}")
    loaded = {}
    for (key, mine), (theirs, value) in zip(own.items(), state.items(), strict=True):
        if tuple(mine.shape) != value.shape:
            raise ValueError(f"{key} {tuple(mine.shape)} cannot take {theirs} {value.shape}")
        loaded[key] = torch.as_tensor(value)
    model.load_state_dict(loaded)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, inputs: list[torch.Tensor],
               target: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss_fn("cross_entropy", model(*inputs), target).backward()
    opt.step()


def measure(case: Case, args: argparse.Namespace) -> list[object]:
    spec = SPECS / case.spec
    torch.manual_seed(0)
    generated = archdsl.build(spec, backend="torch", params=case.params)
    handwritten = case.handwritten(**case.params)
    load_in_order(handwritten, archdsl.state_dict(generated))

    rng = np.random.default_rng(0)
    graph = spec_graph(spec, params=case.params)
    bind = sizes(graph, case.quick_bind if args.quick else case.bind)
    inputs = [torch.from_numpy(x) for x in random_inputs(graph, bind, rng)]
    with torch.no_grad():
        outs = [m.eval()(*inputs) for m in (generated, handwritten)]
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-5)
    target = torch.from_numpy(make_target("cross_entropy", outs[0].numpy(), rng))

    steps = {}
    for side, model in (("generated", generated), ("hand-written", handwritten)):
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        steps[side] = lambda m=model, o=opt: train_step(m, o, inputs, target)
    rounds, reps, warmup = (2, 1, 1) if args.quick else (31, 1, 3)
    t = interleave(steps, rounds, reps, warmup, args.clock)
    return [case.name, describe(bind), 1e3 * t["generated"], 1e3 * t["hand-written"],
            t["hand-written"] / t["generated"]]


def main() -> None:
    pin_torch(OPTIONS.threads)
    print(f"torch {torch.__version__}; {machine(OPTIONS)}")
    rows = [measure(case, OPTIONS) for case in chosen(CASES, OPTIONS)]
    print_table(["model", "input", "generated ms/step", "hand-written ms/step", "ratio"], rows)


if __name__ == "__main__":
    main()
