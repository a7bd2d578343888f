"""Threads that fit the machine: milliseconds per training step with the frameworks' own
thread pools ("framework"), with archdsl's default (the idle cores this process may use,
archdsl/threads.py) and with one thread, on the machine as it is and while `--busy K`
processes spin (one per core by default).

    .venv/bin/python bench/threads.py                 # both conditions, 3 rounds
    .venv/bin/python bench/threads.py --busy 0        # only the machine as it is

A thread pool is sized when its framework loads, so each configuration runs in a process of
its own; within a round the configurations run one after the other, in reverse order on odd
rounds, so a slow spell of the machine falls on all of them. Each process warms up, then
times `--steps` steps on the wall clock (waiting for a core is what makes training slow);
the table gives the median over the rounds and the ratio framework / archdsl.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("framework", "archdsl", "one")
WORKLOADS = ("numpy CNN", "torch CNN", "tensorflow CNN", "torch GAN")
STEPS = {"numpy CNN": 10, "torch CNN": 20, "tensorflow CNN": 20, "torch GAN": 20}
POOLS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
         "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def child(workload: str, config: str, steps: int) -> None:
    """Time `steps` training steps of `workload` under `config`; print JSON."""
    threads = None
    if config != "framework":
        from archdsl.threads import configure
        threads, _ = configure(1 if config == "one" else None)
    import numpy as np

    import archdsl
    backend, kind = workload.split()
    if kind == "GAN":
        from archdsl import gan
        g = archdsl.load(str(ROOT / "specs" / "digits_gan.arch")).graph()
        settings = gan.resolve(g)
        trainer = gan.make_trainer(backend, g, settings)
        real = gan.real_images(g)
        rng = np.random.default_rng(0)

        def step(i: int) -> None:
            start = i * 32 % (len(real) - 32)
            z = rng.normal(size=(32, *settings.latent)).astype(np.float32)
            trainer.d_step(real[start:start + 32], z)
            trainer.g_step(z)
    else:
        from archdsl import train
        from archdsl.data import load_dataset
        g = archdsl.load(str(ROOT / "specs" / "cnn_digits.arch")).graph()
        trainer = train.make_trainer(backend, g, train.resolve(g))
        batches = list(load_dataset("digits", g).batches("train", 32, np.random.default_rng(0)))

        def step(i: int) -> None:
            trainer.step(batches[i % len(batches)])
    for i in range(3):
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    ms = (time.perf_counter() - t0) / steps * 1000
    print(json.dumps({"ms": ms, "threads": threads}))


def run_child(workload: str, config: str, steps: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in POOLS}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run([sys.executable, __file__, "--child", workload, config, str(steps)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(workloads: list[str], rounds: int, steps: dict[str, int]) -> dict:
    results: dict[str, dict[str, list]] = {w: {c: [] for c in CONFIGS} for w in workloads}
    for r in range(rounds):
        for w in workloads:
            for config in CONFIGS if r % 2 == 0 else CONFIGS[::-1]:
                results[w][config].append(run_child(w, config, steps[w]))
    return results


def table(condition: str, results: dict, load: tuple[float, float]) -> None:
    print(f"\n{condition} (load average {load[0]:.1f} before, {load[1]:.1f} after)")
    print(f"{'workload':<16}{'framework ms':>14}{'archdsl ms':>12}{'threads':>9}"
          f"{'1 thread ms':>13}{'ratio':>8}")
    for w, by_config in results.items():
        med = {c: statistics.median(x["ms"] for x in runs) for c, runs in by_config.items()}
        picked = sorted({x["threads"] for x in by_config["archdsl"]})
        print(f"{w:<16}{med['framework']:>14.1f}{med['archdsl']:>12.1f}"
              f"{'/'.join(map(str, picked)):>9}{med['one']:>13.1f}"
              f"{med['framework'] / med['archdsl']:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=len(os.sched_getaffinity(0)),
                        help="spinning processes for the busy condition (0: skip it)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", metavar="TEXT", help="only the workloads containing TEXT")
    parser.add_argument("--quick", action="store_true",
                        help="one round of two steps, no busy condition: checks that it runs")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    workloads = [w for w in WORKLOADS if (args.only or "").lower() in w.lower()]
    steps = {w: 2 for w in workloads} if args.quick else STEPS
    rounds, busy = (1, 0) if args.quick else (args.rounds, args.busy)
    print(f"{len(os.sched_getaffinity(0))} cores; {rounds} round(s); ms per training step "
          "(batch 32; a GAN step is one discriminator and one generator step)")
    before = os.getloadavg()[0]
    table("the machine as it is", measure(workloads, rounds, steps),
          (before, os.getloadavg()[0]))
    if busy:
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(busy)]
        try:
            time.sleep(1)
            before = os.getloadavg()[0]
            results = measure(workloads, rounds, steps)
            after = os.getloadavg()[0]
        finally:
            for p in spinners:
                p.kill()
                p.wait()
        table(f"busy: {busy} other processes spinning", results, (before, after))


if __name__ == "__main__":
    main()
