"""How fast the front end answers: from a cold start, warm in one process, and against size.

    python bench/frontend_scaling.py [--rounds N] [--blocks N [N ...]]

1. Cold start: the CPU seconds (user + system) of the whole process `archdsl analyze
   specs/resnet50.arch`, beside the PyTorch route to the same figures (a hand-written
   ResNet-50 and `FlopCounterMode`, `bench/resnet50_torch_flops.py`); the two alternate,
   and each figure is the median of `--rounds` runs.
2. Warm, in this process: `archdsl.load` (parse and check) of specs/resnet50.arch, and the
   language server's re-check after an edit (`archdsl.ide.analyze` with its parse cache).
3. `archdsl.load` and `archdsl.analyze` of specs of 10 to 10,000 blocks in this process, and
   each time's ratio to the previous size's: linear growth shows as a ratio near 10.
4. The whole commands `archdsl check`, `archdsl analyze --bind T=128` and the same with
   `--format json`, of specs of `--blocks` blocks (default 10,000), in CPU seconds, each
   with its ratio to the previous size's.

Child processes run from bytecode caches, as an installed package does (a first run of each
writes them; PYTHONDONTWRITEBYTECODE is dropped from their environment).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import archdsl
from archdsl.ide import analyze as recheck
from archdsl.program import ParseCache

ROOT = Path(__file__).resolve().parents[1]
# the console script a user runs, as installed next to this interpreter
CLI = [str(Path(sys.executable).with_name("archdsl"))]
RESNET50 = ROOT / "specs" / "resnet50.arch"
# The commands run as an installed package does: from bytecode caches (written by first runs)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

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


def child_cpu(command: list[str]) -> float:
    """CPU seconds (user + system) of running `command` to its end; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=ENV)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def cold_start(rounds: int) -> None:
    sides = {"archdsl analyze": [*CLI, "analyze", str(RESNET50)],
             "PyTorch + FlopCounterMode": [sys.executable,
                                           str(ROOT / "bench" / "resnet50_torch_flops.py")]}
    for command in sides.values():  # first runs write bytecode caches
        child_cpu(command)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(rounds):
        for name in (sides if r % 2 == 0 else reversed(sides)):
            times[name].append(child_cpu(sides[name]))
    ours, torch = (statistics.median(t) for t in times.values())
    print("cold start, ResNet-50 parameters and FLOPs, CPU s (median of "
          f"{rounds}; range):")
    for name, t in times.items():
        print(f"  {name:<27} {statistics.median(t):7.3f}  ({min(t):.3f}-{max(t):.3f})")
    print(f"  ratio PyTorch / archdsl     {torch / ours:7.1f}")


def warm(rounds: int) -> None:
    path, text = str(RESNET50), RESNET50.read_text(encoding="utf-8")
    cache = ParseCache()
    recheck(path, text, cache=cache)
    archdsl.load(path)
    loads, rechecks = [], []
    for i in range(rounds * 5):
        t = time.process_time()
        archdsl.load(path)
        loads.append(time.process_time() - t)
        t = time.process_time()
        assert not recheck(path, f"{text}# edit {i}\n", cache=cache).diagnostics
        rechecks.append(time.process_time() - t)
    print(f"\nwarm, specs/resnet50.arch in one process, CPU ms (median of {rounds * 5}):")
    print(f"  archdsl.load (parse + check) {1000 * statistics.median(loads):7.2f}")
    print(f"  language-server re-check     {1000 * statistics.median(rechecks):7.2f}")


def scaling() -> None:
    cols = ("blocks", 7), ("chars", 9), ("check s", 9), ("x prev", 7), ("analyze s", 10), \
        ("x prev", 7)
    print("\nin one process, wall s (best of 3):")
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


def whole_commands(sizes: list[int]) -> None:
    print("\nwhole command, CPU s (x prev: the ratio to the previous size's time, per 10x "
          "blocks when sizes step by 10):")
    commands = {"check": ["check"], "analyze": ["analyze", "--bind", "T=128"],
                "analyze json": ["analyze", "--bind", "T=128", "--format", "json"]}
    print(f"{'blocks':>7}" + "".join(f" {name:>12} {'x prev':>6}" for name in commands))
    prev: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            spec = Path(tmp) / f"deep{n}.arch"
            spec.write_text(chain_spec(n), encoding="utf-8")
            # a block is 8 tokens and 5 nodes: past 10,000 blocks the default limits refuse
            limits = ["--limit", f"max_tokens={max(100_000, 10 * n)}",
                      "--limit", f"max_nodes={max(100_000, 6 * n)}"]
            line = f"{n:>7}"
            for name, command in commands.items():
                t = child_cpu([*CLI, *limits, command[0], str(spec), *command[1:]])
                ratio = f"{t / prev[name]:.1f}" if name in prev else "-"
                line += f" {t:>12.2f} {ratio:>6}"
                prev[name] = t
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="cold runs of each side")
    parser.add_argument("--blocks", type=int, nargs="+", default=[10_000],
                        help="spec sizes of the whole-command timings")
    parser.add_argument("--only-commands", action="store_true",
                        help="only the whole-command timings (part 4)")
    args = parser.parse_args()
    if not args.only_commands:
        cold_start(args.rounds)
        warm(args.rounds)
        scaling()
    whole_commands(args.blocks)


if __name__ == "__main__":
    main()
