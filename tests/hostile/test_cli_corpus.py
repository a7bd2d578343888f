"""The command-line corpus: hostile paths, data files and checkpoints given to `archdsl`.

A case is a folder `corpus/cli/<slug>/` holding `args` (a JSON list: the command line after
`archdsl`, where `\\udcff` stands for a byte that is not UTF-8), the files it reads, and
optionally `setup`, one directive a line, run in a copy of the folder before the command:

    copy NAME            NAME from corpus/cli/_shared (the specs most cases share)
    fifo NAME            a named pipe
    symlink NAME TARGET  a symbolic link (made here: a checkout may flatten committed ones)
    hardlink NAME TARGET
    folder NAME
    make NAME RECIPE     a file from hostile_files.RECIPES (data archives, checkpoints)

`<slug>.out` beside it holds the exit status and what the command printed. Every case also
holds, whatever its golden says: the exit status is never 3 and no traceback is printed; no
file of the folder changed, in content or kind (a FIFO stays a FIFO), and no file appeared,
except those the optional `writes` file lists. The machine's free memory is fixed at 8 GiB so
that the memory refusals read the same everywhere.

    ARCHDSL_BLESS=1 python -m pytest tests/hostile/test_cli_corpus.py   # rewrite the goldens
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import golden_cases
import hostile_files
import pytest
from typer.testing import CliRunner

from archdsl import memory
from archdsl.cli import app

CLI = Path(__file__).parent / "corpus" / "cli"
SHARED = CLI / "_shared"
CASES = sorted(p for p in CLI.iterdir() if p.is_dir() and not p.name.startswith("_"))
FREE_MEMORY = 8 * 2**30


def _setup(case: Path, work: Path) -> None:
    directives = case / "setup"
    if not directives.exists():
        return
    for line in directives.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        verb, name, *rest = line.split()
        target = work / name
        if verb == "copy":
            shutil.copy(SHARED / name, target)
        elif verb == "fifo":
            os.mkfifo(target)
        elif verb == "symlink":
            target.symlink_to(rest[0])
        elif verb == "hardlink":
            os.link(work / rest[0], target)
        elif verb == "folder":
            target.mkdir()
        elif verb == "make":
            target.parent.mkdir(parents=True, exist_ok=True)
            hostile_files.RECIPES[rest[0]](target)
        else:
            raise AssertionError(f"{case.name}/setup: unknown directive {verb!r}")


def _snapshot(folder: Path) -> dict[str, tuple[str, bytes | str | None]]:
    """Every entry under `folder` by relative path: its kind and content (never following a
    link, never opening a FIFO)."""
    out: dict[str, tuple[str, bytes | str | None]] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            mode = os.lstat(path).st_mode
            rel = path.relative_to(folder).as_posix()
            if stat.S_ISLNK(mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                out[rel] = ("file", path.read_bytes())
            else:
                out[rel] = (stat.filemode(mode)[0], None)
    return out


def run_case(case: Path, work: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    shutil.copytree(case, work, symlinks=True)
    _setup(case, work)
    for name in ("args", "setup", "writes"):
        (work / name).unlink(missing_ok=True)
    args = json.loads((case / "args").read_text(encoding="utf-8"))
    writes = (case / "writes").read_text(encoding="utf-8").split() \
        if (case / "writes").exists() else []
    before = _snapshot(work)
    monkeypatch.chdir(work)
    monkeypatch.setattr(memory, "available_bytes", lambda: FREE_MEMORY)
    result = CliRunner().invoke(app, args, env={"COLUMNS": "100", "NO_COLOR": "1"})
    output = result.stdout + result.stderr
    assert result.exit_code in (0, 1, 2), f"exit {result.exit_code}:\n{output}"
    assert "Traceback" not in output and "internal error" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    after = _snapshot(work)
    for rel in writes:
        assert rel in after and after[rel][0] == "file", f"{rel} was not written"
        for made in [rel, *(p.as_posix() for p in Path(rel).parents if p != Path("."))]:
            after.pop(made)
            before.pop(made, None)
    assert after == before, f"files changed: {sorted(set(after) ^ set(before)) or 'content'}"
    # the thread pools train sized depend on the machine and its load (archdsl/threads.py)
    output = re.sub(r"^threads: .*$", "threads: (sized for this machine)", output, flags=re.M)
    return f"exit {result.exit_code}\n{output}"


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    golden_cases.compare(case.with_suffix(".out"),
                         run_case(case, tmp_path / case.name, monkeypatch))


def test_every_out_has_its_case() -> None:
    stems = {c.name for c in CASES}
    assert not [p.name for p in CLI.glob("*.out") if p.stem not in stems]
