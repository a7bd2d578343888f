"""What the ONNX tests run: every spec of specs/, the contract's examples, the backends' test
specs and every row of the op conformance table, each as one model."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from contract import EXAMPLE_FILES
from spec_sizes import small

import archdsl
from archdsl.graph import GanGraph

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = [*sorted((ROOT / "specs").glob("*.arch")), *EXAMPLE_FILES,
              *sorted((ROOT / "tests" / "torch" / "specs").glob("*.arch")),
              *sorted((ROOT / "tests" / "onnx" / "specs").glob("*.arch"))]


def _conformance() -> Any:
    """tests/conformance/test_op_conformance.py, for its TABLE and `spec`."""
    path = ROOT / "tests" / "conformance" / "test_op_conformance.py"
    loader = importlib.util.spec_from_file_location("onnx_conformance_rows", path)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


CONFORMANCE = _conformance()


@dataclass(frozen=True)
class Case:
    """One model: a spec (a path or the text of a conformance row) and which model of it."""

    id: str
    source: Path | str
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def _spec_cases() -> list[Case]:
    out = []
    for path in SPEC_FILES:
        params = small(path)
        g = archdsl.load(path).graph(params=params or None)
        label = f"{path.parent.name}/{path.stem}"
        if isinstance(g, GanGraph):
            out += [Case(f"{label}:{m.name}", path, m.name, params)
                    for m in (g.generator, g.discriminator)]
        else:
            out.append(Case(label, path, None, params))
    return out


# Rows of the conformance table's format for what the ONNX lowering does its own way: sizes
# it computes at run time from symbolic ones, booleans and integers where ONNX Runtime's
# kernels take neither, and the cases PyTorch special-cases (an axis whose size stays).
ONNX_ROWS = [
    # ---- pooling: ONNX's ceil_mode where a size is symbolic, extra padding where known ---
    ("MaxPool1d ceil_mode symbolic", "x: [B, 2, L]", "x |> MaxPool1d(2, ceil_mode=true)"),
    ("AvgPool1d ceil_mode padding symbolic", "x: [B, 2, L]",
     "x |> AvgPool1d(3, stride=2, padding=1, ceil_mode=true)"),
    ("AvgPool1d ceil_mode no pad count symbolic", "x: [B, 2, L]",
     "x |> AvgPool1d(3, stride=2, padding=1, ceil_mode=true, count_include_pad=false)"),
    ("AvgPool2d ceil_mode overhang no padding", "x: [B, 2, 7, 6]",
     "x |> AvgPool2d(2, ceil_mode=true)"),
    ("MaxPool2d ceil_mode one axis", "x: [B, 2, 7, 6]",
     "x |> MaxPool2d((3, 2), stride=2, padding=(1, 0), ceil_mode=true)"),
    # ---- padding ----------------------------------------------------------------------------
    ("pad circular symbolic", "x: [B, 2, L]", "pad(x, (2, 1), mode=\"circular\")"),
    ("pad reflect symbolic", "x: [B, 2, L, 3]", "pad(x, (1, 1, 2, 0), mode=\"reflect\")"),
    ("Conv1d circular symbolic", "x: [B, 2, L]",
     "x |> Conv1d(3, 3, padding=1, padding_mode=\"circular\")"),
    ("Pad integers constant", "t: i64[B, 3]", "t |> Pad((1, 2), value=1.7)"),
    ("pad booleans replicate", "x: [B, 2, 4]", "pad(x > 0, (1, 2), mode=\"replicate\") * 1.0"),
    # ---- resampling ---------------------------------------------------------------------------
    ("Upsample nearest scale symbolic", "x: [B, 2, H, W]", "x |> Upsample(scale=2)"),
    ("Upsample nearest scale 1.5 symbolic", "x: [B, 2, L]", "x |> Upsample(scale=1.5)"),
    ("interpolate nearest to another input's size", "x: [B, 2, 3, 4]; r: [B, 1, H, W]",
     "interpolate(x, size=(H, W)) + r"),
    ("interpolate nearest down", "x: [B, 2, 9, 7]", "interpolate(x, scale=(0.5, 1 / 3))"),
    ("Upsample bilinear symbolic", "x: [B, 2, H, W]",
     "x |> Upsample(scale=2, mode=\"bilinear\")"),
    ("interpolate bilinear to another input's size", "x: [B, 2, 3, 4]; r: [B, 1, H, W]",
     "interpolate(x, size=(H, W), mode=\"bilinear\", align_corners=true) + r"),
    ("Upsample bilinear keeps an axis", "x: [B, 2, 7, 3]",
     "x |> Upsample(scale=(1.1, 2), mode=\"bilinear\")"),
    ("Upsample bicubic keeps the size", "x: [B, 2, 7, 5]",
     "x |> Upsample(scale=1.1, mode=\"bicubic\")"),
    ("Upsample bicubic symbolic down align_corners", "x: [B, 2, H, W]",
     "x |> Upsample(scale=0.5, mode=\"bicubic\", align_corners=true)"),
    ("interpolate linear symbolic", "x: [B, 2, L]", "interpolate(x, scale=2.5, mode=\"linear\")"),
    ("PixelUnshuffle symbolic", "x: [B, 8, H, W]",
     "x |> PixelShuffle(2) |> PixelUnshuffle(2)"),
    # ---- normalisation -----------------------------------------------------------------------
    ("GroupNorm symbolic positions", "x: [B, 4, L]", "x |> GroupNorm(2)"),
    ("GroupNorm rank 2", "x: [B, 6]", "x |> GroupNorm(3)"),
    ("InstanceNorm2d affine", "x: [B, 3, 4, 5]", "x |> InstanceNorm2d(affine=true)"),
    ("PReLU per channel 4-d", "x: [B, 3, 4, 2]", "x |> PReLU(num_parameters=3)"),
    # ---- recurrent ---------------------------------------------------------------------------
    ("LSTMCell from zeros no bias", "x: [B, 5]",
     "h, c = LSTMCell(4, bias=false)(x)\noutput y = concat([h, c], dim=1)"),
    ("GRUCell unrolled", "x: [B, 3, 2]",
     "cell = GRUCell(4)\nh = cell(x[:, 0])\nfor t in range(1, 3) {\n    h = cell(x[:, t], h)\n}"
     "\noutput y = h"),
    ("GRU 2 layers bidirectional states in and out", "x: [B, T, 3]; h: [4, B, 2]",
     "out, hn = GRU(2, layers=2, bidirectional=true, return_state=true)(x, h)\n"
     "output y = out\noutput z = hn"),
    ("RNN last states out", "x: [B, T, 3]",
     "last, hn = RNN(3, layers=2, return_sequences=false, return_state=true)(x)\n"
     "output y = concat([last, hn[0], hn[1]], dim=1)"),
    ("LSTM one layer states out", "x: [B, T, 3]",
     "out, hn, cn = LSTM(4, return_state=true)(x)\noutput y = out\noutput h = hn\n"
     "output c = cn"),
    # ---- attention ---------------------------------------------------------------------------
    ("Attention rotary symbolic length", "x: [B, T, 8]",
     "x |> Attention(2, kv_heads=1, rotary=true, causal=true)"),
    ("Attention cross rotary symbolic lengths", "q: [B, T, 8]; kv: [B, S, 8]",
     "Attention(4, kv_heads=2, rotary=true, bias=true)(q, kv, kv)"),
    ("MultiHeadAttention mask symbolic", "x: [B, T, 4]",
     "m = x[:, :, 0] > amin(x[:, :, 0], 1, keepdim=true)\n"
     "output y = MultiHeadAttention(2)(x, key_padding_mask=m)"),
    # the first example's keys all hidden: its queries are NaN, the second's are not
    ("Attention hides every key of one example", "x: [B, 3, 4]",
     "m = concat([x[0:1, :, 0] == x[0:1, :, 0], x[1:, :, 0] != x[1:, :, 0]], dim=0)\n"
     "output y = Attention(2)(x, key_padding_mask=m)"),
    # ---- reductions, splits and elementwise --------------------------------------------------
    ("var unbiased symbolic", "x: [B, T, 3]",
     "var(x, 1, unbiased=true) + var(x, unbiased=true)"),
    ("amax booleans", "x: [B, 3, 3]", "amax(x > 0, 1) * 1.0 + amin(x > 0.5, 2) * 2.0"),
    ("chunk fewer parts than asked", "x: [B, 6]",
     "a, b, c = chunk(x, 4, dim=1)\noutput y = concat([c, b * 2.0, a], dim=1)"),
    ("split one part", "x: [B, 3]", "split(x, 3, dim=1)[0]"),
    ("stack negative dim", "a: [B, 3]; b: [B, 3]", "stack([a, b], dim=-1)"),
    ("where booleans", "x: [B, 4]", "where(x > 0, x > 1, x < -1) * 1.0"),
    ("masked_fill integers and booleans", "t: i64[B, 4]; x: [B, 4]",
     "masked_fill(t, t > 0, 1.7) + masked_fill(x > 0, x < -1, 1) * 2"),
    ("comparisons of booleans and integers", "t: i64[B, 4]; x: [B, 4]",
     "((x > 0) < (x > 1)) * 1.0 + (t < 0.5) * 2.0 + (t >= 1) * 4.0 + ((x > 0) != (t == 0))"),
    ("clamp integers", "t: i64[B, 4]", "clamp(t, min=0.5) + clamp(t, max=0) * 1.0"),
    ("maximum minimum booleans", "x: [B, 4]",
     "maximum(x > 0, x < -1) * 1.0 + minimum(x > 0, x < 1) * 2.0"),
    ("pow integers and booleans", "t: i64[B, 4]; x: [B, 4]",
     "t ** 2 + t ** 0.5 + (x > 0) ** 3"),
    ("zeros_like ones_like of integers and booleans", "t: i64[B, 4]",
     "zeros_like(t) + ones_like(t > 0) * 3"),
]
SPEC_CASES = _spec_cases()
ROW_CASES = [Case(name, CONFORMANCE.spec(inputs, body)) for name, inputs, body
             in [*CONFORMANCE.TABLE, *ONNX_ROWS]]


def params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.id) for c in cases]
