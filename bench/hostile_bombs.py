"""Resource bombs: how fast each is refused, with which error and where; then parse + check
time against spec size (bench/frontend_scaling.py).

    python bench/hostile_bombs.py

Every bomb must be refused with a located error within a second (the `<= 1 s` column);
tests/hostile/test_bombs.py checks the codes and locations without timing them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import frontend_scaling

import archdsl

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


# name: (spec text, the code it must be refused with)
BOMBS: dict[str, tuple[Callable[[], str], str]] = {
    "repeat * 1000000000": (lambda: _model("    x = x |> Linear(4) * 1000000000\n"), "E0801"),
    "100,000 nested parentheses": (
        lambda: _model("    x = x * " + "(" * 100_000 + "1" + ")" * 100_000 + "\n"), "E0801"),
    "100,000-term expression": (lambda: expression_bomb(100_000), "E0801"),
    "huge dimension": (lambda: "model Net {\n    input x: [B, 99999999999999]\n"
                       "    output y = x\n}\n", "E0801"),
    "100 nested blocks": (lambda: _deep_blocks(100), "E0801"),
    "10 MB spec": (lambda: _model("    x = x\n" * 1_000_000), "E0801"),
    "1,000,000-character identifier": (
        lambda: _model(f"    x = x + {'a' * 1_000_000}\n"), "E0801"),
    "range(1000000000)": (
        lambda: _model("    for i in range(1000000000) {\n        x = x\n    }\n"), "E0801"),
    "two nested range(5000)": (
        lambda: _model("    for i in range(5000) {\n        for j in range(5000) {\n"
                       "            x = x\n        }\n    }\n"), "E0801"),
}


def refuse(text: str) -> archdsl.Diagnostic:
    """The first diagnostic refusing `text`; fails loudly if the spec loads."""
    try:
        archdsl.load(text)
    except archdsl.SpecError as err:
        return err.diagnostics[0]
    raise AssertionError("the bomb loaded")


def main() -> None:
    print(f"{'bomb':<32} {'chars':>11} {'refused s':>10} {'<= 1 s':>7}  error")
    for name, (make, _) in BOMBS.items():
        text = make()
        start = time.perf_counter()
        d = refuse(text)
        seconds = time.perf_counter() - start
        where = f" at {d.loc}" if d.loc else ""
        print(f"{name:<32} {len(text):>11,} {seconds:>10.3f} {'yes' if seconds <= 1 else 'NO':>7}"
              f"  {d.code}{where}: {d.message}")
    print()
    frontend_scaling.main()


if __name__ == "__main__":
    main()
