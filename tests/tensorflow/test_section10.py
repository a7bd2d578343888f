"""The Keras lowerings of LANGUAGE.md section 10 beyond the conformance table: what they
refuse, attention masks against PyTorch, and sums Keras's own `ops.add` would misplace."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch

import archdsl
from archdsl.backends import tensorflow as backend
from archdsl.backends import torch as torch_backend
from archdsl.backends.tensorflow.generator import generate
from archdsl.verify import SINGLE_OP, run


def _graph(body: str):
    return archdsl.load("model M {\n" + body + "\n}\n").graph()


@pytest.mark.parametrize(("body", "what"), [
    ("    input x: [B, 2, H, W]\n    output y = x |> Upsample(scale=2)", "resampling"),
    ("    input x: [B, 2, L]\n    output y = x |> Conv1d(3, 3, padding=1, "
     "padding_mode=\"reflect\")", 'padding_mode="reflect"'),
    ("    input x: [B, 8, H, 4]\n    output y = x |> PixelShuffle(2)", "a pixel shuffle"),
])
def test_sizes_known_only_when_the_model_runs_are_refused_where_written(body: str,
                                                                        what: str) -> None:
    with pytest.raises(archdsl.SpecError) as err:
        generate(_graph(body))
    (diag,) = err.value.diagnostics
    assert diag.code == "E0901"
    assert what in diag.message and "known only when the model runs" in diag.message
    assert (diag.loc.line, diag.loc.col) == (3, 21)


MASKED = [
    "    input x: [B, 4, 6]\n    input m: bool[B, 4]\n"
    "    output y = MultiHeadAttention(2)(x, key_padding_mask=m)",
    "    input q: [B, 3, 4]\n    input kv: [B, 5, 4]\n    input m: bool[B, 5]\n"
    "    output y = MultiHeadAttention(2, causal=true)(q, kv, kv, key_padding_mask=m)",
    "    input q: [B, 3, 8]\n    input kv: [B, 5, 8]\n    input m: bool[B, 5]\n"
    "    output y = Attention(4, kv_heads=2, bias=true, rotary=true)(q, kv, kv, "
    "key_padding_mask=m)",
    "    input x: [B, 5, 8]\n    input m: bool[B, 5]\n"
    "    output y = Attention(2, causal=true)(x, key_padding_mask=m)",
]


@pytest.mark.parametrize("body", MASKED)
def test_key_padding_masks_match_pytorch(body: str) -> None:
    """Rows of the mask hide different keys; in the last row every key, which makes its
    queries NaN in both (where nothing else is)."""
    g = _graph(body)
    torch.manual_seed(0)
    reference = torch_backend.build(g).eval().double()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        model = backend.build(g)
    finally:
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")
    backend.load_state_dict(model, torch_backend.state_dict(reference))
    rng = np.random.default_rng(0)
    *tensors, tk = [g.node(i).type for i in g.inputs]
    xs = [rng.standard_normal((3, *(d for d in t.shape[1:]))) for t in tensors]
    keys = tk.shape[1]
    mask = np.zeros((3, keys), bool)
    mask[0, 1::2] = True
    mask[1, 1:] = True  # key 0 stays: every causal query sees it
    mask[2, :] = True
    want = reference(*map(torch.tensor, xs), torch.tensor(mask)).detach().numpy()
    got = np.asarray(model(*xs, mask))
    assert np.isnan(want[2]).all() and not np.isnan(want[:2]).any()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("inputs", "code"), [
    ("    input a: [B, 4, 4]\n    input b: [4, 1]", "y = b + a"),
    ("    input a: [B, 5, 5, 1]\n    input b: [5, 1]", "y = b + a"),
    ("    input a: [1, 4]\n    input b: [4, 1]", "y = a - -b"),
    ("    input a: [B, 3, 4]\n    input b: [4]", "y = a + b"),
])
def test_a_sum_keras_would_take_for_a_bias_add_broadcasts_as_written(inputs: str,
                                                                      code: str) -> None:
    """Keras 3.15's `ops.add(a, b)` adds a `b` that squeezes to a vector along a's axis 1
    or last axis, whichever has its length; broadcasting may put it elsewhere."""
    g = _graph(inputs + "\n    output y = a + b")
    assert code in generate(g)
    report = run(g, ["tensorflow"], loss="mse", tolerances=SINGLE_OP)
    assert not report.errors and all(r.ok for r in report.rows)


SAVED = {
    "image": ("    input image: [B, 3, 7, 6]\n"
              "    x = image |> Conv2d(8, 3, padding=(2, 1), padding_mode=\"reflect\")\n"
              "    x = x |> MaxPool2d(3, stride=2, ceil_mode=true)\n"
              "    x = x |> Upsample(size=(7, 5), mode=\"bicubic\") |> PixelShuffle(2)\n"
              "    output y = x |> ConvTranspose2d(4, 3, groups=2) |> Flatten",
              lambda rng: rng.standard_normal((2, 3, 7, 6)).astype("float32")),
    "tokens": ("    input tokens: i64[B, 5]\n"
               "    x = tokens |> Embedding(11, 8, padding_idx=0)\n"
               "    x = x |> Attention(4, kv_heads=2, rotary=true, causal=true)\n"
               "    x = x |> MultiHeadAttention(8)\n"
               "    out, hn = GRU(4, layers=2, return_state=true)(x)\n"
               "    h, c = LSTMCell(4)(out[:, 0])\n"
               "    output y = concat([h, c, hn[0]], dim=1)",
               lambda rng: rng.integers(0, 11, (2, 5))),
}


@pytest.mark.parametrize("name", SAVED)
def test_a_saved_model_of_section_10_layers_loads_back(name: str, tmp_path) -> None:
    """Their layers are registered with Keras and rebuild from their configs."""
    body, draw = SAVED[name]
    g = _graph(body)
    namespace: dict = {}
    exec(generate(g), namespace)  # noqa: S102
    model = namespace["M"]()
    x = draw(np.random.default_rng(0))
    before = np.asarray(model(x))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(np.asarray(loaded(x)), before)
