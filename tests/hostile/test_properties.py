"""Property tests for the second hostile round: whatever these generators make, archdsl answers
with a located diagnostic or a clear data/checkpoint error, never an internal error (E9999),
a traceback or exit 3.

Generators: scalar and symbolic arithmetic mixing integers, floats, huge and tiny numbers and
symbolic sizes, in every place a number or a size goes; long unary and postfix chains across
the nesting limit; files of definitions whose names repeat; `--data` archives of random names,
dtypes and shapes, and valid archives and checkpoints with bytes flipped, cut or their `meta`
replaced by random JSON; command lines of hostile options and output paths. Seeds are fixed
(`derandomize`), so a failure reproduces. There is no deadline: a loaded machine must not make
a test fail (speed is bench/hostile_bombs.py's to show), and example counts keep the whole
file to about a minute.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
from pathlib import Path

import hostile_files
import numpy as np
import pytest
from diagnostic_checks import assert_located
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import archdsl
from archdsl import checkpoint
from archdsl.cli import app
from archdsl.data import DataError, check_labels, load_npz

COMMON = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.function_scoped_fixture])


def refused_or_loaded(text: str) -> archdsl.Program | None:
    """Load `text`; a refusal must be located and not internal."""
    try:
        return archdsl.load(text)
    except archdsl.SpecError as err:
        assert_located(err, text)
        return None


# ---- scalar and symbolic arithmetic ----------------------------------------------------------
NUMBERS = st.sampled_from([
    "0", "1", "-1", "2", "3", "7", "0.5", "-0.5", "2.0", "1e-3", "1e300", "1e-300", "5e-324",
    "1.7976931348623157e308", "2**62", "2**63", "2**64", "-2**63", "10**18", "10**29",
    "999999999999999999999999999999", "2**1000", "1_000_000", "true", '"a"'])
SIZES = st.sampled_from(["B", "T", "C"])
OPERATORS = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<", "<=", "==", "!=", ">"])


def arithmetic(depth: int = 3) -> st.SearchStrategy[str]:
    leaf = NUMBERS | SIZES
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, OPERATORS, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"-{e}"),
        st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"(if {t[0]} > 0 then {t[1]} else {t[2]})"),
    ), max_leaves=2**depth)


# Where a number or a size goes: `@` is the expression.
PLACES = [
    "    n = @\n    output y = x\n",
    "    output y = reshape(x, [B, @])\n",
    "    output y = x |> Linear(@)\n",
    "    output y = x * @\n",
    "    output y = x |> LeakyReLU(@)\n",
    "    for i in range(@) {\n        x = x\n    }\n    output y = x\n",
    "    assert x: [B, T, @]\n    output y = x\n",
    "    output y = x[:, @]\n",
    "    output y = x[:, 0:@]\n",
    "    output y = expand(x, [B, T, @])\n",
    "    output y = mean(x, dim=@)\n",
    "    h = x |> Conv1d(@, kernel=@)\n    output y = h\n",
    "    assert @ > 0, \"positive\"\n    output y = x\n",
]
ARITH_MODEL = "model Net(k: int = 3, f: float = 0.5) {{\n    input x: [B, T, C]\n{body}}}\n"


@settings(COMMON, max_examples=300)
@given(st.sampled_from(PLACES), arithmetic())
def test_arithmetic_anywhere(place: str, expr: str) -> None:
    refused_or_loaded(ARITH_MODEL.format(body=place.replace("@", expr)))


@settings(COMMON, max_examples=60)
@given(st.sampled_from(["k", "f"]), NUMBERS | st.sampled_from(["inf", "-inf", "nan", "1e400",
                                                               "0x10", "", "1__0", "\udcff"]))
def test_parameters_from_the_command_line(name: str, value: str) -> None:
    spec = ARITH_MODEL.format(body="    output y = x |> Linear(k) * f\n")
    try:
        archdsl.load(spec).graph(params={name: value})
    except archdsl.SpecError as err:
        assert_located(err, spec)


# ---- long unary and postfix chains -----------------------------------------------------------
CHAINS = {
    "not": ("", "not ", "true"), "minus": ("", "-", "1"), "if": ("", "if true then 1 else ", "0"),
    "and": ("true", " and true", ""), "attribute": ("x", ".w", ""), "call": ("relu", "(x)", ""),
    "index": ("x", "[0]", ""), "power": ("2", " ** 2", ""), "pipe": ("x", " |> ReLU", ""),
    "parentheses": ("(" * 0, "(", ""),
}


@settings(COMMON, max_examples=120)
@given(st.sampled_from(sorted(CHAINS)), st.integers(1, 1200),
       st.sampled_from(["", "x + ", "(", "[", "f("]))
def test_long_chains(kind: str, length: int, around: str) -> None:
    prefix, unit, suffix = CHAINS[kind]
    body = prefix + unit * length + suffix
    if kind == "parentheses":
        body = "(" * length + "1" + ")" * length
    closing = {"(": ")", "[": "]", "f(": ")"}.get(around, "")
    refused_or_loaded("model Net {\n    input x: [B, 4]\n    c = " + around + body + closing
                      + "\n    output y = x\n}\n")


# ---- repeated definitions --------------------------------------------------------------------
NAMES = st.sampled_from(["Net", "Blk", "K", "x", "y", "n"])
DEFINITIONS = st.sampled_from([
    "const {0} = 1\n",
    "block {0}(n: int = 4) {{\n    input x: [B, 4]\n    output y = x |> Linear(n)\n}}\n",
    "model {0} {{\n    input x: [B, 4]\n    output y = x\n}}\n",
    "model {0}({0}: int = 2, {0}: int = 3) {{\n    input x: [B, 4]\n    output y = x\n}}\n",
    "model {0} {{\n    input {0}: [B, 4]\n    input {0}: [B, 4]\n    output {0} = {0}\n"
    "    output {0} = {0}\n}}\n",
    "block {0} {{\n    input x: [B, 4]\n    {0} = Linear(4)\n    output y = x |> {0} |> {0}\n}}\n",
])


@settings(COMMON, max_examples=150)
@given(st.lists(st.tuples(DEFINITIONS, NAMES), min_size=1, max_size=40))
def test_repeated_definitions(items: list[tuple[str, str]]) -> None:
    refused_or_loaded("".join(template.format(name) for template, name in items))


@pytest.mark.parametrize("count", [1_000, 8_000])
def test_thousands_of_duplicates_are_each_reported_once(count: int) -> None:
    text = "const K = 1\n" * count + "model Net {\n    input x: [B]\n    output y = x\n}\n"
    with pytest.raises(archdsl.SpecError) as info:
        archdsl.load(text)
    assert info.value.codes == ["E0202"] * (count - 1)
    assert len({d.loc.line for d in info.value.diagnostics}) == count - 1


# ---- hostile --data files ---------------------------------------------------------------------
DTYPES = st.sampled_from(["<f4", "<f8", "<f2", "<i8", "<i4", "|u1", "|b1", "<U3", "<c8", "|S2",
                          "<M8[s]", "V4"])
SHAPES = st.lists(st.integers(0, 7), max_size=3).map(tuple)
KEYS = st.sampled_from(["x", "target", "test_x", "test_target", "labels", "extra"])


def random_array(draw: st.DrawFn) -> np.ndarray:
    dtype, shape = np.dtype(draw(DTYPES)), draw(SHAPES)
    data = draw(st.binary(min_size=dtype.itemsize * int(np.prod(shape)),
                          max_size=dtype.itemsize * int(np.prod(shape))))
    return np.frombuffer(data, dtype=dtype).reshape(shape) if data else np.zeros(shape, dtype)


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    """Random arrays under likely and unlikely names, or a valid archive spoiled."""
    out = io.BytesIO()
    if draw(st.booleans()):
        arrays = {k: random_array(draw) for k in draw(st.lists(KEYS, max_size=5, unique=True))}
        np.savez(out, **arrays)
        return out.getvalue()
    n = draw(st.integers(0, 12))
    np.savez(out, x=hostile_files.X[:n], target=hostile_files.Y[:n])
    return spoil(draw, out.getvalue())


def spoil(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with bytes overwritten, cut, or left whole."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


SHARED = Path(__file__).parent / "corpus" / "cli" / "_shared"
MLP = archdsl.load(SHARED / "mlp.arch").graph()


@settings(COMMON, max_examples=250)
@given(data=archives())
def test_data_files(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    path.write_bytes(data)
    try:
        dataset = load_npz(path, MLP, seed=0)
        for loss in ("cross_entropy", "bce_with_logits", "mse"):
            try:
                check_labels(dataset, MLP, loss)
            except DataError:
                pass
    except DataError as exc:
        assert str(exc).startswith(str(path))


# ---- hostile checkpoints ----------------------------------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 2**70) | st.floats()
                    | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["epoch", "step", "history", "rng",
                                                       "shuffle_state", "epoch_losses",
                                                       "bit_generator", "state"]), inner,
                                      max_size=4), max_leaves=12)


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid checkpoint of mlp.arch at <folder>/run/checkpoint.npz, data in <folder>."""
    folder = tmp_path_factory.mktemp("ckpt")
    shutil.copy(SHARED / "mlp.arch", folder / "mlp.arch")
    hostile_files.RECIPES["ok"](folder / "data.npz")
    path = folder / "run" / "checkpoint.npz"
    path.parent.mkdir()
    checkpoint.save(path, *hostile_files.valid_checkpoint(path))
    return path


@settings(COMMON, max_examples=150)
@given(st.data())
def test_checkpoint_files(saved_checkpoint: Path, data: st.DataObject) -> None:
    raw = saved_checkpoint.read_bytes()
    target = saved_checkpoint.parent / "hostile" / "checkpoint.npz"
    target.parent.mkdir(exist_ok=True)
    if data.draw(st.booleans()):
        target.write_bytes(spoil(data.draw, raw))
    else:
        with np.load(saved_checkpoint) as f:
            arrays = {k: f[k] for k in f.files}
        meta = data.draw(JSON)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        np.savez(target, **arrays)
    try:
        state, meta = checkpoint.load(target)
        checkpoint.require(meta, target, epoch=int, step=int, shuffle_state=dict,
                           history=list, epoch_losses=list)
    except checkpoint.CheckpointError:
        pass


@settings(COMMON, max_examples=25)
@given(st.data())
def test_resume_from_a_hostile_checkpoint(saved_checkpoint: Path, data: st.DataObject) -> None:
    """The whole command: `train --resume` on a spoiled checkpoint ends in exit 0 or 1."""
    folder = saved_checkpoint.parent.parent
    run = folder / "resume"
    run.mkdir(exist_ok=True)
    (run / "checkpoint.npz").write_bytes(spoil(data.draw, saved_checkpoint.read_bytes()))
    result = CliRunner().invoke(app, ["train", str(folder / "mlp.arch"), "--backend", "numpy",
                                      "--data", str(folder / "data.npz"), "--out", str(run),
                                      "--resume", "--steps", "1"])
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output


# ---- hostile command lines ---------------------------------------------------------------------
ARGS = st.sampled_from([
    "--set", "k=inf", "k=-3", "k=2**64", "f=nan", "f=1e400", "k=\udcff", "--bind", "T=0",
    "T=99999999999999999999", "B=-1", "C=2", "--model", "Nope", "-o", "spec.arch", "out.py",
    "link.py", "pipe.py", "folder", "/dev/null", "net.dot", "--backend", "numpy", "--format",
    "json", "--depth", "0", "--emit-ir", "json", "-", "spec.arch", "folder", "pipe.py"])


@pytest.fixture(scope="module")
def command_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("argv")
    (folder / "spec.arch").write_text(ARITH_MODEL.format(
        body="    output y = x |> Linear(k) * f\n"), encoding="utf-8")
    (folder / "folder").mkdir()
    (folder / "link.py").symlink_to(folder / "spec.arch")
    os.mkfifo(folder / "pipe.py")
    return folder


@settings(COMMON, max_examples=80)
@given(st.sampled_from(["check", "analyze", "compile", "graph"]), st.lists(ARGS, max_size=6))
def test_command_lines(command_folder: Path, command: str, args: list[str]) -> None:
    """Any mix of hostile options: exit 0, 1 or 2, and the spec, the link and the pipe stay."""
    before = (command_folder / "spec.arch").read_bytes()
    with contextlib.chdir(command_folder):
        result = CliRunner().invoke(app, [command, "spec.arch", *args])
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert (command_folder / "spec.arch").read_bytes() == before
    assert (command_folder / "link.py").is_symlink()
    assert stat.S_ISFIFO(os.lstat(command_folder / "pipe.py").st_mode)
