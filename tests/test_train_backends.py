"""`archdsl train` on every spec in specs/ with every backend: a smoke run of a few steps on
the embedded data the command picks for the spec, or, for a spec no embedded dataset fits (an
image-to-image or noise-predicting model), on random arrays given with --data."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from spec_sizes import small
from typer.testing import CliRunner

import archdsl
from archdsl import checkpoint
from archdsl.api import TRAINABLE
from archdsl.cli import app
from archdsl.symbolic import evaluate
from archdsl.verify import make_inputs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
# A gan runs the same command through archdsl/gan.py; tests/test_gan.py covers it.
SPECS = [pytest.param(p, id=p.stem) for p in sorted((ROOT / "specs").glob("*.arch"))
         if "\ngan " not in "\n" + p.read_text(encoding="utf-8")]


# Specs whose output is an image or a tensor to regress: no embedded dataset fits them.
GIVEN_DATA = {"cyclegan_generator.arch", "ddpm_unet.arch", "vae.arch"}


def random_data(path: Path, folder: Path, sizes: dict) -> Path:
    """16 examples of random inputs and targets of the spec's types, as an .npz."""
    g = archdsl.load(path).graph(params=sizes)
    rng = np.random.default_rng(0)
    arrays = dict(zip(g.input_names, make_inputs(g, {"B": 16}, rng), strict=True))
    out = g.nodes[g.outputs[0]].type
    arrays["target"] = rng.uniform(-1, 1, [evaluate(d, {"B": 16}) for d in out.shape])
    data = folder / "data.npz"
    np.savez(data, **{k: np.asarray(v, np.float32 if v.dtype.kind == "f" else v.dtype)
                      for k, v in arrays.items()})
    return data


@pytest.mark.parametrize("backend", TRAINABLE)
@pytest.mark.parametrize("path", SPECS)
def test_every_spec_trains_a_few_steps(path: Path, backend: str, tmp_path: Path) -> None:
    sizes = [a for k, v in small(path).items() for a in ("--set", f"{k}={v}")]
    if path.name in GIVEN_DATA:
        sizes += ["--data", str(random_data(path, tmp_path, small(path)))]
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(path), "--backend", backend, "--epochs",
                                      "1", "--steps", "2", "--batch", "4", "--out", str(out),
                                      *sizes])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    assert math.isfinite(rows[0]["train_loss"]) and math.isfinite(rows[0]["val_loss"])
    state, meta = checkpoint.load(out / "checkpoint.npz")
    assert (meta["backend"], meta["epoch"], meta["step"]) == (backend, 1, 0)
    assert state and all(math.isfinite(float(v.sum())) for v in state.values()
                         if v.dtype.kind == "f")
