"""The wheel carries everything the installed command needs: grammar, templates, kernels,
specs and data, under the `archdsl` package (so it works from any directory)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_grammar_backends_specs_and_data(tmp_path):
    # From a copy without the checkout's own `build/`, whose stale files a wheel would take.
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".*", "build", "dist", "runs", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(tree)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("archdsl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    required = ["archdsl/grammars/arch.lark", "archdsl/grammars/arch.tmLanguage.json",
                "archdsl/corpus.txt",
                "archdsl/specs/cnn_digits.arch", "archdsl/specs/resnet50.arch",
                "archdsl/backends/torch/templates/module.py.j2",
                "archdsl/backends/tensorflow/templates/module.py.j2",
                "archdsl/backends/numpy/templates/module.py.j2",
                "archdsl/backends/numpy/kernels/conv.py", "archdsl/cli.py"]
    missing = [n for n in required if n not in names]
    assert not missing, missing
    for folder, package in (("backends", "archdsl/backends/"), ("archdsl", "archdsl/")):
        sources = {package + p.relative_to(ROOT / folder).as_posix()
                   for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts}
        assert sources <= names, sorted(sources - names)
    assert not any(n.startswith(("backends/", "grammars/", "tests/")) for n in names)


def test_command_runs_from_another_directory(tmp_path):
    done = subprocess.run([sys.executable, "-m", "archdsl.cli", "check",
                           str(ROOT / "specs" / "resnet50.arch")], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "ResNet50" in done.stdout
