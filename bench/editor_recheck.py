"""How long the language server takes to re-check a spec after an edit, side by side with a
check from scratch, in one process.

    python bench/editor_recheck.py [--quick] [--clock cpu|wall]

For each spec: `load` is `archdsl.load(path)` (parse and check every file, as `archdsl check`
does after start-up); `re-check` is what the server does after a keystroke, once its debounce
has passed: `archdsl.ide.analyze` of the edited text with the session's `ParseCache`, so only
the edited file is parsed again, plus the graphs kept for hover. The edit adds a line to the
spec's own file. The ratio is re-check / load: below 1, the server's cache pays.
"""

from __future__ import annotations

from itertools import count
from pathlib import Path

from _timing import interleave, machine, options, print_table

OPTIONS = options(__doc__)

import archdsl  # noqa: E402 - after the thread variables are set
from archdsl.ide import analyze  # noqa: E402
from archdsl.program import ParseCache  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = [("ResNet-50", "resnet50.arch"), ("GPT-2 small", "gpt2_small.arch"),
         ("seq2seq (imports)", "seq2seq_transformer.arch")]


def main() -> None:
    rows = []
    for name, file in SPECS:
        path = str(ROOT / "specs" / file)
        text = Path(path).read_text(encoding="utf-8")
        cache = ParseCache()
        edits = count()
        analyze(path, text, cache=cache)

        def recheck(path: str = path, text: str = text, cache: ParseCache = cache,
                    edits: count = edits) -> None:
            edited = f"{text}# edit {next(edits)}\n"
            assert not analyze(path, edited, cache=cache).diagnostics

        times = interleave({"load": lambda p=path: archdsl.load(p), "re-check": recheck},
                           rounds=2 if OPTIONS.quick else 7, steps=1 if OPTIONS.quick else 5,
                           warmup=1, clock=OPTIONS.clock)
        rows.append((name, 1000 * times["load"], 1000 * times["re-check"],
                     times["re-check"] / times["load"]))
    print(f"# {machine(OPTIONS)}")
    print_table(("spec", "load ms", "re-check ms", "ratio"), rows)


if __name__ == "__main__":
    main()
