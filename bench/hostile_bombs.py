"""Resource bombs: how fast each is refused (or, for error floods, reported), with which error
and where; then parse + check time against spec size (bench/frontend_scaling.py).

    python bench/hostile_bombs.py [--no-scaling]

Every bomb must be refused within a second of CPU time (the `<= 1 s` column: the process's own
CPU time, which a machine shared with other jobs does not inflate as it does wall time, shown
beside it). Most are specs given to
`archdsl.load`; a spec whose only excess is its parameter count is given to `archdsl.build`
(checking it is fine: analyzing a GPT-3-sized spec is a feature); data bombs are `.npz` files
given to `archdsl.data.load_npz`. tests/hostile/test_bombs.py checks the codes, locations and
messages without timing them.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import frontend_scaling
import numpy as np

import archdsl
from archdsl.data import DataError, load_npz

MODEL = "model Net {{\n    input x: [B, 4]\n{body}    output y = x\n}}\n"


def _model(body: str) -> str:
    return MODEL.format(body=body)


def expression_bomb(terms: int) -> str:
    """`x + x + ...`: deep without brackets, so only found once parsed (see docs/limits.md)."""
    return _model("    x = x" + " + x" * terms + "\n")


def _deep_blocks(n: int) -> str:
    blocks = [f"block L{i} {{\n    input x: [B, 4]\n    output y = x |> L{i + 1}\n}}\n"
              for i in range(n)]
    blocks.append(f"block L{n} {{\n    input x: [B, 4]\n    output y = x\n}}\n")
    return "".join(blocks) + _model("    x = x |> L0\n")


def _chain(prefix: str, unit: str, suffix: str, budget: int = 3_900_000) -> str:
    """One statement `prefix unit unit ... suffix` as long as the size limit lets it be."""
    repeats = (budget - len(prefix)) // len(unit)
    return _model(f"    c = {prefix}" + unit * repeats + f"{suffix}\n")


def _unrolled() -> str:
    return ("block A {\n    input x: [B, 4]\n    output y = x |> ReLU * 9900\n}\n"
            + _model("    for i in range(100) {\n        x = x |> A\n    }\n"))


# name: (spec text, the code it must be refused with, how: "load" or "build")
BOMBS: dict[str, tuple[Callable[[], str], str, str]] = {
    "repeat * 1000000000": (lambda: _model("    x = x |> Linear(4) * 1000000000\n"), "E0801",
                            "load"),
    "100,000 nested parentheses": (
        lambda: _model("    x = x * " + "(" * 100_000 + "1" + ")" * 100_000 + "\n"), "E0801",
        "load"),
    "100,000-term expression": (lambda: expression_bomb(100_000), "E0801", "load"),
    "huge dimension": (lambda: "model Net {\n    input x: [B, 99999999999999]\n"
                       "    output y = x\n}\n", "E0801", "load"),
    "100 nested blocks": (lambda: _deep_blocks(100), "E0801", "load"),
    "10 MB spec": (lambda: _model("    x = x\n" * 1_000_000), "E0801", "load"),
    "1,000,000-character identifier": (
        lambda: _model(f"    x = x + {'a' * 1_000_000}\n"), "E0801", "load"),
    "range(1000000000)": (
        lambda: _model("    for i in range(1000000000) {\n        x = x\n    }\n"), "E0801",
        "load"),
    "two nested range(5000)": (
        lambda: _model("    for i in range(5000) {\n        for j in range(5000) {\n"
                       "            x = x\n        }\n    }\n"), "E0801", "load"),
    "range(2**64)": (lambda: _model("    for i in range(2**64) {\n        x = x\n    }\n"),
                     "E0406", "load"),
    "not not ... (1M)": (lambda: _chain("", "not ", "true"), "E0801", "load"),
    "if ... else if ... (190k)": (lambda: _chain("", "if true then 1 else ", "0"), "E0801",
                                  "load"),
    "and ... and (430k)": (lambda: _chain("true", " and true", ""), "E0801", "load"),
    ".attr chain (1.9M)": (lambda: _chain("x", ".w", ""), "E0801", "load"),
    "call chain (1.3M)": (lambda: _chain("relu", "(x)", ""), "E0801", "load"),
    "index chain (1.3M)": (lambda: _chain("x", "[0]", ""), "E0801", "load"),
    "string doubled 40 times": (
        lambda: _model('    s = "ab"\n' + "    s = s + s\n" * 40), "E0801", "load"),
    "symbolic size squared 40 times": (
        lambda: "model Net {\n    input x: [B, T]\n    t = T\n" + "    t = t * t\n" * 40
        + "    output y = x\n}\n", "E0801", "load"),
    "coefficient past 4,300 digits": (
        lambda: "model Net {\n    input x: [B, T]\n    t = T\n"
        + "    t = t * 1000000000000000000\n" * 300 + "    output y = x\n}\n", "E0801", "load"),
    "[B, T * 2**120] in a type": (
        lambda: "model Net {\n    input x: [B, T]\n    input y: [B, T * 2**60 * 2**60]\n"
        "    output z = y\n}\n", "E0801", "load"),
    "LSTM(8, layers=2**40)": (
        lambda: "model Net {\n    input x: [B, T, 8]\n    output y = x |> LSTM(8, layers=2**40)"
        "\n}\n", "E0403", "load"),
    "200,000 statements": (lambda: _model("    x = x\n" * 200_000), "E0801", "load"),
    "7 lines unrolling to 990,000 layers": (_unrolled, "E0801", "load"),
    "8,000 duplicate models": (
        lambda: "model Net {\n    input x: [B]\n    output y = x\n}\n" * 8000, "E0801", "load"),
    "8,000 duplicate constants": (lambda: "const K = 1\n" * 8000 + _model(""), "E0202", "load"),
    "8,000 independent errors": (
        lambda: _model("".join(f"    a{i} = undefined{i}\n" for i in range(8000))), "E0201",
        "load"),
    "Linear(2**36) built": (lambda: _model("    h = x |> Linear(2**36)\n"), "E0801", "build"),
}


def _npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False,
                                               "shape": shape})
    return out.getvalue()


def claim_4tb(path: Path) -> None:
    """An .npy header claiming [2**40, 4] float32 (16 TB) over 16 bytes."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", _npy_header((2**40, 4), "<f4") + bytes(16))
        z.writestr("target.npy", _npy_header((4,), "<i8") + bytes(32))


BOMB_MB = 1200  # tests/hostile/test_bombs.py makes a smaller one


def deflate_bomb(path: Path) -> None:
    """1.2 GB of zeros deflated to about 1.2 MB, shaped unlike the spec's input."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("x.npy", "w", force_zip64=True) as f:
            f.write(_npy_header((BOMB_MB * 2**17, 1), "<f8"))
            chunk = bytes(2**20)
            for _ in range(BOMB_MB):
                f.write(chunk)
        z.writestr("target.npy", _npy_header((4,), "<i8") + bytes(32))


# name: (write the file, a phrase the DataError must hold)
DATA_BOMBS: dict[str, tuple[Callable[[Path], None], str]] = {
    ".npz header claiming 16 TB": (claim_4tb, "truncated or forged"),
    "1.2 MB deflate bomb (1.2 GB inflated)": (deflate_bomb, "dimension 1 differs"),
}
DATA_SPEC = "model Net {\n    input x: [B, 4]\n    output y = x |> Linear(3)\n}\n"


def refuse(text: str, how: str = "load") -> archdsl.Diagnostic:
    """The first diagnostic refusing `text`; fails loudly if the spec loads (or builds)."""
    try:
        program = archdsl.load(text)
        if how == "build":
            archdsl.build(program, backend="numpy")
    except archdsl.SpecError as err:
        return err.diagnostics[0]
    raise AssertionError("the bomb loaded")


def refuse_data(path: Path) -> str:
    """The DataError refusing the archive at `path`, for a model `x: [B, 4]` to 3 classes."""
    try:
        load_npz(path, archdsl.load(DATA_SPEC).graph(), seed=0)
    except DataError as exc:
        return str(exc)
    raise AssertionError("the data bomb loaded")


def _timed(work: Callable[[], object]) -> tuple[Any, float, float]:
    """What `work` returns, its CPU seconds and its wall seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = work()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-scaling", action="store_true",
                        help="only the bombs, not the front-end scaling table")
    options = parser.parse_args()
    print(f"{'bomb':<38} {'bytes':>11} {'CPU s':>7} {'wall s':>7} {'<= 1 s':>7}  error")
    for name, (make, _, how) in BOMBS.items():
        text = make()
        d, cpu, wall = _timed(lambda t=text, h=how: refuse(t, h))
        where = f" at {d.loc}" if d.loc else ""
        print(f"{name:<38} {len(text.encode()):>11,} {cpu:>7.3f} {wall:>7.3f} "
              f"{'yes' if cpu <= 1 else 'NO':>7}  {d.code}{where}: {d.message}")
    with tempfile.TemporaryDirectory() as folder:
        for name, (write, _) in DATA_BOMBS.items():
            path = Path(folder) / "bomb.npz"
            write(path)
            message, cpu, wall = _timed(lambda p=path: refuse_data(p))
            print(f"{name:<38} {path.stat().st_size:>11,} {cpu:>7.3f} {wall:>7.3f} "
                  f"{'yes' if cpu <= 1 else 'NO':>7}  {message.split(': ', 1)[1][:100]}")
    if not options.no_scaling:
        print()
        frontend_scaling.main()


if __name__ == "__main__":
    main()
