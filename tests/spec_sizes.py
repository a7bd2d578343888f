"""The one table of reduced sizes for specs/, shared by every backend's tests.

At their defaults several specs are what their papers publish (224- and 256-pixel images, a
1.1-billion-parameter decoder): `analyze` counts them there (tests/test_analyze.py), and every
test that builds or runs a model uses the sizes below instead. They change widths, depths,
vocabularies and image sizes, never the structure; a spec not listed runs at its defaults.
Token vocabularies stay at least as large as the embedded data `archdsl train` feeds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SMALL: dict[str, dict[str, Any]] = {
    "attention_summarizer": {"vocab": 100, "hidden": 16},
    "cyclegan_generator": {"ngf": 8, "blocks": 2, "size": 32},
    "ddpm_unet": {"ch": 16, "steps": 50},
    "gpt2_small": {"vocab": 97, "context": 16, "d": 32, "heads": 4, "layers": 2},
    "llama_decoder": {"vocab": 97, "d": 32, "layers": 2, "heads": 4, "kv_heads": 2,
                      "hidden": 48},
    "mobilenet_v3_small": {"classes": 10, "size": 64},
    "resnet50": {"classes": 10, "size": 64},  # every bottleneck, a 12th of the pixels
    "seq2seq_transformer": {"src_vocab": 50, "tgt_vocab": 60, "d_model": 32, "heads": 4,
                            "layers": 2},
    "text_transformer": {"vocab": 100, "d_model": 32, "heads": 4, "layers": 2},
}

# Specs that stay slow at these sizes in one backend: its tests mark them `slow`.
SLOW: dict[str, set[str]] = {"tensorflow": {"resnet50"}, "numpy": {"resnet50"}}


def small(spec: Path | str) -> dict[str, Any]:
    """The reduced sizes of a spec (a path or its stem); empty for one not listed."""
    return dict(SMALL.get(Path(spec).stem, {}))
