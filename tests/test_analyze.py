"""`analyze`: each FLOP and parameter rule against figures worked out by hand, the published
reference figures, and the JSON/API contract. Expected values are written out, not computed
by archdsl."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import archdsl

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def one_layer(input_type: str, layer: str, extra_inputs: str = "", apply: str = "") -> str:
    body = apply or f"x |> {layer}"
    return f"model M {{\n input x: {input_type}\n {extra_inputs}\n output y = {body}\n}}\n"


# (case, spec text, bind, expected params, expected flops)
RULES = [
    ("linear", one_layer("[B, 7]", "Linear(5)"), {}, 7 * 5 + 5, 2 * 7 * 5),
    ("linear over leading dims", one_layer("[B, 3, 7]", "Linear(5, bias=false)"), {"B": 2},
     35, 2 * 2 * 3 * 7 * 5),
    ("grouped dilated conv", one_layer("[B, 4, 10, 10]",
                                       "Conv2d(6, 3, dilation=2, groups=2, bias=false)"), {},
     6 * 2 * 9, 2 * (6 * 6) * 6 * 2 * 9),
    ("conv1d same stride 2", one_layer("[B, 3, 9]", "Conv1d(4, 3, stride=2, padding=\"same\")"),
     {}, 4 * 3 * 3 + 4, 2 * 5 * 4 * 3 * 3),
    ("transposed conv with output_padding",
     one_layer("[B, 4, 5, 5]", "ConvTranspose2d(3, 3, stride=2, padding=1, output_padding=1)"),
     {}, 4 * 3 * 9 + 3, 2 * 25 * 4 * 3 * 9),
    ("bidirectional 2-layer LSTM", one_layer("[B, 6, 5]", "LSTM(4, layers=2, bidirectional=true)"),
     {}, 2 * (16 * 5 + 16 * 4 + 32) + 2 * (16 * 8 + 16 * 4 + 32),
     2 * 6 * 2 * 16 * (5 + 4) + 2 * 6 * 2 * 16 * (8 + 4)),
    ("GRU", one_layer("[B, 3, 2]", "GRU(5)"), {}, 15 * 2 + 15 * 5 + 30, 3 * 2 * 15 * (2 + 5)),
    ("RNN last state", one_layer("[B, 3, 2]", "RNN(5, return_sequences=false)"), {},
     5 * 2 + 5 * 5 + 10, 3 * 2 * 5 * (2 + 5)),
    ("cross attention with kdim != qdim",
     one_layer("[B, 4, 8]", "", "input kv: [B, 6, 12]",
               "MultiHeadAttention(2)(x, kv, kv)"), {},
     64 + 96 + 96 + 24 + 64 + 8,
     2 * (4 * 8 * 8 + 6 * 12 * 8 + 6 * 12 * 8 + 4 * 8 * 8) + 4 * 4 * 6 * 8),
    ("causal self attention counts the full T x T", one_layer("[B, T, 8]",
     "MultiHeadAttention(2, causal=true)"), {"T": 5},
     3 * 64 + 24 + 64 + 8, 2 * 4 * 5 * 8 * 8 + 4 * 5 * 5 * 8),
    ("additive attention", one_layer("[B, 6]", "", "input v: [B, 4, 3]",
                                     "AdditiveAttention(5)(x, v)"), {},
     5 * 6 + 5 * 3 + 5 + 5, 2 * 6 * 5 + 2 * 4 * 3 * 5 + 2 * 4 * 5 + 2 * 4 * 3),
    ("matmul", one_layer("[B, 3, 4]", "", "input w: [4, 6]", "x @ w"), {"B": 2}, 0,
     2 * 2 * 3 * 6 * 4),
    ("shared layer counted once, applied twice",
     "model M {\n input x: [B, 4]\n l = Linear(4)\n output y = x |> l |> l\n}\n", {},
     20, 2 * 2 * 4 * 4),
    ("batchnorm has buffers, no FLOPs", one_layer("[B, 3, 4, 4]", "BatchNorm2d"), {}, 6, 0),
    ("embedding has no FLOPs", one_layer("i64[B, 9]", "Embedding(100, 8)"), {}, 800, 0),
    # ---- LANGUAGE.md section 10 ---------------------------------------------------------
    ("conv3d", one_layer("[B, 2, 4, 4, 4]", "Conv3d(3, 3, padding=1)"), {},
     3 * 2 * 27 + 3, 2 * 64 * 3 * 2 * 27),
    ("conv2d reflect padding costs as zeros",
     one_layer("[B, 2, 5, 5]", 'Conv2d(3, 3, padding=1, padding_mode="reflect")'), {},
     3 * 2 * 9 + 3, 2 * 25 * 3 * 2 * 9),
    ("transposed conv1d", one_layer("[B, 4, 6]", "ConvTranspose1d(2, 3, stride=2)"), {},
     4 * 2 * 3 + 2, 2 * 6 * 4 * 2 * 3),
    ("pools of section 10 are free",
     one_layer("[B, 2, 8, 8, 8]", "MaxPool3d(2) |> AvgPool3d(2, ceil_mode=true)"), {}, 0, 0),
    ("adaptive and global max pools are free",
     one_layer("[B, 2, 8, 8]", "AdaptiveMaxPool2d(3) |> GlobalMaxPool"), {}, 0, 0),
    ("batchnorm3d", one_layer("[B, 3, 2, 2, 2]", "BatchNorm3d"), {}, 6, 0),
    ("groupnorm", one_layer("[B, 6, 4, 4]", "GroupNorm(3)"), {}, 12, 0),
    ("instancenorm2d without affine has nothing", one_layer("[B, 6, 4, 4]", "InstanceNorm2d"),
     {}, 0, 0),
    ("instancenorm1d affine", one_layer("[B, 6, 4]", "InstanceNorm1d(affine=true)"), {}, 12, 0),
    ("layernorm without bias", one_layer("[B, 9]", "LayerNorm(bias=false)"), {}, 9, 0),
    ("rmsnorm", one_layer("[B, T, 9]", "RMSNorm"), {"T": 3}, 9, 0),
    ("prelu per channel", one_layer("[B, 5, 4]", "PReLU(num_parameters=5)"), {}, 5, 0),
    ("activations of section 10 are free",
     one_layer("[B, 9]", "ReLU6 |> Hardswish |> Hardsigmoid |> Mish |> ELU |> Softplus "
               "|> LogSoftmax |> DropPath(0.1)"), {}, 0, 0),
    ("padding and resampling are free",
     one_layer("[B, 8, 4, 4]", 'Pad((1, 1, 1, 1), mode="reflect") |> Upsample(scale=2, '
               'mode="bilinear") |> PixelShuffle(2) |> PixelUnshuffle(2) |> Dropout2d'), {},
     0, 0),
    ("rnn cell from zeros", one_layer("[B, 3]", "RNNCell(5)"), {"B": 4},
     5 * 3 + 5 * 5 + 10, 4 * 2 * 5 * (3 + 5)),
    ("gru cell without bias",
     one_layer("[B, 3]", "", "input h: [B, 5]", "GRUCell(5, bias=false)(x, h)"), {},
     15 * 3 + 15 * 5, 2 * 3 * 5 * (3 + 5)),
    ("lstm cell", one_layer("[B, 3]", "", "input h: [B, 5]\n input c: [B, 5]",
                            "LSTMCell(5)(x, h, c)[1]"), {},
     20 * 3 + 20 * 5 + 40, 2 * 4 * 5 * (3 + 5)),
    ("gru with initial state and return_state",
     one_layer("[B, 4, 3]", "", "input h: [1, B, 5]", "GRU(5, return_state=true)(x, h)[1]"),
     {}, 15 * 3 + 15 * 5 + 30, 4 * 2 * 3 * 5 * (3 + 5)),
    ("multi-head attention with a key padding mask",
     one_layer("[B, 4, 8]", "", "input m: bool[B, 4]",
               "MultiHeadAttention(2)(x, key_padding_mask=m)"), {},
     3 * 64 + 24 + 64 + 8, 2 * 4 * 4 * 8 * 8 + 4 * 4 * 4 * 8),
    # hd = 16 / 4 = 4; k and v project to 2 * 4 = 8; the full 6 x 6 scores even when causal
    ("grouped-query rotary attention",
     one_layer("[B, 6, 16]", "Attention(4, kv_heads=2, rotary=true, causal=true)"), {},
     16 * 16 + 8 * 16 + 8 * 16 + 16 * 16,
     2 * (6 * 16 * 16 + 2 * 6 * 16 * 8 + 6 * 16 * 16) + 4 * 4 * 6 * 6 * 4),
    ("cross attention with biases",
     one_layer("[B, 3, 8]", "", "input kv: [B, 5, 8]", "Attention(2, bias=true)(x, kv, kv)"),
     {}, 4 * (64 + 8), 2 * (3 * 64 + 2 * 5 * 64 + 3 * 64) + 4 * 2 * 3 * 5 * 4),
    ("embedding with a padding row", one_layer("i64[B, 9]", "Embedding(100, 8, padding_idx=0)"),
     {}, 800, 0),
    ("layer scale parameter",
     one_layer("[B, 9]", "", "", 'x * Parameter([9], init="constant", value=1e-6)'), {}, 9, 0),
    ("functions of section 10 are free",
     one_layer("[B, 6]", "", "",
               "interpolate(pad(unsqueeze(where(x > 0, exp(x), clamp(x, min=0.0)) "
               "+ amax(x, 1, keepdim=true) + var(x, 1, keepdim=true) + x ** 2 "
               "+ stack(split(x, 3, dim=1), dim=0)[0, :, 0:1], 1), (1, 1)), scale=2)"),
     {}, 0, 0),
]


@pytest.mark.parametrize("case,text,bind,params,flops", RULES, ids=[r[0] for r in RULES])
def test_rule(case, text, bind, params, flops):
    report = archdsl.analyze(text, bind=bind)
    assert report.total.params == params
    assert report.total.flops == flops
    assert report.total.macs == flops // 2


def test_batchnorm_buffers():
    report = archdsl.analyze(one_layer("[B, 3, 4, 4]", "BatchNorm2d"))
    assert report.total.buffers == 3 + 3 + 1


def test_resnet50_reference_figures():
    # torchvision resnet50 (v1.5), 1000 classes, B=1 at 224x224.
    report = archdsl.analyze(SPECS / "resnet50.arch")
    assert report.total.params == 25_557_032
    assert report.total.flops == 8_178_368_512


def test_gpt2_small_reference_figures():
    # GPT-2 small with the output projection tied to the token embedding, T=1024.
    report = archdsl.analyze(SPECS / "gpt2_small.arch", bind={"T": 1024})
    assert report.total.params == 124_439_808
    assert report.total.flops == 291_648_307_200
    attention_products = 12 * 4 * 1024 * 1024 * 768
    assert attention_products == 38_654_705_664
    projections = sum(r.flops for r in report.layers if r.op == "MultiHeadAttention") \
        - attention_products
    assert projections == 12 * 2 * 1024 * 4 * 768 * 768


def test_set_and_bind():
    # TextClassifier: embedding 10000x256, per layer 789,760, classifier 514.
    report = archdsl.analyze(SPECS / "text_transformer.arch", params={"layers": 2},
                             bind={"T": 16, "B": 3})
    assert report.total.params == 10_000 * 256 + 2 * 789_760 + 514
    assert report.bind == {"B": 3, "T": 16}
    assert report.params["layers"] == 2


def test_unbound_symbol_is_a_clear_error():
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.analyze(SPECS / "char_lstm.arch")
    assert err.value.codes == ["E0405"]
    assert "T" in str(err.value) and "--bind T=" in str(err.value)


def test_training_memory_counts_adam_state():
    report = archdsl.analyze(one_layer("[B, 7]", "Linear(5)"), train=True)
    m = report.train
    assert m is not None and m.optimizer == "Adam"
    assert m.weights == 40 * 4 and m.gradients == 40 * 4 and m.optimizer_state == 2 * 40 * 4
    assert m.total == m.weights + m.gradients + m.optimizer_state + m.activations


def test_json_output_equals_api_model_dump(tmp_path):
    out = subprocess.run([sys.executable, "-m", "archdsl.cli", "analyze",
                          str(SPECS / "resnet_block.arch"), "--format", "json"],
                         capture_output=True, text=True, check=True)
    api = archdsl.analyze(SPECS / "resnet_block.arch").model_dump()
    assert json.loads(out.stdout) == api
    assert set(api) == {"model", "bind", "params", "total", "layers", "blocks"}
    assert set(api["total"]) == {"params", "trainable_params", "buffers", "flops", "macs",
                                 "other_flops", "param_bytes", "activation_bytes"}
    assert set(api["layers"][0]) == {"path", "op", "args", "input_shapes", "output_shape",
                                     "params", "flops"}


def test_gpt3_sized_spec_is_exact_arithmetic():
    # 96 layers, d=12288, T=2048: parameters and FLOPs follow the closed forms exactly.
    report = archdsl.analyze(SPECS / "gpt2_small.arch", bind={"T": 2048},
                             params={"layers": 96, "d": 12288, "heads": 96, "context": 2048})
    d, v, t = 12288, 50257, 2048
    norms, attn = 2 * 2 * d, (3 * d * d + 3 * d) + (d * d + d)
    per_layer = norms + attn + (4 * d * d + 4 * d) + (4 * d * d + d)
    assert report.total.params == v * d + t * d + 96 * per_layer + 2 * d
    linear = 96 * 2 * t * 12 * d * d
    attention = 96 * 4 * t * t * d
    assert report.total.flops == linear + attention + 2 * t * d * v


DRAFTS = [
    # (spec in specs/drafts, published or architecture-derived parameter count, source)
    ("mobilenet_v3_small.arch", 2_542_856),  # torchvision's mobilenet_v3_small model card
    ("llama_decoder.arch", 1_100_048_384),  # TinyLlama-1.1B's configuration and weights
    ("cyclegan_generator.arch", 11_378_179),  # pytorch-CycleGAN-and-pix2pix: 11.378 M
    ("vae.arch", 652_824),  # pytorch/examples vae/main.py: 784-400-20-400-784
]


@pytest.mark.parametrize("name,params", DRAFTS, ids=[d[0] for d in DRAFTS])
def test_section_10_drafts_reference_figures(name, params):
    """Drafts of issue 15's specs, built from section 10's layers, count what their sources
    publish (each source is named in the spec's comment)."""
    report = archdsl.analyze(SPECS / "drafts" / name, bind={"T": 16} if "llama" in name else {})
    assert report.total.params == params


TABLE_CASES = [
    # (spec, bind, collapse depth): tables of plain rows, collapsed blocks and none at all
    ("resnet50.arch", {}, 1), ("resnet_block.arch", {}, None), ("resnet_block.arch", {}, 0),
    ("gpt2_small.arch", {"T": 16}, 2), ("char_lstm.arch", {"T": 16}, None),
]


@pytest.mark.parametrize("spec,bind,depth", TABLE_CASES)
def test_table_writer_prints_what_rich_prints(spec, bind, depth):
    """`analyze`'s table is written without rich when rich would print its cells unchanged;
    the bytes are rich's, at the same console width."""
    from archdsl import cost
    from archdsl.text_table import lay_out

    report = archdsl.analyze(SPECS / spec, bind=bind, train=True)
    rows = cost.collapse(report, depth)
    header = ["layer", "op", "args", "input", "output", "params", "FLOPs", "share"]
    body = [[r.path, r.op, cost.row_args(r), str(r.input_shapes), str(r.output_shape),
             str(r.params), str(r.flops), "1%"] for r in rows]
    footer = ["total", "", "", "", "", "9", "9", "100%"]
    width = 200
    table = lay_out("M (B=1)", header, [i >= 5 for i in range(8)], body, footer, width)
    assert table is not None
    assert table == cost._rich_table("M (B=1)", header, body, footer, [], width)


@pytest.mark.parametrize("cell", ["[bold]x[/]", ":smile: it", "a\\b", "naïve", "x" * 300])
def test_table_writer_leaves_to_rich_what_rich_would_change(cell):
    """Markup, emoji codes, escapes, text beyond ASCII and a row wider than the console are
    rich's to lay out: the direct writer declines them."""
    from archdsl.text_table import lay_out

    header, footer = ["layer", "op"], ["total", ""]
    assert lay_out("M", header, [False, False], [["a", "b"]], footer, 120) is not None
    assert lay_out("M", header, [False, False], [[cell, "b"]], footer, 120) is None
