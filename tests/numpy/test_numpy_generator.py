"""Generated NumPy modules: clean Python, one class per block definition, built for any
parameter values, and what `build` runs is exactly the text `generate` writes."""

from __future__ import annotations

import linecache

import numpy as np
import pytest
from numpy_cases import GRAPHS, ROOT

import archdsl
from archdsl.backends import numpy as nb
from archdsl.backends.numpy import nn
from archdsl.backends.numpy.kernels import KERNELS, Kernel
from archdsl.backends.numpy.runtime import load_module
from archdsl.diagnostics import SpecError
from archdsl.graph import Graph, ParamSpec
from archdsl.names import MODULE_ATTRIBUTES
from archdsl.ops import REGISTRY
from archdsl.ops.registry import Arg, Flops, OpDef, numel, register


@pytest.mark.parametrize("g", GRAPHS)
def test_build_runs_the_generated_text(g: Graph) -> None:
    model = nb.build(g)
    lines = linecache.getlines(type(model).forward.__code__.co_filename)
    assert "".join(lines) == nb.generate(g)


def _resnet() -> object:
    module, _ = load_module(archdsl.load(ROOT / "specs" / "resnet_block.arch").graph())
    return module


def test_one_class_per_block_built_for_any_sizes() -> None:
    module = _resnet()
    source = nb.generate(archdsl.load(ROOT / "specs" / "resnet_block.arch").graph())
    assert [line.split("(")[0] for line in source.splitlines()
            if line.startswith("class ")] == ["class BasicBlock", "class ResNet20"]
    block = module.BasicBlock(C=8, channels=24, stride=2)
    x = np.random.default_rng(0).standard_normal((2, 8, 16, 16))
    assert block(x).shape == (2, 24, 8, 8)
    assert block.shortcut is not None and module.BasicBlock(24, 24).shortcut is None
    (dx,) = block.backward(np.ones((2, 24, 8, 8)))
    assert dx.shape == x.shape and set(block.grads()) == set(block.parameters())


def test_the_models_own_parameters_work() -> None:
    module, (name,) = load_module(archdsl.load(ROOT / "specs" / "cnn_digits.arch").graph())
    model = getattr(module, name)(classes=5)
    assert model(np.zeros((3, 1, 28, 28))).shape == (3, 5)
    assert model.parameters()["fc2.weight"].shape[0] == 5


def test_a_gan_builds_both_models_from_one_module() -> None:
    g = archdsl.load(ROOT / "specs" / "digits_gan.arch").graph()
    source = nb.generate(g)
    pair = nb.build(g, np.float64, seed=5)
    assert {type(pair.generator).__name__, type(pair.discriminator).__name__} <= {
        line[6:].split("(")[0] for line in source.splitlines() if line.startswith("class ")}
    again = nb.build(g, np.float64, seed=5)  # the same seed draws the same weights
    for a, b in ((pair.generator, again.generator), (pair.discriminator, again.discriminator)):
        for k, v in nb.state_dict(a).items():
            np.testing.assert_array_equal(nb.state_dict(b)[k], v, err_msg=k)
    z = np.random.default_rng(0).standard_normal((2, 64))
    assert pair.discriminator(pair.generator(z)).shape == (2, 1)


def test_every_op_with_a_kernel_has_a_layer_or_a_function() -> None:
    """The generic lowering covers the registry: an op with parameters is a layer class, any
    other op a function of `nn`, or a layer class where a function op owns its name."""
    missing = [name for name, op in REGISTRY.items() if name in nb.KERNELS and
               name not in ("param", "part", "input", "getitem") and
               name not in nn.tables().layers and name not in nn.tables().functions]
    assert missing == []
    for name, fname in nn.tables().functions.items():
        assert callable(getattr(nn, fname)), name


@pytest.fixture
def scale_op() -> object:
    """`Scale(init)`: x times a learned weight per feature, declared and given a kernel after
    `nn` was imported, as a plugin's op is; removed again afterwards."""
    def forward(a: dict, p: dict, xs: list, ctx: object) -> tuple:
        return xs[0] * p["weight"], (xs[0], p["weight"])

    def backward(dy: np.ndarray, cache: tuple) -> tuple:
        x, w = cache
        return [dy * w], {"weight": (dy * x).reshape(-1, w.shape[0]).sum(axis=0)}

    register(OpDef(
        name="Scale", kind="layer", category="dense", args=(Arg("init", "float", 1.0),),
        normalize=lambda a, ins: {**a, "dim": ins[0].shape[-1]}, derives=("dim",),
        shape=lambda a, ins: ins[0],
        params=lambda a, ins: [ParamSpec(name="weight", shape=(a["dim"],),
                                         init=("constant", a["init"]))],
        flops=lambda a, ins, out: Flops(other=numel(out.shape)), doc="x * weight"))
    KERNELS["Scale"] = Kernel(forward, backward)
    yield
    del REGISTRY["Scale"], KERNELS["Scale"]


@pytest.mark.usefixtures("scale_op")
def test_an_op_declared_after_import_is_a_layer_of_nn() -> None:
    """One declaration and one kernel make an op: the module calls `nn.Scale`, whose
    weight follows the declared recipe and gets its gradient."""
    g = archdsl.load("model T {\n  input x: [B, 4]\n  output y = x |> Scale(init=0.5)\n}\n"
                     ).graph()
    assert "nn.Scale(4, init=0.5)" in nb.generate(g)
    model = nb.build(g, np.float64)
    (key,) = model.state_dict()
    np.testing.assert_array_equal(model.state_dict()[key], np.full(4, 0.5))
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(model(x), x * 0.5)
    dx, = model.backward(np.ones((3, 4)))
    np.testing.assert_array_equal(dx, np.full((3, 4), 0.5))
    np.testing.assert_array_equal(model.grads()[key], x.sum(axis=0))


def test_reserved_attribute_names_cover_the_numpy_module() -> None:
    """A layer of the spec named like a method of `nn.Module` would shadow it."""
    public = {n for n in dir(nn.Module()) if not n.startswith("_")}
    assert public <= MODULE_ATTRIBUTES


def test_an_op_without_a_kernel_is_refused_where_it_is_written(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(nb.KERNELS, "GELU")
    text = "model M() {\n    input x: [B, 4]\n    output y = x |> GELU\n}\n"
    with pytest.raises(SpecError) as err:
        nb.generate(archdsl.load(text).graph(trace=True))
    (diag,) = err.value.diagnostics
    assert diag.code == "E0901" and "`GELU`" in diag.message and diag.loc.line == 3
