"""`archdsl check` as a user runs it: exit status 0 clean, 1 errors in the spec, 2 misuse; no
traceback ever for a bad spec; and checking never imports torch or tensorflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from contract import EXAMPLE_FILES

from archdsl.graph import Graph

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = EXAMPLE_FILES
SPECS = sorted((ROOT / "specs").glob("*.arch"))
HEAVY = ("torch", "tensorflow", "keras", "jax")


def _command() -> list[str]:
    script = Path(sys.executable).with_name("archdsl")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from archdsl.cli import main; main()"]


def archdsl(*args: str, cwd: Path, python_flags: tuple[str, ...] = ()
            ) -> subprocess.CompletedProcess[str]:
    cmd = _command()
    if python_flags:
        cmd = [sys.executable, *python_flags, "-c", "from archdsl.cli import main; main()"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_examples_check_clean_from_another_directory(tmp_path: Path) -> None:
    result = archdsl("check", *map(str, EXAMPLES), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok (") == len(EXAMPLES)
    assert "Traceback" not in result.stdout + result.stderr


BAD = [
    # (files relative to the golden folder, codes the output must show)
    (["E0302_residual_add.arch"], ["error[E0302]"]),
    (["E0001_invalid_utf8.arch", "E0004_unclosed_string.arch", "E0503_symlink/spec/main.arch"],
     ["error[E0001]", "error[E0004]", "error[E0503]"]),
    (["E0203_independent_errors.arch", "E0302_residual_add.arch"],
     ["error[E0203]", "error[E0403]", "error[E0307]", "error[E0302]", "4 errors found"]),
]


@pytest.mark.parametrize(("files", "shows"), BAD, ids=lambda v: "+".join(v) if v else "")
def test_bad_specs_exit_1_without_a_traceback(files: list[str], shows: list[str]) -> None:
    result = archdsl("check", *files, cwd=GOLDEN)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    for text in shows:
        assert text in out


def test_an_internal_error_is_still_not_a_traceback(tmp_path: Path) -> None:
    """Whatever goes wrong inside, a user sees a diagnostic, not Python's stack."""
    spec = tmp_path / "odd.arch"
    spec.write_text('model Net {\n    input x: [B, 4]\n    output y = mean(x, "a")\n}\n')
    result = archdsl("check", str(spec), cwd=tmp_path)
    assert result.returncode in (1, 3)
    assert "Traceback" not in result.stdout + result.stderr


MISUSE = [
    ["check", "--no-such-option", "x.arch"],
    ["no-such-command"],
    ["check"],
    ["check", "--emit-ir", "yaml", "x.arch"],
    ["check", "--set", "novalue", "x.arch"],
]


@pytest.mark.parametrize("args", MISUSE, ids=" ".join)
def test_misuse_exits_2(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "x.arch").write_text("model Net {\n    input x: [B]\n    output y = x\n}\n")
    result = archdsl(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_the_contract_examples_are_here() -> None:
    """Every test that runs "each example" would otherwise pass on none."""
    assert {"cnn_digits.arch", "digits_gan.arch", "resnet_block.arch"} <= {
        p.name for p in EXAMPLES}, "set ARCHDSL_EXAMPLES to the contract's examples folder"


def test_version(tmp_path: Path) -> None:
    import archdsl as package
    result = archdsl("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert package.__version__ in result.stdout


def test_emit_ir_json_is_a_graph(tmp_path: Path) -> None:
    example = next(p for p in EXAMPLE_FILES if p.name == "cnn_digits.arch")
    result = archdsl("check", "--emit-ir", "json", str(example), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    g = Graph.model_validate(json.loads(result.stdout))
    assert g.name == "DigitsCNN"
    assert g.outputs


# ---- never torch or tensorflow ----------------------------------------------------------------
LOAD_AND_ANALYZE = """
import sys
import archdsl
for path in sys.argv[1:]:
    program = archdsl.load(path)
    for name in program.check():
        g = program.graph(name)
        if g.kind == "gan":
            continue
        archdsl.analyze(path, model=name, bind={s: 8 for s in g.symbols})
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print(",".join(heavy))
"""


def test_load_and_analyze_import_no_framework(tmp_path: Path) -> None:
    code = LOAD_AND_ANALYZE.replace("{heavy!r}", repr(set(HEAVY)))
    result = subprocess.run([sys.executable, "-c", code, *map(str, SPECS)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_check_imports_no_framework(tmp_path: Path) -> None:
    result = archdsl("check", *map(str, SPECS), cwd=tmp_path, python_flags=("-X", "importtime"))
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert imported, "no -X importtime output"
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == []
