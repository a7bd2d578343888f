"""The generated module: lint-clean, formatted, standalone, deterministic, in Keras's
functional style; and the API around it."""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import keras
import numpy as np
import pytest
from tf_cases import SPECS
from typer.testing import CliRunner

import archdsl
from archdsl.backends import tensorflow as backend
from archdsl.backends.tensorflow.generator import generate
from archdsl.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_byte_identical_across_processes() -> None:
    """Two interpreters with different hash seeds write the same bytes."""
    script = ("import sys, archdsl; from archdsl.backends.tensorflow import generate; "
              "sys.stdout.write(generate(archdsl.load(sys.argv[1]).graph()))")
    spec = str(next(s.path for s in SPECS if s.path.stem == "seq2seq_transformer"))
    outs = {subprocess.run([sys.executable, "-c", script, spec], capture_output=True,
                           text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2")}
    assert len(outs) == 1
    assert outs == {generate(archdsl.load(spec).graph())}


def _functions(source: str) -> list[str]:
    return [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]


def test_one_function_per_block_definition() -> None:
    """ResNet-20 and ResNet-50: one function per block (whatever its stride or width) and
    one building the model; repeats are loops over copies named by their index."""
    for spec, expected in (("resnet_block", ["basic_block", "ResNet20"]),
                           ("resnet50", ["bottleneck", "ResNet50"])):
        source = generate(archdsl.load(ROOT / "specs" / f"{spec}.arch").graph())
        assert _functions(source) == expected
    assert '    for i in range(5):\n        x = bottleneck(x, 256, name=f"bottleneck5.{i}")' \
        in source


def test_resnet20_reads_like_keras_applications() -> None:
    source = generate(archdsl.load(ROOT / "specs" / "resnet_block.arch").graph())
    assert "def basic_block(x, channels: int, stride: int = 1, name: str = \"basic_block\"):" \
        in source
    assert "    for i in range(3):\n        x = basic_block(x, 16, name=f\"basic_block1.{i}\")" \
        in source
    assert "if stride != 1 or C != channels:" in source
    assert "return keras.Model(image, logits, name=name)" in source
    assert "class " not in source.split("def basic_block")[1]  # functions, no subclasses


def test_a_model_takes_its_own_parameters() -> None:
    """`DigitsCNN(classes=5)` builds a model of 5 classes: sizes are computed, not pasted."""
    namespace: dict = {}
    exec(generate(archdsl.load(ROOT / "specs" / "cnn_digits.arch").graph()), namespace)  # noqa: S102
    model = namespace["DigitsCNN"](classes=5)
    assert model.output_shape == (None, 5)
    assert np.asarray(model(np.zeros((3, 1, 28, 28), "float32"))).shape == (3, 5)


def _weighted(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.weights]


def test_summary_lists_every_layer_with_its_shape() -> None:
    model = backend.build(archdsl.load(ROOT / "specs" / "resnet_block.arch").graph())
    out = io.StringIO()
    with redirect_stdout(out):
        model.summary(line_length=200)
    rows = [line for line in out.getvalue().splitlines() if re.match(r"│ \S", line)]
    layers = {line.split()[1] for line in rows}
    names = {layer.name for layer in _weighted(model)}
    assert names <= layers and len(names) == 1 + 1 + 9 * 4 + 2 * 2 + 1  # conv, bn, blocks, fc
    for line in rows:
        shape = re.search(r"\(None(, \d+)*\)", line)
        assert shape is not None and "?" not in line, line


def test_plot_model_draws_every_layer(tmp_path: Path) -> None:
    """Needs pydot and Graphviz's `dot` (CI installs graphviz): missing, this fails."""
    model = backend.build(archdsl.load(ROOT / "specs" / "resnet_block.arch").graph())
    dot = keras.utils.model_to_dot(model, show_shapes=True, show_layer_names=True)
    labels = " ".join(str(node.get("label")) for node in dot.get_nodes())
    for layer in _weighted(model):
        assert layer.name in labels
    keras.utils.plot_model(model, to_file=str(tmp_path / "resnet20.png"), show_shapes=True)
    assert (tmp_path / "resnet20.png").stat().st_size > 10_000


# A transpose only where the spec's channels-first layout shows: the model's image inputs,
# a flatten, a reshape, the outputs (docs/codegen.md, the layout pass).
TRANSPOSES = {"resnet_block": 1, "resnet50": 1, "cnn_digits": 2, "digits_gan": 4,
              "char_lstm": 0, "text_transformer": 0, "gpt2_small": 1}


@pytest.mark.parametrize(("spec", "count"), TRANSPOSES.items())
def test_transposes_only_where_the_layout_shows(spec: str, count: int) -> None:
    source = generate(archdsl.load(ROOT / "specs" / f"{spec}.arch").graph())
    assert source.count("keras.ops.transpose(") == count


def test_public_api_round_trips_weights() -> None:
    path = ROOT / "specs" / "cnn_digits.arch"
    model = archdsl.build(path, backend="tensorflow")
    state = archdsl.state_dict(model)
    other = archdsl.build(path, backend="tensorflow")
    archdsl.load_state_dict(other, state)
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(other(x)))


def test_load_state_dict_names_every_problem() -> None:
    g = archdsl.load(ROOT / "specs" / "cnn_digits.arch").graph()
    model = backend.build(g)
    state = backend.state_dict(model)
    first, *_, last = g.parameters()
    state.pop(first)
    state["nowhere.weight"] = np.zeros(3)
    state[last] = np.zeros((3, 3))
    with pytest.raises(ValueError) as err:
        backend.load_state_dict(model, state)
    message = str(err.value)
    want = list(g.parameters()[last].shape)
    for part in (f"missing key {first!r}", "unexpected key 'nowhere.weight'",
                 f"{last!r} has shape [3, 3], the model needs {want}"):
        assert part in message


@pytest.mark.parametrize(("spec", "params", "inputs"), [
    ("resnet_block.arch", None, [("float32", (2, 3, 32, 32))]),
    ("seq2seq_transformer.arch",  # two inputs: a `MultiInputModel`
     {"src_vocab": 20, "tgt_vocab": 20, "d_model": 16, "heads": 2, "layers": 1},
     [("int64", (2, 5)), ("int64", (2, 4))]),
])
def test_keras_saves_and_loads_the_model(tmp_path: Path, spec: str, params: dict | None,
                                         inputs: list) -> None:
    """A `.keras` file of a generated model loads back once its module is imported (its
    layers and model class are registered)."""
    g = archdsl.load(ROOT / "specs" / spec).graph(params=params)
    namespace: dict = {}
    exec(generate(g), namespace)  # noqa: S102
    model = namespace[g.name]()
    rng = np.random.default_rng(0)
    xs = [rng.integers(0, 20, shape) if dtype == "int64" else
          rng.standard_normal(shape).astype(dtype) for dtype, shape in inputs]
    before = np.asarray(model(*xs))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(np.asarray(loaded(*xs)), before)


def test_a_block_given_one_tensor_twice() -> None:
    g = archdsl.load("""
block Pair(w: int) {
    input a: [B, w]
    input b: [B, w]
    output y = (a |> Linear(w)) * b
}
model Twice {
    input x: [B, 4]
    output y = Pair(4)(x, x)
}
""").graph()
    model = backend.build(g)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    state = backend.state_dict(model)
    weight, bias = (state[k] for k in g.parameters())
    np.testing.assert_allclose(np.asarray(model(x)), (x @ weight.T + bias) * x, rtol=1e-6)


# One block instance called on inputs of different widths, whose code decides by the width:
# Keras builds a shared block once, so it cannot take both branches.
SHARED_PICK = """
block Pick() {
    input x: [B, C]
    output y = if C == 4 then x * 2.0 else x |> Tanh
}
model M() {
    input a: [B, 4]
    input b: [B, 6]
    p = Pick()
    output y = concat([p(a), p(b)], dim=1)
}
"""


def test_a_shared_block_must_fit_every_call() -> None:
    """A shared block is one Keras model for every call: its code must fit them all."""
    fits = archdsl.load("""
block Squash() {
    input x: [B, C]
    output y = x * 2.0 |> Tanh
}
model M() {
    input a: [B, 4]
    input b: [B, 6]
    s = Squash()
    output y = concat([s(a), s(b)], dim=1)
}
""").graph()
    source = generate(fits)
    assert _functions(source) == ["squash", "M"]
    assert "s = Shared(squash, name=\"s\", free=((0, 1),))" in source
    assert "s(a)" in source and "s(b)" in source
    y = backend.build(fits)(np.ones((2, 4), "float32"), np.ones((2, 6), "float32"))
    np.testing.assert_allclose(np.asarray(y), np.tanh(2.0) * np.ones((2, 10)), rtol=1e-6)
    refused = archdsl.load(SHARED_PICK).graph()
    with pytest.raises(archdsl.SpecError) as err:
        generate(refused)
    (diag,) = err.value.diagnostics
    assert diag.code == "E0901" and "shared block" in diag.message and diag.loc.line == 4


def test_a_refusal_quotes_the_spec_through_the_api_and_the_cli(tmp_path: Path) -> None:
    """archdsl.compile, archdsl.build and `archdsl compile` show the refused line underlined,
    as for any other spec error."""
    spec = tmp_path / "pick.arch"
    spec.write_text(SHARED_PICK, encoding="utf-8")
    line = "    output y = if C == 4 then x * 2.0 else x |> Tanh"
    for call in (archdsl.compile, archdsl.build):
        with pytest.raises(archdsl.SpecError) as err:
            call(spec, backend="tensorflow")
        assert f"{line}\n" in str(err.value) and "^^^^" in str(err.value)
    result = CliRunner().invoke(app, ["compile", str(spec), "--backend", "tensorflow"])
    assert result.exit_code == 1 and f"{line}\n" in result.output, result.output


def test_the_sum_of_integers_is_int64() -> None:
    """As torch.sum: int32 and bool tensors sum to int64."""
    g = archdsl.load("""
model Count {
    input n: i32[B, 3]
    input m: bool[B, 3]
    output a = sum(n, dim=1)
    output b = sum(m)
}
""").graph()
    a, b = (np.asarray(y) for y in backend.build(g)(np.ones((2, 3), "int32"),
                                                      np.ones((2, 3), bool)))
    assert (a.dtype, b.dtype) == (np.int64, np.int64)
    assert a.tolist() == [3, 3] and b == 6


def test_split_channels_last_keeps_the_layout_and_says_so() -> None:
    """Chunks of a convolution's channels are cut channels-last, with no transpose, from
    the convolution's result on a line of its own, and their shape comments show the layout
    they are held in."""
    source = generate(archdsl.load(
        "model M {\n    input x: [B, 2, 5, 6]\n    a, b = chunk(x |> Conv2d(8, 1), 2, dim=1)\n"
        "    output y = (a * b) |> Conv2d(3, 1)\n}\n").graph())
    assert '    h = keras.layers.Conv2D(8, 1, name="conv2d1")(h)\n' \
        "    a, b = keras.ops.split(h, [4], axis=3)  # (B, 5, 6, 4), (B, 5, 6, 4)\n" in source
    assert source.count("keras.ops.transpose") == 2  # the input, the output
