"""The exported model's structure (names, opset, symbolic sizes), refusals, the runtime
wrapper's contract and the rule that nothing on this path imports a framework."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import archdsl
from archdsl.backends import onnx as ob
from archdsl.backends.onnx.lowering import LOWER
from archdsl.draws import noise
from archdsl.weights import WeightsError

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"


def exported(source: Path | str, **params: int) -> tuple[archdsl.Graph, onnx.ModelProto]:
    g = archdsl.load(source).graph(params=params or None)
    return g, ob.export(g)


def test_nodes_and_weights_are_named_by_the_spec() -> None:
    g, model = exported(SPECS / "resnet_block.arch")
    nodes = {n.name for n in model.graph.node}
    layers = {path for path, layer in g.layers.items() if layer.params}
    assert layers <= nodes, sorted(layers - nodes)
    weights = {t.name for t in model.graph.initializer}
    used = {*g.parameters()} | {k for k, p in g.parameters("buffer").items()
                                if p.dtype != "i64"}  # BatchNorm's step count is for training
    assert used <= weights, sorted(used - weights)
    # everything else is a constant of some node, named under it
    assert all("/" in name for name in weights - used)
    assert [i.name for i in model.graph.input] == g.input_names
    assert [o.name for o in model.graph.output] == g.output_names
    assert (model.opset_import[0].domain, model.opset_import[0].version) == ("", ob.OPSET)
    assert ob.OPSET >= 17 and model.ir_version == 8
    assert model.producer_name == "archdsl"


def test_a_node_tells_where_the_spec_wrote_it() -> None:
    g, model = exported(SPECS / "cnn_digits.arch")
    (conv,) = [n for n in model.graph.node if n.name == g.nodes[1].layer]
    assert conv.op_type == "Conv"
    assert conv.doc_string == str(g.nodes[1].loc)


def test_symbolic_sizes_stay_symbolic() -> None:
    _, model = exported(ROOT / "tests" / "onnx" / "specs" / "symbolic_sizes.arch")

    def dims(v: onnx.ValueInfoProto) -> list[int | str]:
        return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

    assert [dims(v) for v in model.graph.input] == [["B", "T", 4], ["B", 2, "L"]]
    assert [dims(v) for v in model.graph.output] == [["B", "2*T", 4], ["B", "2*T - 1", 2],
                                                     ["3*B", "(L + 1)//2"]]


def test_a_shared_recurrent_layer_converts_its_weights_once() -> None:
    text = ("model M() {\n    input x: [B, T, 3]\n    rnn = LSTM(4)\n"
            "    output y = (x |> rnn) + (x |> rnn)\n}\n")
    _, model = exported(text)
    assert sum(n.op_type == "LSTM" for n in model.graph.node) == 2
    assert sum(n.op_type == "Gather" for n in model.graph.node) == 4  # W, R, two biases


def test_dead_branches_leave_no_weights() -> None:
    text = ("model M() {\n    input x: [B, 4]\n    unused = x |> Linear(3)\n"
            "    output y = x |> Linear(2)\n}\n")
    g, model = exported(text)
    live = g.layers[g.node(g.outputs[0]).layer]
    assert {t.name for t in model.graph.initializer} == {live.key(p) for p in live.params}
    assert len(model.graph.node) == 1


# ---- refusals -------------------------------------------------------------------------------
def refusal(text: str) -> archdsl.Diagnostic:
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.compile(text, backend="onnx")
    (diag,) = err.value.diagnostics
    assert diag.code == "E0901"
    return diag


def test_an_op_without_a_rule_is_refused_where_the_spec_uses_it(monkeypatch) -> None:
    monkeypatch.delitem(LOWER, "GELU")
    diag = refusal("model M() {\n    input x: [B, 4]\n    output y = x |> GELU\n}\n")
    assert "no lowering for `GELU`" in diag.message and diag.loc.line == 3


def test_boolean_sum_and_product_are_logical() -> None:
    text = ("model M() {\n    input a: bool[B, 4]\n    input b: bool[B, 4]\n"
            "    output y = a + b\n    output z = a * b\n}\n")
    model = archdsl.build(text, "onnx")
    a, b = np.array([[1, 1, 0, 0]], bool), np.array([[1, 0, 1, 0]], bool)
    y, z = model(a, b)
    np.testing.assert_array_equal(y, a | b)
    np.testing.assert_array_equal(z, a & b)


def test_resampling_onnx_runtime_would_change_is_refused_where_the_spec_asks_it() -> None:
    """With a scale between 1 and 1.5 a small image keeps its size, which ONNX Runtime's
    Resize then copies while PyTorch's bicubic resamples it."""
    diag = refusal("model M() {\n    input x: [B, 2, H, W]\n"
                   "    output y = x |> Upsample(scale=1.25, mode=\"bicubic\")\n}\n")
    assert diag.loc.line == 3 and "ONNX Runtime's Resize then copies" in diag.label
    diag = refusal("model M() {\n    input x: [B, 2, 90]\n"
                   "    output y = interpolate(x, scale=1.3, mode=\"linear\")\n}\n")
    assert "116 cells with a float32 scale, PyTorch 117" in diag.label


# ---- randn_like ----------------------------------------------------------------------------
SAMPLES = ("model M() {\n    input x: [B, 4]\n    unused = randn_like(x)\n"
           "    output y = x + randn_like(x * 2.0)\n}\n")


def test_a_deployed_model_draws_fresh_standard_normal_noise() -> None:
    data = archdsl.compile(SAMPLES, backend="onnx")
    model = onnx.load_from_string(data)
    assert [n.op_type for n in model.graph.node].count("RandomNormalLike") == 1  # the live one
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = np.zeros((2000, 4), np.float32)
    first, second = (session.run(None, {"x": x})[0] for _ in range(2))
    assert not np.allclose(first, second)
    assert abs(first.mean()) < 0.1 and abs(first.std() - 1) < 0.1


def test_archdsl_noise_feeds_the_kth_draw_of_every_forward_pass() -> None:
    """The dead draw counts (k = 0), as the PyTorch build evaluates it; k restarts with every
    call; outside the context the model draws its own."""
    model = archdsl.build(SAMPLES, "onnx")
    x = np.ones((3, 4), np.float32)
    with noise(lambda k, shape: np.full(shape, 10.0 * k)):
        np.testing.assert_array_equal(model(x), np.full((3, 4), 11.0))
        np.testing.assert_array_equal(model(x), np.full((3, 4), 11.0))
    assert not np.allclose(model(x), 11.0)
    onnx.checker.check_model(model.export(noise_inputs=True), full_check=True)


def test_a_gan_is_refused_with_the_models_to_choose() -> None:
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.compile(SPECS / "digits_gan.arch", backend="onnx")
    (diag,) = err.value.diagnostics
    assert diag.code == "E0901" and diag.hint == "export one of them: --model Generator"
    assert "gan DigitsGAN" in err.value.render()


# ---- the runtime wrapper ----------------------------------------------------------------------
def test_build_draws_the_weights_the_numpy_build_draws() -> None:
    spec = SPECS / "resnet_block.arch"
    ours = archdsl.state_dict(archdsl.build(spec, "onnx"))
    theirs = archdsl.state_dict(archdsl.build(spec, "numpy"))
    assert list(ours) == list(theirs)
    for k in ours:
        np.testing.assert_array_equal(ours[k], theirs[k], err_msg=k)


def test_weights_round_trip_and_change_the_outputs() -> None:
    spec = SPECS / "char_lstm.arch"
    a, b = archdsl.build(spec, "onnx"), ob.build(archdsl.load(spec).graph(), seed=1)
    tokens = np.random.default_rng(0).integers(0, 96, (2, 7))
    assert not np.allclose(a(tokens), b(tokens))
    archdsl.load_state_dict(b, archdsl.state_dict(a))
    np.testing.assert_array_equal(a(tokens), b(tokens))


def test_loaded_weights_keep_pytorchs_shapes_and_dtypes() -> None:
    """BatchNorm's step count is a 0-d int64, and stays one through a load."""
    model = archdsl.build(SPECS / "resnet_block.arch", "onnx")
    archdsl.load_state_dict(model, archdsl.state_dict(archdsl.build(SPECS / "resnet_block.arch",
                                                                    "torch")))
    specs = {**model.graph.parameters(), **model.graph.parameters("buffer")}
    got = archdsl.state_dict(model)
    assert {k: (v.shape, v.dtype.kind) for k, v in got.items()} == {
        k: (p.shape, "f" if p.dtype == "f32" else "i") for k, p in specs.items()}


def test_load_state_dict_names_every_problem() -> None:
    model = archdsl.build(SPECS / "cnn_digits.arch", "onnx")
    g = model.graph
    state = archdsl.state_dict(model)
    first, second = list(g.parameters())[:2]
    del state[first]
    state[second] = np.zeros((3, 3), np.float32)
    state["extra.weight"] = np.zeros(2, np.float32)
    with pytest.raises(WeightsError) as err:
        archdsl.load_state_dict(model, state)
    message = str(err.value)
    assert f"missing keys: {first}" in message
    assert "unexpected keys: extra.weight" in message
    assert f"{second}: expected {list(g.parameters()[second].shape)}, got [3, 3]" in message


def test_inputs_are_checked_before_they_reach_the_runtime() -> None:
    model = archdsl.build(SPECS / "cnn_digits.arch", "onnx")
    with pytest.raises(TypeError, match=r"takes 1 inputs \(image\), got 2"):
        model(np.zeros((1, 1, 28, 28)), np.zeros(1))
    with pytest.raises(ValueError, match=r"`image` must have shape \[B, 1, 28, 28\], got "
                                         r"\[2, 1, 27, 28\]"):
        model(np.zeros((2, 1, 27, 28)))
    assert model(np.zeros((2, 1, 28, 28), np.float64)).shape == (2, 10)  # cast to f32
    with pytest.raises(ValueError, match="inference only"):
        model.train()
    assert model.eval() is model


def test_a_gan_builds_as_two_models() -> None:
    gan = archdsl.build(SPECS / "digits_gan.arch", "onnx")
    images = gan.generator(np.random.default_rng(0).normal(size=(3, 64)))
    assert images.shape == (3, 1, 16, 16)
    assert gan.discriminator(images).shape == (3, 1)


def test_compile_returns_the_bytes_of_the_model() -> None:
    data = archdsl.compile(SPECS / "cnn_digits.arch", backend="onnx")
    assert isinstance(data, bytes)
    assert onnx.load_from_string(data).graph.name == "DigitsCNN"


# ---- no framework on this path ------------------------------------------------------------------
NO_FRAMEWORK = """
import sys
import numpy as np
import archdsl
data = archdsl.compile(sys.argv[1], backend="onnx")
model = archdsl.build(sys.argv[1], "onnx")
archdsl.load_state_dict(model, archdsl.state_dict(model))
model(np.zeros((2, 1, 28, 28), np.float32))
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "tensorflow",
                                                                    "keras", "jax"))))
"""


def test_export_and_inference_import_no_framework(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", NO_FRAMEWORK, str(SPECS / "cnn_digits.arch")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""
