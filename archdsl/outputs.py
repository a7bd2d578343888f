"""The files commands read and write, checked before anything is opened.

A spec argument must be an existing regular file (`-`, a folder or a FIFO is refused, never read
as spec text or opened to block), and every file archdsl reads is opened without blocking and
checked to be a regular file (`open_regular`). `train --out` must be a folder or a new path. An
output path (`compile -o`, `graph -o`) must be a new path
or a regular file, and not one of the specs being read; a symbolic link is refused rather than
followed, so `-o` can never write somewhere else than the path given. The content goes to a
temporary file beside the target, created exclusively, flushed to disk and renamed over it, so
the target is either untouched or complete; the temporary file is removed on every exit path.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import IO


class PathRefused(ValueError):
    """A path a command will not read or write; the message says why."""


def _what(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def check_spec_file(path: Path) -> Path:
    """`path`, if it names an existing regular file (through symbolic links)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        hint = " (specs are read from files, not from standard input)" if str(path) == "-" else ""
        raise PathRefused(f"{path}: no such file{hint}") from None
    except OSError as exc:
        raise PathRefused(f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise PathRefused(f"{path} is {_what(mode)}, not a spec file")
    return path


def open_regular(path: str | os.PathLike) -> IO[bytes]:
    """`path` opened for reading if it is a regular file (through links); a FIFO or a device
    is refused without waiting on it, as the check and the open are one."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise PathRefused(f"cannot open it: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise PathRefused(f"it is {_what(mode)}, not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def check_output_folder(path: Path) -> None:
    """A folder for a command's files (`train --out`): a folder, a link to one, or new."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise PathRefused(f"cannot use {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(mode):
        raise PathRefused(f"{path} is {_what(mode)}; --out names a folder for the checkpoint, "
                          "metrics and plots")


def check_output(path: Path, reading: Iterable[str | os.PathLike]) -> os.stat_result | None:
    """Refuse an output path that is not a new path or a regular file, or that is a file being
    read. Returns the existing file's status, or None for a new path."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PathRefused(f"cannot write {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise PathRefused(f"{path} is a symbolic link: archdsl does not write through links; "
                          "give the path of the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise PathRefused(f"cannot write {path}: it is {_what(st.st_mode)}")
    for source in reading:
        try:
            if os.path.samestat(st, os.stat(source)):
                raise PathRefused(f"{path} is the spec {os.fspath(source)}: writing there "
                                  "would replace it; choose another output path")
        except OSError:
            continue
    return st


def write_output(path: Path, data: str | bytes, reading: Iterable[str | os.PathLike] = ()
                 ) -> None:
    """Write `data` (text is UTF-8) to `path` atomically, after `check_output`."""
    reading = list(reading)
    existing = check_output(path, reading)
    content = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathRefused(f"cannot create the folder of {path}: {exc.strerror}") from None
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # exclusive and not following links; mode 0o666 less the umask, as a new file gets
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o666)
    except OSError as exc:
        raise PathRefused(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        if existing is not None:
            os.chmod(tmp, stat.S_IMODE(existing.st_mode))
        check_output(path, reading)  # again: a link or a pipe put there meanwhile is refused
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
