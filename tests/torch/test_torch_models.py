"""Built models against the checker and `analyze`: shapes, parameters, FLOPs, weights, training,
the meta device and torch.compile."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_learns import RECIPES
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from torch_cases import (
    CASES,
    Case,
    bindings,
    case_graph,
    case_params,
    example_inputs,
    find,
    spec_graph,
    submodel,
)

import archdsl
from archdsl.backends.torch import build, load_state_dict, state_dict
from archdsl.graph import Graph
from archdsl.ops import REGISTRY
from archdsl.symbolic import evaluate

TORCH_DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32,
                "f64": torch.float64, "i32": torch.int32, "i64": torch.int64, "bool": torch.bool}


def built(case: Case, seed: int = 0, **options: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    return submodel(build(spec_graph(case.spec, case.params), **options), case)


def outputs(model: torch.nn.Module, xs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    out = model(*xs)
    return out if isinstance(out, tuple) else (out,)


def declared(g: Graph) -> list[tuple[tuple[int, ...], torch.dtype]]:
    values = bindings(g)
    return [(tuple(evaluate(d, values) for d in g.nodes[i].type.shape),
             TORCH_DTYPES[g.nodes[i].type.dtype]) for i in g.outputs]


@pytest.mark.parametrize("case", case_params())
def test_outputs_have_the_checkers_types(case: Case) -> None:
    g = case_graph(case)
    model = built(case).eval()
    with torch.no_grad():
        got = [(tuple(o.shape), o.dtype) for o in outputs(model, example_inputs(g))]
    assert got == declared(g)


@pytest.mark.parametrize("case", case_params(full_size=True))
def test_parameters_match_the_graph_and_analyze(case: Case) -> None:
    g = case_graph(case)
    model = built(case, device="meta")
    keys = [*g.parameters(), *g.parameters("buffer")]
    # The same keys; PyTorch lists a module's own parameters before its submodules'.
    assert sorted(model.state_dict()) == sorted(keys)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {k: p.shape for k, p in {**g.parameters(), **g.parameters("buffer")}.items()}
    report = archdsl.analyze(case.spec, model=case.model, bind=bindings(g))
    assert sum(p.numel() for p in model.parameters()) == report.total.params


@pytest.mark.parametrize("case", case_params())
def test_flops_match_analyze(case: Case) -> None:
    """FlopCounterMode sees every product except inside the fused LSTM kernel."""
    g = case_graph(case)
    values = bindings(g)
    lstm = 0
    for node in g.nodes:
        if node.op == "LSTM":
            ins = [g.nodes[i].type.with_shape([evaluate(d, values) for d in g.nodes[i].type.shape])
                   for i in node.inputs]
            out = node.type.with_shape([evaluate(d, values) for d in node.type.shape])
            lstm += REGISTRY["LSTM"].flops(node.args, ins, out).flops  # type: ignore[misc]
    model = built(case)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        outputs(model, example_inputs(g))
    report = archdsl.analyze(case.spec, model=case.model, params=dict(case.params), bind=values)
    assert counter.get_total_flops() == report.total.flops - lstm


def _loss(outs: tuple[torch.Tensor, ...], targets: list[torch.Tensor]) -> torch.Tensor:
    """Cross-entropy for logits, squared error for anything squashed or of width one; outputs
    that no parameter reaches (an input passed through) do not count."""
    total = torch.zeros(())
    for out, target in zip(outs, targets, strict=True):
        if not out.requires_grad:
            continue
        if target.dtype == torch.int64:
            total = total + F.cross_entropy(out.flatten(0, -2), target.flatten())
        else:
            total = total + F.mse_loss(out, target)
    return total


def _targets(g: Graph, outs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    squashing = {"Tanh", "tanh", "Sigmoid", "sigmoid", "Softmax", "softmax"}
    targets = []
    for i, out in zip(g.outputs, outs, strict=True):
        if g.nodes[i].op in squashing:
            # A value the squashing function reaches: squash a random pre-activation.
            target = {"Tanh": torch.tanh, "tanh": torch.tanh, "Sigmoid": torch.sigmoid,
                      "sigmoid": torch.sigmoid}.get(g.nodes[i].op, lambda t: t.softmax(-1))
            targets.append(target(torch.randn(out.shape, generator=gen)))
        elif out.dim() >= 2 and out.shape[-1] > 1:
            targets.append(torch.randint(0, out.shape[-1], out.shape[:-1], generator=gen))
        else:
            targets.append(torch.randn(out.shape, generator=gen))
    return targets


# Adam's step size; 3e-3 unless a model learns faster with another.
LEARNING_RATE = {"SequenceOps": 1e-2, "VisionOps": 1e-2, "Edge": 1e-2, "Calls": 1e-2,
                 "Discriminator": 1e-3}


# Specs with a batch of their own kind in tests/test_learns.py learn there, not on random targets.
@pytest.mark.parametrize("case", [c for c in case_params()
                                  if c.values[0].spec.stem not in {r.spec for r in RECIPES}])
def test_fifty_adam_steps_fit_one_batch(case: Case) -> None:
    g = case_graph(case)
    model = built(case).train()
    xs = example_inputs(g)
    targets = _targets(g, outputs(model, xs))
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE.get(case.model, 3e-3))
    losses = []
    for step in range(50):
        torch.manual_seed(step)  # the same dropout masks on every run
        opt.zero_grad()
        loss = _loss(outputs(model, xs), targets)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] <= 0.1 * losses[0], losses[::10]


@pytest.mark.parametrize("case", case_params(full_size=True))
def test_meta_device_allocates_nothing_and_infers_shapes(case: Case) -> None:
    g = case_graph(case)
    model = built(case, device="meta")
    assert all(t.is_meta for t in model.state_dict().values())
    xs = [x.to("meta") for x in example_inputs(g)]
    with torch.no_grad():
        got = [(tuple(o.shape), o.dtype) for o in outputs(model, xs)]
    assert got == declared(g)


@pytest.mark.parametrize("case", case_params())
def test_weights_round_trip(case: Case) -> None:
    g = case_graph(case)
    source, target = built(case, seed=1).eval(), built(case, seed=2).eval()
    weights = state_dict(source)
    assert list(weights) == list(source.state_dict())
    assert all(isinstance(v, np.ndarray) for v in weights.values())
    load_state_dict(target, weights)
    xs = example_inputs(g)
    with torch.no_grad():
        torch.manual_seed(0)  # the same draws of randn_like in both
        expected = outputs(source, xs)
        torch.manual_seed(0)
        for a, b in zip(expected, outputs(target, xs), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_weights_load_into_a_meta_model() -> None:
    case = find("Seq2Seq")
    g = case_graph(case)
    source = built(case, seed=1).eval()
    target = built(case, device="meta").eval()
    load_state_dict(target, state_dict(source))
    xs = example_inputs(g)
    with torch.no_grad():
        torch.testing.assert_close(target(*xs), source(*xs), rtol=0, atol=0)


def test_load_state_dict_names_every_problem() -> None:
    case = find("DigitsCNN")
    model = built(case)
    weights = state_dict(model)
    weights["fc2.weight"] = np.zeros((3, 3), np.float32)
    weights["extra.weight"] = np.zeros(2, np.float32)
    del weights["conv1.bias"]
    with pytest.raises(ValueError) as err:
        load_state_dict(model, weights)
    message = str(err.value)
    assert "missing 1 key(s): conv1.bias" in message
    assert "unexpected 1 key(s): extra.weight" in message
    assert "`fc2.weight` has shape (3, 3), the model expects (10, 64)" in message


def test_batchnorm_buffers_are_exported() -> None:
    case = find("ResNet20")
    weights = state_dict(built(case))
    assert weights["bn.num_batches_tracked"].dtype == np.int64
    assert weights["basic_block1.2.bn2.running_var"].shape == (16,)


def test_the_model_class_takes_other_values_of_its_parameters() -> None:
    """`DigitsCNN(classes=5)`: the generated class is written for any value."""
    case = find("DigitsCNN")
    model = build(spec_graph(case.spec))
    five = type(model)(classes=5)
    assert five(torch.zeros(2, 1, 28, 28)).shape == (2, 5)


def test_gan_builds_both_models() -> None:
    case = next(c for c in CASES if c.model == "Generator" and c.spec.stem == "digits_gan")
    gan = build(spec_graph(case.spec))
    keys = state_dict(gan)
    assert "generator.fc.weight" in keys and "discriminator.fc.weight" in keys
    z = torch.randn(2, 64)
    assert gan.discriminator(gan.generator(z)).shape == (2, 1)


# Dynamo breaks the graph around the fused recurrent modules unless told otherwise.
COMPILED = [("DigitsCNN", True), ("CharLSTM", False)]


@pytest.mark.parametrize(("model", "fullgraph"), COMPILED, ids=[m for m, _ in COMPILED])
def test_torch_compile(model: str, fullgraph: bool) -> None:
    case = find(model)
    g = case_graph(case)
    eager = built(case).eval()
    xs = example_inputs(g)
    compiled = torch.compile(eager, backend="aot_eager", fullgraph=fullgraph)
    torch.testing.assert_close(compiled(*xs), eager(*xs))
    compiled(*xs).sum().backward()
    assert all(p.grad is not None for p in eager.parameters())


def test_outputs_do_not_depend_on_batch_order() -> None:
    """Shape bookkeeping (symbolic sizes read at run time) keeps examples independent."""
    case = find("SequenceOps")
    g = case_graph(case)
    model = built(case).eval()
    xs = example_inputs(g)
    flipped = [x.flip(0) for x in xs]
    with torch.no_grad():
        for a, b in zip(outputs(model, xs), outputs(model, flipped), strict=True):
            torch.testing.assert_close(a.flip(0), b)
    assert math.prod(xs[0].shape) > 0
