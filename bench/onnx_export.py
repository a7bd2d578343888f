"""Export time of ResNet-50 to ONNX: archdsl's exporter against torch.onnx.export.

    python bench/onnx_export.py [--quick] [--threads N]

Both sides start from what a user holds and end with the bytes of an ONNX file in memory,
opset 17, batch size symbolic, with the same weights. archdsl exports the typed graph
(`archdsl.backends.onnx.generate`), once from the graph already elaborated and once from the
spec file, parsing and checking included; torch.onnx.export traces the model PyTorch built
from the same spec (`archdsl.build(spec, "torch")`, eval mode) on one example image. Its
TorchScript exporter runs (`dynamo=False`): the default, torch.export-based exporter needs
the onnxscript package, which archdsl does not install. Before timing, ONNX Runtime checks
that the two files compute the same logits. The ratio is torch time / archdsl time: above 1
means archdsl's export is faster.
"""

# ruff: noqa: E402  (the thread variables must be set before numpy and torch are imported)
from __future__ import annotations

import io
import warnings
from pathlib import Path

from _timing import interleave, machine, options, pin_torch, print_table

OPTIONS = options(__doc__)

import numpy as np
import onnxruntime as ort
import torch

import archdsl
from archdsl.backends.onnx import OPSET, generate

SPEC = Path(__file__).resolve().parents[1] / "specs" / "resnet50.arch"


def torch_export(model: torch.nn.Module, image: torch.Tensor) -> bytes:
    f = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, and says so
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (image,), f, dynamo=False, opset_version=OPSET,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "B"}, "logits": {0: "B"}})
    return f.getvalue()


def logits(data: bytes, image: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {"image": image})[0]


def main() -> None:
    pin_torch(OPTIONS.threads)
    print(f"torch {torch.__version__}, onnx export at opset {OPSET}; {machine(OPTIONS)}")
    params = {"size": 32, "classes": 10} if OPTIONS.quick else {}
    program = archdsl.load(SPEC)
    graph = program.graph(params=params)
    model = archdsl.build(program, "torch", params=params).eval()
    state = archdsl.state_dict(model)
    size = graph.node(graph.inputs[0]).type.shape[2]
    image = np.random.default_rng(0).normal(size=(1, 3, size, size)).astype(np.float32)

    ours, theirs = generate(graph, weights=state), torch_export(model, torch.from_numpy(image))
    a, b = logits(ours, image), logits(theirs, image)
    assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max(), "the two exports disagree"

    sides = {
        "archdsl graph": lambda: generate(graph, weights=state),
        "archdsl spec": lambda: archdsl.compile(SPEC, "onnx", params=params, weights=state),
        "torch": lambda: torch_export(model, torch.from_numpy(image)),
    }
    rounds, warmup = (1, 0) if OPTIONS.quick else (7, 1)
    t = interleave(sides, rounds, 1, warmup, OPTIONS.clock)
    name = f"ResNet-50, {size}x{size}" + (" (quick)" if OPTIONS.quick else "")
    count = sum(state[k].size for k in graph.parameters())
    print(f"{name}: {count:,} parameters; files of "
          f"{len(ours) / 2**20:.1f} MiB (archdsl) and {len(theirs) / 2**20:.1f} MiB (torch)")
    print_table(["export", "archdsl s", "torch.onnx.export s", "ratio"], [
        [f"{name}, from the graph", t["archdsl graph"], t["torch"],
         t["torch"] / t["archdsl graph"]],
        [f"{name}, from the spec file", t["archdsl spec"], t["torch"],
         t["torch"] / t["archdsl spec"]],
    ])


if __name__ == "__main__":
    main()
