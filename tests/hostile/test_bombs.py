"""Each resource bomb of bench/hostile_bombs.py is refused with its code, at a location inside
the spec, and each data bomb with its message (the bench times them; this only checks what
they are refused with)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from diagnostic_checks import assert_located

import archdsl

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench():
    sys.path.insert(0, str(BENCH))  # the bench imports its neighbour frontend_scaling
    try:
        spec = importlib.util.spec_from_file_location("hostile_bombs", BENCH / "hostile_bombs.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


BOMBS = _bench()


@pytest.mark.parametrize("name", BOMBS.BOMBS)
def test_bomb_is_refused_with_its_code(name: str) -> None:
    make, code, how = BOMBS.BOMBS[name]
    text = make()
    with pytest.raises(archdsl.SpecError) as info:
        program = archdsl.load(text)
        if how == "build":
            archdsl.build(program, backend="numpy")
    assert info.value.codes[0] == code, str(info.value)[:2000]
    assert info.value.diagnostics[0].loc is not None
    assert_located(info.value, text)


@pytest.mark.parametrize("name", BOMBS.DATA_BOMBS)
def test_data_bomb_is_refused_from_its_headers(name: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BOMBS, "BOMB_MB", 16)  # the same refusal as 1,200 MB, quicker to write
    write, phrase = BOMBS.DATA_BOMBS[name]
    write(tmp_path / "bomb.npz")
    assert phrase in BOMBS.refuse_data(tmp_path / "bomb.npz")
