"""Nothing lost: what a kill, a failing disk or a lack of memory leaves behind.

A `kill -9` at either side of the checkpoint's rename leaves no temporary file once the run
resumes, and no epoch twice in metrics.jsonl; a write that fails leaves the target as it was
and no temporary file; memory is checked before archives, builds and training allocate.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import hostile_files
import numpy as np
import pytest

import archdsl
from archdsl import checkpoint, memory
from archdsl.data import DataError, load_npz
from archdsl.limits import Limits
from archdsl.outputs import PathRefused, write_output
from archdsl.train import fit

SHARED = Path(__file__).parent / "corpus" / "cli" / "_shared"
ROOT = Path(__file__).resolve().parents[2]

# Train mlp.arch (numpy) for two epochs, killed with SIGKILL at the second checkpoint save:
# before its rename ("before") or right after it, before metrics.jsonl gets the row ("after").
KILLED_RUN = """
import os, signal, sys
from pathlib import Path
import archdsl
from archdsl import checkpoint, train
when, folder = sys.argv[1], Path(sys.argv[2])
real_save, real_replace, saves = checkpoint.save, os.replace, []

def replace(src, dst):
    if when == "before" and len(saves) == 2 and Path(dst).name == "checkpoint.npz":
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)

def save(*args, **kwargs):
    saves.append(1)
    real_save(*args, **kwargs)
    if when == "after" and len(saves) == 2:
        os.kill(os.getpid(), signal.SIGKILL)

checkpoint.os.replace, checkpoint.save = replace, save
spec = folder / "mlp.arch"
train.fit(archdsl.load(spec).graph(), spec.read_text(encoding="utf-8"), "numpy", folder / "run",
          data=str(folder / "data.npz"), epochs=2, progress=False, log=lambda m: None)
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_at_the_checkpoint_rename_then_resume(when: str, tmp_path: Path) -> None:
    shutil.copy(SHARED / "mlp.arch", tmp_path / "mlp.arch")
    hostile_files.RECIPES["ok"](tmp_path / "data.npz")
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, when, str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run = tmp_path / "run"
    leftovers = [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    assert leftovers if when == "before" else not leftovers  # what the kill left
    spec = tmp_path / "mlp.arch"
    fit(archdsl.load(spec).graph(), spec.read_text(encoding="utf-8"), "numpy", run,
        data=str(tmp_path / "data.npz"), epochs=3, resume=True, progress=False,
        log=lambda m: None)
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text()
              .splitlines()]
    assert epochs == [1, 2, 3]
    _, meta = checkpoint.load(run / "checkpoint.npz")
    assert [row["epoch"] for row in meta["history"]] == [1, 2, 3]


def test_a_live_process_keeps_its_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "checkpoint.npz"
    mine = tmp_path / f".checkpoint.npz.{os.getpid()}.tmp"
    mine.write_bytes(b"being written")
    checkpoint.remove_stale_temporaries(target)
    assert mine.exists()


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    target = tmp_path / "model.py"
    target.write_text("previous\n")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        write_output(target, "new\n")
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["model.py"]


def test_write_output_keeps_the_targets_mode(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    target.write_text("previous\n")
    target.chmod(0o640)
    write_output(target, "new\n")
    assert target.read_text() == "new\n" and (target.stat().st_mode & 0o777) == 0o640


def test_write_output_refuses_a_link_put_in_place_after_the_first_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check runs again right before the rename: a link swapped in meanwhile is refused,
    and the file it points to is untouched."""
    target, victim = tmp_path / "model.py", tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    real_fsync = os.fsync

    def swap(fd: int) -> None:
        real_fsync(fd)
        if not target.exists():
            target.symlink_to(victim)

    monkeypatch.setattr(os, "fsync", swap)
    with pytest.raises(PathRefused, match="symbolic link"):
        write_output(target, "new\n")
    assert victim.read_text() == "keep me\n" and target.is_symlink()
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_archive_larger_than_free_memory_is_refused_unread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data.npz"
    hostile_files.RECIPES["ok"](path)
    monkeypatch.setattr(memory, "available_bytes", lambda: 100)
    mlp = archdsl.load(SHARED / "mlp.arch").graph()
    with pytest.raises(DataError, match="this machine has 100 B free"):
        load_npz(path, mlp, seed=0)


def test_build_refuses_weights_larger_than_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    spec = "model Net {\n    input x: [B, 1024]\n    output y = x |> Linear(1024)\n}\n"
    with pytest.raises(archdsl.SpecError, match="does not fit in memory") as info:
        archdsl.build(spec, backend="numpy")
    assert info.value.codes == ["E0801"]


def test_max_params_can_be_raised() -> None:
    program = archdsl.load("model Net {\n    input x: [B, 4]\n    output y = x |> Linear(4)\n}\n",
                           limits=Limits(max_params=10))
    with pytest.raises(archdsl.SpecError, match="20 parameters"):
        archdsl.build(program, backend="numpy")


def test_available_bytes_reads_this_machine() -> None:
    free = memory.available_bytes()
    assert free is None or free > 0


def test_every_limit_is_documented() -> None:
    """docs/limits.md's table names every field of Limits with its default."""
    table = (ROOT / "docs" / "limits.md").read_text(encoding="utf-8")
    for name, field in Limits.model_fields.items():
        default = "2^40" if name == "max_dim" else f"{field.default:,}"
        assert f"| `{name}` | {default} |" in table, name


def test_the_checkpoint_temporary_name_is_what_removal_looks_for(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """`save`'s temporary file of a process that died is found and removed."""
    target = tmp_path / "checkpoint.npz"
    made: list[Path] = []
    real_replace = os.replace

    def record(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        made.append(Path(src))
        raise OSError("killed")

    monkeypatch.setattr(checkpoint.os, "replace", record)
    with pytest.raises(OSError):
        checkpoint.save(target, {"w": np.zeros(2)}, {"epoch": 0})
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)
    dead = made[0].with_name(made[0].name.replace(str(os.getpid()), "999999999"))
    dead.write_bytes(b"left by a kill")
    checkpoint.remove_stale_temporaries(target)
    assert not dead.exists()


def test_a_meta_build_is_not_refused() -> None:
    """torch's meta device allocates nothing, so a model of any size may be built on it."""
    spec = "model Net {\n    input x: [B, 8]\n    output y = x |> Linear(2**36)\n}\n"
    model = archdsl.build(spec, backend="torch", device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 2**36 * 9
