"""The generated module: lint-clean, formatted, standalone, deterministic; and the API around it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from tf_cases import SPECS, graph
from typer.testing import CliRunner

import archdsl
from archdsl.backends import tensorflow as backend
from archdsl.backends.tensorflow.generator import (
    ALIASES,
    EXPRESSIONS,
    KERAS_ATTRIBUTES,
    LAYERS,
    generate,
)
from archdsl.cli import app
from archdsl.ops import REGISTRY


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("generated")
    paths = []
    for spec in SPECS:
        path = folder / f"{spec.path.parent.name}_{spec.path.stem}.py"
        path.write_text(generate(graph(spec)), encoding="utf-8")
        paths.append(path)
    return paths


def test_generated_modules_pass_ruff(written: list[Path], ruff) -> None:
    out = ruff("check", written)
    assert out.returncode == 0, out.stdout + out.stderr


def test_generated_modules_are_formatted(written: list[Path], ruff) -> None:
    out = ruff("format", written)
    assert out.returncode == 0, out.stdout + out.stderr


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


def test_every_op_has_a_lowering() -> None:
    handled = set(LAYERS) | set(EXPRESSIONS) | ALIASES | {"input"}
    assert set(REGISTRY) - handled == set()


def test_reserved_attributes_cover_keras() -> None:
    class Probe(keras.Model):
        def call(self, x):
            return x

    model = Probe()
    model.compile(optimizer="adam", loss="mse")
    model(np.ones((1, 2), "float32"))
    public = {n for obj in (keras.Model, model, keras.layers.Layer()) for n in dir(obj)
              if not n.startswith("_")}
    assert public <= KERAS_ATTRIBUTES


def test_one_class_per_block_specialisation() -> None:
    source = generate(archdsl.load(SPECS[0].path.parent / "resnet_block.arch").graph())
    classes = [n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]
    blocks = [c for c in classes if c.startswith("BasicBlock")]
    assert blocks == ["BasicBlock_channels16_stride1", "BasicBlock_channels32_stride2",
                      "BasicBlock_channels32_stride1", "BasicBlock_channels64_stride2",
                      "BasicBlock_channels64_stride1"]
    assert "for block in self.basicblock_0:" in source


def test_other_spec_parameters_are_refused() -> None:
    g = archdsl.load(SPECS[0].path.parent / "cnn_digits.arch").graph()
    namespace: dict = {}
    exec(generate(g), namespace)  # noqa: S102
    with pytest.raises(ValueError, match="compiled with classes=10"):
        namespace["DigitsCNN"](classes=5)


def test_public_api_round_trips_weights() -> None:
    path = SPECS[0].path.parent / "cnn_digits.arch"
    model = archdsl.build(path, backend="tensorflow")
    state = archdsl.state_dict(model)
    other = archdsl.build(path, backend="tensorflow")
    archdsl.load_state_dict(other, state)
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(other(x)))


def test_load_state_dict_names_every_problem() -> None:
    model = backend.build(archdsl.load(SPECS[0].path.parent / "cnn_digits.arch").graph())
    state = backend.state_dict(model)
    state.pop("conv2d_0.bias")
    state["conv2d_9.weight"] = np.zeros(3)
    state["linear_1.weight"] = np.zeros((3, 3))
    with pytest.raises(ValueError) as err:
        backend.load_state_dict(model, state)
    message = str(err.value)
    for part in ("missing key 'conv2d_0.bias'", "unexpected key 'conv2d_9.weight'",
                 "'linear_1.weight' has shape [3, 3], the model needs [10, 64]"):
        assert part in message


def test_keras_saves_and_loads_the_model(tmp_path: Path) -> None:
    g = archdsl.load(SPECS[0].path.parent / "resnet_block.arch").graph()
    namespace: dict = {}
    exec(generate(g), namespace)  # noqa: S102
    model = namespace["ResNet20"]()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype("float32")
    before = np.asarray(model(x))
    model.save(tmp_path / "model.keras")
    classes = {k: v for k, v in namespace.items() if isinstance(v, type)}
    loaded = keras.models.load_model(tmp_path / "model.keras", custom_objects=classes)
    np.testing.assert_array_equal(np.asarray(loaded(x)), before)


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
    expected = (x @ state["pair_0.linear_0.weight"].T + state["pair_0.linear_0.bias"]) * x
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-6)



# One block instance called on inputs of different widths: its code differs per call, which a
# Keras layer (one `call` for every use) cannot express.
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
    """One Keras layer runs every call of a shared block, so its code must fit them all."""
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
    assert source.count("class Squash") == 1
    assert "self.s(a)" in source and "self.s(b)" in source
    refused = archdsl.load(SHARED_PICK).graph()
    with pytest.raises(archdsl.SpecError) as err:
        generate(refused)
    (diag,) = err.value.diagnostics
    assert diag.code == "E0901" and "shared block" in diag.message and diag.loc.line == 10


def test_a_refusal_quotes_the_spec_through_the_api_and_the_cli(tmp_path: Path) -> None:
    """archdsl.compile, archdsl.build and `archdsl compile` show the refused line underlined,
    as for any other spec error (the backend alone sees only the graph)."""
    spec = tmp_path / "pick.arch"
    spec.write_text(SHARED_PICK, encoding="utf-8")
    line = "    output y = concat([p(a), p(b)], dim=1)"
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
