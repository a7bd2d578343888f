"""Each op of LANGUAGE.md section 10 as generated, against the same computation written by
hand with torch.nn / torch.nn.functional: the oracles of test_op_costs.py, given the
generated model's weights. Forward in training mode (where the ops that draw act) under one
seed, with the FLOPs FlopCounterMode sees equal to `analyze`'s, then every gradient of one
random projection of the output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_op_costs import ROWS, B, Row, Tensors, example, spec
from test_op_costs import rotary as oracle_rotary
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import archdsl
from archdsl.backends.torch import build
from archdsl.backends.torch.layers import rotary


def drop_path(x: torch.Tensor, p: float) -> torch.Tensor:
    """timm's DropPath as written there: the draw `bernoulli_` makes."""
    keep = 1 - p
    return x * x.new_empty(x.shape[0], *[1] * (x.dim() - 1)).bernoulli_(keep).div_(keep)


# Rows whose cost oracle draws its randomness differently from the generated code.
SAME_DRAWS = {"DropPath": lambda m, t: drop_path(t["x"], 0.2)}


def _leaves(inputs: Tensors) -> Tensors:
    return {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in inputs.items()}


def _give_weights(ours: nn.Module, theirs: nn.Module | None) -> None:
    """Copy ours into theirs: both list parameters and buffers in PyTorch's order."""
    mine = ours.state_dict()
    if theirs is None:
        assert not mine
        return
    other = theirs.state_dict()
    assert [tuple(v.shape) for v in mine.values()] == [tuple(v.shape) for v in other.values()]
    for k, key in zip(mine, other, strict=True):
        assert key.isdigit() or k.endswith(f".{key}"), (k, key)
    theirs.load_state_dict(dict(zip(other, mine.values(), strict=True)))


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_generated_module_is_the_handwritten_one(row: Row) -> None:
    g = archdsl.load(spec(row)).graph(trace=True)
    torch.manual_seed(0)
    ours, theirs = build(g).train(), row.module()
    if theirs is not None:
        theirs.train()
    _give_weights(ours, theirs)
    inputs = example(g)
    mine, other = _leaves(inputs), _leaves(inputs)
    torch.manual_seed(1)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        y = ours(*mine.values())
    assert counter.get_total_flops() == archdsl.analyze(spec(row), bind={"B": B}).total.flops
    torch.manual_seed(1)
    want = SAME_DRAWS.get(row.id, row.forward)(theirs, other)
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
    if not y.requires_grad:  # made of its inputs' shape alone (`zeros_like(x) + ...`)
        return
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    mine_p = [p for p in ours.parameters()]
    other_p = [] if theirs is None else [p for p in theirs.parameters()]
    leaves = [*(v for v in mine.values() if v.requires_grad), *mine_p]
    theirs_leaves = [*(v for v in other.values() if v.requires_grad), *other_p]
    got = torch.autograd.grad((y * w).sum(), leaves, allow_unused=True)
    expected = torch.autograd.grad((want * w).sum(), theirs_leaves, allow_unused=True)
    for a, b in zip(got, expected, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def _model(body: str, inputs: str) -> nn.Module:
    torch.manual_seed(0)
    return build(archdsl.load(f"model M {{\n    {inputs}\n    {body}\n}}\n").graph(trace=True))


@pytest.mark.parametrize("layer", ["DropPath(0.3)", "Dropout1d(0.3)", "Dropout2d(0.3)"])
def test_structured_dropout_is_the_identity_in_evaluation(layer: str) -> None:
    m = _model(f"output y = x |> {layer}", "input x: [B, 3, 4, 4]" if "2d" in layer
               else "input x: [B, 3, 4]")
    x = torch.randn(8, 3, 4, 4) if "2d" in layer else torch.randn(8, 3, 4)
    assert torch.equal(m.eval()(x), x)


def test_drop_path_drops_whole_examples_and_scales_survivors() -> None:
    m = _model("output y = x |> DropPath(0.25)", "input x: [B, 3, 5]").train()
    x = torch.ones(4000, 3, 5)
    y = m(x)
    per_example = y.flatten(1)
    assert torch.equal(per_example.amin(1), per_example.amax(1))  # all or nothing
    assert set(per_example[:, 0].tolist()) == {0.0, torch.tensor(1 / 0.75).item()}
    assert abs((per_example[:, 0] == 0).float().mean().item() - 0.25) < 0.03


def test_attention_masks_hide_every_key_but_one() -> None:
    """With all keys but key 2 hidden, every query reads value 2 (through v_proj, o_proj);
    hiding every key of an example makes its queries NaN, as nn.MultiheadAttention."""
    m = _model("output y = Attention(2, kv_heads=1, causal=false)(x, key_padding_mask=m)",
               "input x: [B, 4, 6]\n    input m: bool[B, 4]").eval()
    x = torch.randn(2, 4, 6)
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[0, 2] = False
    y = m(x, mask)
    attn = m.attn
    only = attn.o_proj(attn.v_proj(x[0, 2]).repeat(2))
    torch.testing.assert_close(y[0], only.expand(4, 6), rtol=1e-5, atol=1e-6)
    assert y[1].isnan().all()


def test_grouped_query_heads_read_their_key_value_head() -> None:
    """Query head i uses key/value head i // (heads / kv_heads): with values zero except in
    key/value head 1, only query heads 2 and 3 (of 4, 2 kv heads) see anything."""
    m = _model("output y = x |> Attention(4, kv_heads=2)", "input x: [B, 3, 8]").eval()
    attn = m.attn
    with torch.no_grad():
        attn.v_proj.weight.zero_()
        attn.v_proj.weight[2:4, 2:4] = torch.eye(2)  # kv head 1 reads x[..., 2:4]
        attn.o_proj.weight.copy_(torch.eye(8))
    y = m(torch.randn(2, 3, 8))
    assert not y[..., :4].any() and y[..., 4:].abs().sum() > 0


def test_rotary_is_hugging_faces_and_relative() -> None:
    """The helper against the rotate-half oracle, and the property rotary embeddings exist
    for: the score of a query at i and a key at j depends on j - i alone."""
    x = torch.randn(2, 3, 7, 8)
    torch.testing.assert_close(rotary(x, 500.0), oracle_rotary(x, 500.0), rtol=1e-5, atol=1e-5)
    q, k = torch.randn(8), torch.randn(8)
    seq = torch.stack([q, k, q, k, q, k, q])[None, None]  # q at 0, 2, 4, 6; k at 1, 3, 5
    r = rotary(seq, 10000.0)[0, 0]
    scores = [float(r[i] @ r[i + 1]) for i in (0, 2, 4)]
    assert max(scores) - min(scores) < 1e-5
    assert abs(float(r[0] @ r[3]) - scores[0]) > 1e-3  # another distance, another score


def test_noise_replaces_the_draws_of_randn_like() -> None:
    """The k-th randn_like of each forward pass returns draws(k, shape), cast to the input's
    dtype; k restarts with every pass; outside the context the draws are torch's."""
    m = _model("a = randn_like(x)\n    output y = concat([a, randn_like(x) * 2.0], dim=1)",
               "input x: [B, 3]")
    seen: list[tuple[int, tuple[int, ...]]] = []

    def draws(k: int, shape: tuple[int, ...]) -> np.ndarray:
        seen.append((k, shape))
        return np.full(shape, k + 1.0)

    x = torch.zeros(2, 3)
    with archdsl.noise(draws):
        first, second = m(x), m(x)
    assert seen == [(0, (2, 3)), (1, (2, 3))] * 2
    want = torch.tensor([[1.0] * 3 + [4.0] * 3] * 2)
    assert torch.equal(first, want) and torch.equal(second, want)
    assert first.dtype == torch.float32
    assert not torch.equal(m(x)[:, :3], torch.ones(2, 3))
    with archdsl.noise(lambda k, shape: 1 / 0), pytest.raises(ZeroDivisionError):
        m(x)  # a failed pass leaves no draws behind
    assert not torch.equal(torch.randn_like(x), torch.ones(2, 3))


def test_generated_modules_pass_ruff(tmp_path: Path, ruff: Callable[..., Any]) -> None:
    """Every row's module, as written: lint-clean and already formatted."""
    from archdsl.backends.torch import generate
    paths = []
    for k, row in enumerate(ROWS):
        path = tmp_path / f"row{k}.py"
        path.write_text(generate(archdsl.load(spec(row)).graph(trace=True)), encoding="utf-8")
        paths.append(path)
    for command in ("check", "format"):
        out = ruff(command, paths)
        assert out.returncode == 0, out.stdout + out.stderr
