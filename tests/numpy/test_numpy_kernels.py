"""Every NumPy kernel, forward and backward, against central finite differences and against
PyTorch (float64). The cases are data: op, call arguments as a spec writes them, input shapes.
Arguments go through the registry's binding and normalizer, so kernels see what graphs carry."""

from __future__ import annotations

import math
import platform
import resource
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy_oracle
import pytest
import torch

from archdsl.backends.numpy.kernels import KERNELS, Ctx, channels_last, conv, memory
from archdsl.backends.numpy.kernels.activation import normal_cdf
from archdsl.graph import ParamSpec, TensorType
from archdsl.ops import REGISTRY
from archdsl.ops.init import ZEROS
from archdsl.ops.registry import bind_args


@dataclass(frozen=True)
class Ids:
    """An integer input: token ids in [0, high)."""

    shape: tuple[int, ...]
    high: int


@dataclass(frozen=True)
class Case:
    op: str
    args: dict[str, Any]
    inputs: list[Any]  # shapes of float inputs, or Ids
    name: str = ""
    train: bool = False
    torch: bool = True  # False where the result is random (dropout in training)
    pos: tuple[Any, ...] = ()  # positional arguments (Reshape's dims)
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)  # for `param`

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}" if self.name else self.op


S = (2, 3, 4)  # a generic small tensor
CASES = [
    # dense
    Case("Linear", {"out": 4}, [(3, 5)]),
    Case("Linear", {"out": 3, "bias": False}, [(2, 3, 5)], "3d-nobias"),
    Case("Embedding", {"num": 7, "dim": 4}, [Ids((2, 5), 7)]),
    Case("PositionalEncoding", {}, [(2, 5, 6)]),
    Case("PositionalEncoding", {"max_len": 9}, [(2, 5, 7)], "odd-dim"),
    Case("PositionalEmbedding", {"max_len": 8}, [(2, 5, 6)]),
    Case("Parameter", {"shape": [2, 3], "init": "zeros"}, []),
    Case("param", {"name": "weight", "shape": [4, 3]}, [], params={"weight": (4, 3)}),
    # convolutions
    Case("Conv1d", {"out": 4, "kernel": 3}, [(2, 3, 9)]),
    Case("Conv1d", {"out": 6, "kernel": 3, "stride": 2, "padding": 1, "dilation": 2,
                    "groups": 2}, [(2, 4, 11)], "stride-pad-dil-groups"),
    Case("Conv1d", {"out": 3, "kernel": 4, "stride": 2, "padding": "same"}, [(2, 3, 9)],
         "same-asymmetric"),
    Case("Conv2d", {"out": 4, "kernel": 3}, [(2, 3, 7, 6)]),
    Case("Conv2d", {"out": 6, "kernel": (3, 2), "stride": (2, 1), "padding": (1, 0),
                    "dilation": (1, 2), "groups": 2}, [(2, 4, 9, 8)], "mixed-groups"),
    Case("Conv2d", {"out": 4, "kernel": 3, "stride": 2, "padding": "same", "bias": False},
         [(2, 2, 8, 7)], "same-stride2-asymmetric"),
    Case("Conv2d", {"out": 4, "kernel": 3, "padding": "same", "dilation": 2}, [(1, 2, 6, 6)],
         "same-dilated"),
    Case("Conv2d", {"out": 6, "kernel": 3, "padding": 1, "groups": 3}, [(2, 3, 5, 5)],
         "depthwise-multiplier"),
    Case("Conv2d", {"out": 5, "kernel": 1}, [(2, 3, 4, 4)], "pointwise"),
    Case("Conv2d", {"out": 5, "kernel": 1, "stride": 2}, [(2, 3, 5, 5)], "pointwise-stride2"),
    Case("Conv2d", {"out": 4, "kernel": 3, "padding": 1}, [(2, 12, 6, 5)], "wide"),
    Case("Conv2d", {"out": 12, "kernel": 3, "padding": 1, "groups": 2}, [(1, 4, 3, 3)],
         "deep-small"),
    Case("Conv2d", {"out": 6, "kernel": 3, "stride": 3, "padding": 1, "dilation": 2},
         [(2, 4, 9, 8)], "stride-over-span"),
    Case("ConvTranspose2d", {"out": 3, "kernel": 4, "stride": 2, "padding": 1}, [(2, 4, 5, 5)]),
    Case("ConvTranspose2d", {"out": 2, "kernel": 3, "stride": 2, "padding": 1,
                             "output_padding": 1}, [(2, 3, 4, 3)], "output-padding"),
    Case("ConvTranspose2d", {"out": 4, "kernel": (3, 2), "stride": (2, 3), "padding": (1, 0),
                             "output_padding": (1, 2), "groups": 2, "bias": False},
         [(2, 4, 3, 4)], "groups-asymmetric"),
    Case("ConvTranspose2d", {"out": 3, "kernel": 3, "padding": 1}, [(2, 4, 4, 5)], "stride1"),
    # pooling
    Case("MaxPool1d", {"kernel": 2}, [(2, 3, 8)]),
    Case("MaxPool1d", {"kernel": 3, "stride": 2, "padding": 1}, [(2, 3, 9)], "overlap-pad"),
    Case("MaxPool2d", {"kernel": 2}, [(2, 3, 6, 6)]),
    Case("MaxPool2d", {"kernel": 3, "stride": 2, "padding": 1}, [(2, 2, 7, 6)], "overlap-pad"),
    Case("MaxPool2d", {"kernel": 2, "stride": 3}, [(2, 2, 8, 7)], "stride-over-kernel"),
    Case("MaxPool2d", {"kernel": 2}, [(2, 2, 7, 5)], "ragged"),
    Case("AvgPool1d", {"kernel": 2}, [(2, 3, 8)]),
    Case("AvgPool1d", {"kernel": 3, "stride": 2, "padding": 1}, [(2, 3, 9)], "overlap-pad"),
    Case("AvgPool2d", {"kernel": 2}, [(2, 3, 6, 6)]),
    Case("AvgPool2d", {"kernel": (3, 2), "stride": (2, 1), "padding": (1, 1)}, [(2, 2, 7, 6)],
         "overlap-pad"),
    Case("AvgPool2d", {"kernel": 2, "stride": 3, "padding": 1}, [(2, 2, 8, 7)],
         "stride-over-kernel"),
    Case("AvgPool2d", {"kernel": 2}, [(2, 2, 7, 5)], "ragged"),
    Case("AvgPool1d", {"kernel": 3, "stride": 4}, [(2, 3, 11)], "stride-over-kernel"),
    Case("AdaptiveAvgPool2d", {"size": 3}, [(2, 3, 7, 5)]),
    Case("AdaptiveAvgPool2d", {"size": (2, 1)}, [(2, 3, 5, 4)], "rect"),
    Case("GlobalAvgPool", {}, [(2, 3, 4, 5)]),
    Case("GlobalAvgPool", {}, [(2, 3, 7)], "1d"),
    # normalisation
    Case("BatchNorm1d", {}, [(6, 3)], "train", train=True),
    Case("BatchNorm1d", {}, [(6, 3)], "eval"),
    Case("BatchNorm1d", {"momentum": 0.3}, [(4, 3, 5)], "seq-train", train=True),
    Case("BatchNorm2d", {}, [(3, 4, 3, 3)], "train", train=True),
    Case("BatchNorm2d", {"eps": 1e-3}, [(3, 4, 3, 3)], "eval"),
    Case("BatchNorm2d", {"affine": False}, [(3, 4, 3, 3)], "noaffine-train", train=True),
    Case("LayerNorm", {}, [(2, 3, 6)]),
    Case("LayerNorm", {"eps": 1e-3}, [(4, 60, 300)], "row-blocks"),
    # recurrent
    *(Case(op, {"hidden": 4}, [(2, 5, 3)]) for op in ("RNN", "LSTM", "GRU")),
    *(Case(op, {"hidden": 3, "layers": 2, "bidirectional": True}, [(2, 4, 3)], "bi-2layer")
      for op in ("RNN", "LSTM", "GRU")),
    *(Case(op, {"hidden": 3, "layers": 2, "bidirectional": True, "return_sequences": False},
           [(2, 4, 3)], "bi-2layer-last") for op in ("RNN", "LSTM", "GRU")),
    *(Case(op, {"hidden": 3, "layers": 2, "dropout": 0.5}, [(2, 4, 3)], "dropout-train",
           train=True, torch=False) for op in ("RNN", "LSTM", "GRU")),
    Case("GRU", {"hidden": 3, "layers": 2, "dropout": 0.5}, [(2, 4, 3)], "dropout-eval"),
    # attention
    Case("MultiHeadAttention", {"heads": 2}, [(2, 5, 8)], "self"),
    Case("MultiHeadAttention", {"heads": 2, "causal": True}, [(2, 5, 8)], "causal"),
    Case("MultiHeadAttention", {"heads": 2, "causal": True}, [(2, 4, 8), (2, 6, 5), (2, 6, 3)],
         "cross-causal-kdim"),
    Case("MultiHeadAttention", {"heads": 4}, [(2, 3, 8), (2, 6, 8), (2, 6, 8)], "cross-tq-tk"),
    Case("MultiHeadAttention", {"heads": 1, "bias": False}, [(2, 4, 6)], "nobias"),
    Case("MultiHeadAttention", {"heads": 2, "dropout": 0.3}, [(2, 5, 8)], "dropout-train",
         train=True, torch=False),
    Case("AdditiveAttention", {"units": 6}, [(2, 4), (2, 5, 3)]),
    # activations
    *(Case(op, {}, [S]) for op in ("ReLU", "relu", "GELU", "gelu", "Tanh", "tanh", "Sigmoid",
                                   "sigmoid", "SiLU", "silu", "Identity", "Softmax",
                                   "softmax", "LeakyReLU")),
    Case("GELU", {"approximate": "tanh"}, [S], "tanh"),
    Case("LeakyReLU", {"slope": 0.2}, [S], "slope"),
    Case("Softmax", {"dim": 1}, [S], "dim1"),
    Case("Dropout", {"p": 0.3}, [S], "eval"),
    Case("Dropout", {"p": 0.3}, [S], "train", train=True, torch=False),
    # shapes
    Case("Flatten", {}, [S]),
    Case("Reshape", {}, [(2, 12)], pos=(3, 4)),
    Case("Reshape", {}, [(2, 12)], "infer", pos=(2, -1, 1)),
    Case("reshape", {"shape": [6, -1]}, [S]),
    Case("transpose", {"dim0": 0, "dim1": -1}, [S]),
    Case("permute", {"dims": [2, 0, 1]}, [S]),
    Case("expand", {"shape": [2, 3, 4]}, [(3, 1)]),
    Case("expand", {"shape": [2, -1, 4]}, [(1, 3, 1)], "keep"),
    Case("concat", {"dim": 1}, [(2, 1, 4), (2, 3, 4), (2, 2, 4)]),
    Case("getitem", {"index": [[None, None, None], -1]}, [S], "last"),
    Case("getitem", {"index": [1, [0, 3, 2]]}, [S], "slice-step"),
    Case("mean", {"dim": [1], "keepdim": True}, [S]),
    Case("mean", {}, [S], "all"),
    Case("sum", {"dim": [0, 2]}, [S]),
    Case("sum", {"dim": -1}, [S], "neg-dim"),
    # arithmetic
    *(Case(op, {}, [S, (3, 1)], "broadcast") for op in ("add", "sub", "mul", "div")),
    *(Case(op, {}, [(4,), S], "rank") for op in ("add", "mul")),
    *(Case(op, {"scalar": 0.5}, [S], "scalar") for op in ("add", "sub", "mul", "div")),
    *(Case(op, {"scalar": 2.0, "scalar_first": True}, [S], "scalar-first")
      for op in ("sub", "div")),
    Case("neg", {}, [S]),
    Case("matmul", {}, [S, (4, 5)]),
    Case("matmul", {}, [(4,), (2, 4, 3)], "vector-left"),
    Case("matmul", {}, [(3, 4), (4,)], "vector-right"),
    Case("matmul", {}, [(2, 1, 3, 4), (5, 4, 2)], "batch-broadcast"),
]


def _bind(case: Case) -> tuple[dict, list[ParamSpec], list[TensorType]]:
    """The op's arguments and parameters as the front end resolves them."""
    op = REGISTRY[case.op]
    ins = [TensorType(dtype="i64", shape=s.shape) if isinstance(s, Ids)
           else TensorType(dtype="f64", shape=s) for s in case.inputs]
    a = op.normalize(bind_args(op, list(case.pos), dict(case.args)), ins)
    specs = [ParamSpec(name=k, shape=v, init=ZEROS)
             for k, v in case.params.items()] or op.params(a, ins)
    return a, specs, ins


def _values(case: Case, specs: list[ParamSpec], dtype=np.float64):
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    xs = [rng.integers(0, s.high, s.shape) if isinstance(s, Ids)
          else rng.standard_normal(s).astype(dtype) for s in case.inputs]
    p = {}
    for s in specs:
        if s.dtype == "i64":
            p[s.name] = np.zeros(s.shape, np.int64)
        elif s.name == "running_var":
            p[s.name] = rng.uniform(0.5, 1.5, s.shape).astype(dtype)
        else:
            p[s.name] = (rng.standard_normal(s.shape) * 0.6).astype(dtype)
    return xs, p, rng


def _forward(case: Case, a: dict, p: dict, xs: list):
    """One forward on copies of the parameters, with a dropout generator fixed per call."""
    p = {k: v.copy() for k, v in p.items()}
    y, cache = KERNELS[case.op].forward(a, p, list(xs), Ctx(case.train, np.random.default_rng(7)))
    return y, cache, p


def _is_float(v: np.ndarray) -> bool:
    return np.issubdtype(v.dtype, np.floating)


def _finite_differences(case: Case) -> None:
    """The backward pass against central differences of the forward, float64."""
    a, specs, _ = _bind(case)
    xs, p, rng = _values(case, specs)
    y, cache, _ = _forward(case, a, p, xs)
    g = rng.standard_normal(y.shape)
    dxs, dps = KERNELS[case.op].backward(g, cache)
    assert len(dxs) == len(xs)
    assert set(dps) == {s.name for s in specs if s.kind == "param"}
    h = 1e-6

    def loss() -> float:
        return float((_forward(case, a, p, xs)[0] * g).sum())

    targets = [(x, dx) for x, dx in zip(xs, dxs, strict=True) if _is_float(x)]
    targets += [(p[k], dps[k]) for k in dps]
    for value, grad in targets:
        assert grad.shape == value.shape
        flat = value.reshape(-1)  # a view: perturbs the array in place
        for i in rng.choice(flat.size, min(flat.size, 15), replace=False):
            old = flat[i]
            flat[i] = old + h
            up = loss()
            flat[i] = old - h
            down = loss()
            flat[i] = old
            np.testing.assert_allclose(grad.reshape(-1)[i], (up - down) / (2 * h),
                                       rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_backward_matches_finite_differences(case: Case) -> None:
    _finite_differences(case)


def _against_torch(case: Case, dtype: type, rtol: float, atol: float) -> None:
    """Our kernel in `dtype` against PyTorch in float64 on the same values, forward and back."""
    a, specs, _ = _bind(case)
    xs, p, rng = _values(case, specs, dtype)
    y, cache, p_after = _forward(case, a, p, xs)
    g = rng.standard_normal(y.shape).astype(dtype)
    dxs, dps = KERNELS[case.op].backward(g, cache)

    def tensor(v: np.ndarray, grad: bool = False) -> torch.Tensor:
        return torch.tensor(v.astype(np.float64) if _is_float(v) else v, requires_grad=grad)

    xt = [tensor(x, _is_float(x)) for x in xs]
    pt = {s.name: tensor(p[s.name], s.kind == "param") for s in specs}
    yt = numpy_oracle.run(case.op, a, pt, xt, case.train)
    yt.backward(tensor(g))

    def close(ours, ref, what):
        assert ours.dtype == dtype or not _is_float(ours), what
        np.testing.assert_allclose(ours, ref.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=what)

    close(y, yt, "output")
    for i, (dx, t) in enumerate(zip(dxs, xt, strict=True)):
        if t.requires_grad:
            close(dx, t.grad, f"grad of input {i}")
    for s in specs:
        if s.kind == "param":
            close(dps[s.name], pt[s.name].grad, f"grad of {s.name}")
        else:
            close(p_after[s.name], pt[s.name], f"buffer {s.name}")


@pytest.mark.parametrize("case", [c for c in CASES if c.torch], ids=lambda c: c.id)
def test_matches_torch(case: Case) -> None:
    _against_torch(case, np.float64, 1e-5, 1e-8)


# Paths that only float32 takes, or that only large inputs reach (several `BLOCK`s).
FLOAT32_CASES = [
    Case("GELU", {}, [(3, 40000)], "blocks"),
    Case("GELU", {"approximate": "tanh"}, [(3, 40000)], "tanh-blocks"),
]


@pytest.mark.parametrize("case", FLOAT32_CASES, ids=lambda c: c.id)
def test_float32_matches_torch(case: Case) -> None:
    _against_torch(case, np.float32, 1e-5, 1e-6)


@pytest.mark.parametrize("layout", ["channels_first", "channels_last", "channels_last-rows"])
@pytest.mark.parametrize("case", [c for c in CASES if c.op.startswith("Conv")],
                         ids=lambda c: c.id)
def test_conv_layouts(case: Case, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each convolution case through each layout (`conv.py` picks one by size), against
    finite differences and PyTorch, in float64 and float32; "-rows" cuts the channels-last
    work into chunks of one output row, as large images are."""
    monkeypatch.setattr(conv, "_channels_last", lambda w, rows: layout != "channels_first")
    if layout.endswith("-rows"):
        monkeypatch.setattr(channels_last, "CHUNK", 1)
    _finite_differences(case)
    _against_torch(case, np.float64, 1e-5, 1e-8)
    _against_torch(case, np.float32, 1e-4, 1e-5)


def test_float32_normal_cdf_is_accurate() -> None:
    """GELU's float32 Phi within 1e-7 of the exact value (PyTorch's float32 ndtr: 7e-8), from
    the centre to the tails, and the float64 one to double precision."""
    x = np.linspace(-12, 12, 240_001)
    exact = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    assert normal_cdf(x.astype(np.float32)).dtype == np.float32
    assert np.abs(normal_cdf(x.astype(np.float32)) - exact).max() < 1e-7
    assert np.abs(normal_cdf(x) - exact).max() < 1e-15


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float32_stays_float32(case: Case) -> None:
    a, specs, _ = _bind(case)
    xs, p, rng = _values(case, specs, np.float32)
    y, cache, _ = _forward(case, a, p, xs)
    assert y.dtype == np.float32
    dxs, dps = KERNELS[case.op].backward(rng.standard_normal(y.shape).astype(np.float32), cache)
    for d in [*dxs, *dps.values()]:
        assert d is None or d.dtype == np.float32


def test_every_op_has_a_kernel_and_a_case() -> None:
    ops = set(REGISTRY) - {"input"}
    assert ops - set(KERNELS) == set()
    assert ops - {c.op for c in CASES} == set()


def test_dropout_drops_and_scales() -> None:
    x = np.ones((200, 100))
    y, _ = KERNELS["Dropout"].forward({"p": 0.25}, {}, [x], Ctx(True, np.random.default_rng(0)))
    assert abs((y == 0).mean() - 0.25) < 0.01
    assert set(np.unique(y)) == {0.0, 1 / 0.75}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_keeps_its_tails(dtype: type) -> None:
    """Tiny values stay relatively accurate (LSTM forget gates, GAN losses), without an
    overflow warning from exp."""
    x = np.array([-120, -60, -20, -1, 0, 1, 20, 60, 120], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, _ = KERNELS["Sigmoid"].forward({}, {}, [x], Ctx())
    exact = torch.sigmoid(torch.tensor(x, dtype=torch.float64)).numpy()
    assert y.dtype == dtype
    np.testing.assert_allclose(y, exact, rtol=1e-6, atol=np.finfo(dtype).smallest_subnormal)


def test_freed_arrays_come_back_without_page_faults() -> None:
    """With glibc, the kernels keep freed memory: two 2 MB arrays made and dropped twenty
    times fault no pages in (glibc's defaults fault about a thousand per round)."""
    assert memory.keep_freed_memory() == (platform.libc_ver()[0] == "glibc")
    if platform.libc_ver()[0] != "glibc":
        return
    x = np.ones((2048, 256), np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        a, b = x * 2, x * 3
        del a, b
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 100
