"""Reading `.npz` archives (training data, checkpoints) without trusting them.

An `.npz` is a zip of `.npy` files. Opening an `Archive` reads every member's `.npy` header
(dtype and shape) and checks it against the size the zip directory records, so the caller can
check names, dtypes and shapes before any array is read, and `read` checks what it is asked to
read against the memory this machine has free: a 4 TB claim or a deflate bomb is refused from
the headers alone, and a member that inflates past its recorded size fails zip's own checks.
Nothing is unpickled, and a path that is not a regular file (a FIFO) is refused without
blocking on it.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archdsl.memory import MemoryRefused, check_fits
from archdsl.outputs import PathRefused, open_regular

_NPY_MAGIC = b"\x93NUMPY"


class ArchiveError(ValueError):
    """A file that is not a readable `.npz` of plain arrays; the message says what is wrong."""


@dataclass(frozen=True)
class Header:
    """One array as its `.npy` header describes it."""

    dtype: np.dtype
    shape: tuple[int, ...]
    fortran: bool
    nbytes: int
    info: zipfile.ZipInfo

    @property
    def ndim(self) -> int:
        return len(self.shape)


class Archive:
    """`with Archive(path) as a:` then `a.headers` (name -> Header) and `a.read(names)`."""

    def __init__(self, path: Path):
        try:
            self._file = open_regular(path)
        except PathRefused as exc:
            raise ArchiveError(str(exc)) from None
        try:
            head = self._file.read(len(_NPY_MAGIC))
            if head == _NPY_MAGIC:
                raise ArchiveError("it is a single .npy array, not an .npz archive; save named "
                                   "arrays with numpy.savez")
            self._file.seek(0)
            with _zip_errors():
                self._zip = zipfile.ZipFile(self._file)
                self.headers = {_key(info): _header(self._zip, info)
                                for info in self._zip.infolist()}
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self._zip.close()
        self._file.close()

    def read(self, names: list[str]) -> dict[str, np.ndarray]:
        """The arrays `names`, once their total size is known to fit in memory."""
        total = sum(self.headers[n].nbytes for n in names)
        try:
            check_fits(total, f"reading {', '.join(names)}")
        except MemoryRefused as exc:
            raise ArchiveError(str(exc)) from None
        with _zip_errors():
            return {n: self._read(n) for n in names}

    def _read(self, name: str) -> np.ndarray:
        h = self.headers[name]
        order = "F" if h.fortran else "C"
        if not h.nbytes:
            return np.empty(h.shape, dtype=h.dtype, order=order)
        data = np.empty(h.nbytes, dtype=np.uint8)
        view = memoryview(data)
        with self._zip.open(h.info) as fp:
            fp.seek(h.info.file_size - h.nbytes)
            filled = 0
            while filled < h.nbytes:
                n = fp.readinto(view[filled:])
                if not n:
                    raise ArchiveError(f"`{name}` ends after {filled:,} of its {h.nbytes:,} "
                                       "bytes")
                filled += n
        return data.view(h.dtype).reshape(h.shape, order=order)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, by name, after checking every header."""
    with Archive(path) as archive:
        return archive.read(list(archive.headers))


@contextmanager
def _zip_errors() -> Iterator[None]:
    """zipfile's exceptions (a truncated file, a bad CRC, an unknown method) as ArchiveError."""
    try:
        yield
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise ArchiveError(f"it is not a valid zip archive ({exc})") from None


def _key(info: zipfile.ZipInfo) -> str:
    if not info.filename.endswith(".npy") or info.is_dir():
        raise ArchiveError(f"it holds {info.filename!r}, which is not an .npy array")
    return info.filename[:-len(".npy")]


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Header:
    key = _key(info)
    with archive.open(info) as fp:
        try:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                raise ArchiveError(f"`{key}` uses .npy format {version[0]}.{version[1]}; "
                                   "save it with numpy.savez's defaults")
        except ValueError as exc:
            raise ArchiveError(f"`{key}` has no valid .npy header ({exc})") from None
        start = fp.tell()
    if dtype.hasobject:
        raise ArchiveError(f"`{key}` holds Python objects ({dtype}); archdsl never unpickles: "
                           "save plain numeric arrays")
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size != start + nbytes:
        raise ArchiveError(f"`{key}`'s header claims {list(shape)} {dtype} ({nbytes:,} bytes), "
                           f"but the archive records {max(0, info.file_size - start):,} bytes "
                           "of data: the file is truncated or forged")
    return Header(dtype, tuple(shape), fortran, nbytes, info)
