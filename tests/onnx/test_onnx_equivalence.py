"""ONNX Runtime against PyTorch: for every spec, contract example, backend test spec and op
conformance row, one exported file passes the ONNX checker and strict shape inference, keeps
its symbolic sizes symbolic, and computes what the PyTorch build computes with the same
weights (relative error below 1e-5) at two batch sizes and, where a length is symbolic, two
lengths. A model that samples (`randn_like`) is run by the runtime wrapper, both builds
given the same draws by `archdsl.noise`."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx_cases import CONFORMANCE, ROW_CASES, SPEC_CASES, Case, params

import archdsl
from archdsl.backends.onnx.state import initial
from archdsl.draws import noise
from archdsl.graph import Graph
from archdsl.symbolic import evaluate, format_dim
from archdsl.verify import canonical_weights, default_bind, make_inputs

TOLERANCE = 1e-5  # normwise: max|onnx - torch| / max|torch|


def sizes(g: Graph) -> list[dict[str, int]]:
    """Two bindings of every symbol: B = 2 then 3, any other symbol two distinct lengths."""
    first = default_bind(g, {"B": 2})
    return [first, {s: v + (1 if s == "B" else 2) for s, v in first.items()}]


def weights(g: Graph, seed: int) -> dict[str, np.ndarray]:
    """Initial weights (PyTorch's recipes, drawn from a fixed seed so a case does not depend
    on the tests before it) with every constant tensor (BatchNorm's statistics and affine,
    zero biases) perturbed, so that a mix-up between them shows; floats in float32."""
    state = initial(g, seed)
    drawn = canonical_weights(SimpleNamespace(state=lambda: state), np.random.default_rng(seed))
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in drawn.items()}


def draws(k: int, shape: tuple[int, ...]) -> np.ndarray:
    """The k-th `randn_like` of a forward pass: the same array in both builds."""
    return np.random.default_rng([17, k]).standard_normal(shape)


def declared(model: onnx.ModelProto) -> list[list[int | str]]:
    return [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in model.graph.output]


def session(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def check_case(case: Case, binds: list[dict[str, int]] | None = None) -> None:
    program = archdsl.load(case.source)
    g = archdsl.api.graph(program, case.model, case.params)
    reference = archdsl.build(program, "torch", case.model, case.params).eval()
    state = weights(g, seed=len(case.id))
    archdsl.load_state_dict(reference, state)
    data = archdsl.compile(program, "onnx", case.model, case.params, weights=state)

    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    assert declared(model) == [[d if isinstance(d, int) else format_dim(d)
                                for d in g.node(i).type.shape] for i in g.outputs]

    run = session(data)
    sampler = None
    if any(n.op == "randn_like" for n in g.nodes):  # the file draws its own noise
        sampler = archdsl.build(program, "onnx", case.model, case.params)
        archdsl.load_state_dict(sampler, state)
    for bind in binds or sizes(g):
        xs = [x.astype(np.float32) if x.dtype.kind == "f" else x
              for x in make_inputs(g, bind, np.random.default_rng(0))]
        with noise(draws), torch.no_grad():
            if sampler is None:
                got = run.run(None, dict(zip(g.input_names, xs, strict=True)))
            else:
                out = sampler(*xs)
                got = list(out) if isinstance(out, tuple) else [out]
            want = reference(*map(torch.from_numpy, xs))
        want = want if isinstance(want, tuple) else (want,)
        for name, i, y, ref in zip(g.output_names, g.outputs, got, want, strict=True):
            t = g.node(i).type
            ref = ref.numpy()
            assert y.shape == ref.shape == tuple(evaluate(d, bind) for d in t.shape), name
            assert y.dtype == ref.dtype, name
            # NaN where a query sees no key, as LANGUAGE.md says
            hidden = np.isnan(ref) if ref.dtype.kind == "f" else np.zeros(ref.shape, bool)
            np.testing.assert_array_equal(np.isnan(y), hidden, err_msg=name)
            y, ref = y[~hidden], ref[~hidden]
            scale = float(np.abs(ref).max()) if ref.size else 0.0
            err = float(np.abs(y.astype(np.float64) - ref).max()) if ref.size else 0.0
            assert err <= TOLERANCE * scale, f"{name} at {bind}: {err / scale:.2e}"


@pytest.mark.parametrize("case", params(SPEC_CASES))
def test_spec_matches_pytorch(case: Case) -> None:
    check_case(case)


@pytest.mark.parametrize("case", params(ROW_CASES))
def test_conformance_row_matches_pytorch(case: Case) -> None:
    check_case(case)


# Sizes the default bindings do not reach, which decide what resampling does: a scale between
# 1 and 2 keeps a small axis's size (PyTorch's linear modes then leave it alone, its nearest
# indices do not), and 90 · 0.7 cells are 62 in PyTorch's float64 but 63 in float32.
AT_SIZES = [
    ("bilinear keeps small axes", "x: [B, 2, H, W]",
     "x |> Upsample(scale=(1.25, 1.5), mode=\"bilinear\")",
     [{"B": 1, "H": 2, "W": 1}, {"B": 1, "H": 3, "W": 2}, {"B": 2, "H": 6, "W": 5}]),
    ("linear keeps a small axis", "x: [B, 2, L]",
     "interpolate(x, scale=1.25, mode=\"linear\")", [{"B": 1, "L": 2}, {"B": 1, "L": 9}]),
    ("nearest at sizes a scale keeps", "x: [B, 2, L]", "x |> Upsample(scale=1.25)",
     [{"B": 1, "L": 2}, {"B": 1, "L": 3}, {"B": 2, "L": 9}]),
    ("float64 output size", "x: [B, 2, 90]", "interpolate(x, scale=0.7, mode=\"linear\")",
     [{"B": 1}]),
]


@pytest.mark.parametrize(("inputs", "body", "binds"), [r[1:] for r in AT_SIZES],
                         ids=[r[0] for r in AT_SIZES])
def test_resampling_matches_pytorch_at_the_sizes_that_decide_it(inputs: str, body: str,
                                                              binds: list) -> None:
    check_case(Case(body, CONFORMANCE.spec(inputs, body)), binds)
