"""Parse + check and analyze time against spec size, side by side in one process.

    python bench/frontend_scaling.py

Prints, for specs of 10 to 10,000 blocks, the time to `archdsl.load` (parse + check) and to
`archdsl.analyze`, and each time's ratio to the previous size's: linear growth shows as a
ratio near the size ratio (10x). Also times a GPT-3-sized spec (96 layers, d=12288, T=2048).
"""

from __future__ import annotations

import time
from pathlib import Path

import archdsl

ROOT = Path(__file__).resolve().parents[1]

BLOCK = """
block Residual(d: int) {
    input x: [B, T, d]
    h = x |> LayerNorm |> Linear(2 * d) |> GELU |> Linear(d)
    output y = x + h
}
"""


def chain_spec(n: int) -> str:
    """A model with n distinct statements, each applying a block (n blocks in the graph)."""
    lines = [BLOCK, "model Deep(d: int = 32) {", "    input x: [B, T, d]"]
    lines += ["    x = x |> Residual(d)" for _ in range(n)]
    lines += ["    output y = x", "}"]
    return "\n".join(lines)


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    cols = ("blocks", 7), ("chars", 9), ("check s", 9), ("x prev", 7), ("analyze s", 10), \
        ("x prev", 7)
    print(" ".join(f"{name:>{width}}" for name, width in cols))
    prev = None
    for n in (10, 100, 1_000, 10_000):
        text = chain_spec(n)
        t_check = best_of(lambda s=text: archdsl.load(s))
        t_an = best_of(lambda s=text: archdsl.analyze(s, bind={"T": 128}))
        r1 = f"{t_check / prev[0]:.1f}" if prev else "-"
        r2 = f"{t_an / prev[1]:.1f}" if prev else "-"
        print(f"{n:>7} {len(text):>9,} {t_check:>9.4f} {r1:>7} {t_an:>10.4f} {r2:>7}")
        prev = (t_check, t_an)
    spec = ROOT / "specs" / "gpt2_small.arch"
    gpt3 = {"layers": 96, "d": 12288, "heads": 96, "context": 2048}
    t = best_of(lambda: archdsl.analyze(spec, params=gpt3, bind={"T": 2048}))
    r = archdsl.analyze(spec, params=gpt3, bind={"T": 2048})
    print(f"\nGPT-3-sized (96 layers, d=12288, T=2048): analyze {t:.4f} s, "
          f"{r.total.params:,} parameters, {r.total.flops:,} FLOPs")


if __name__ == "__main__":
    main()
