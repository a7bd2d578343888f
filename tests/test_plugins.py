"""Ops users add themselves (docs/plugins.md). The example plugin tests/plugins/swish_ops is
installed for real (`pip install --no-deps` into a folder put on PYTHONPATH), so archdsl
finds it through its entry point; each run is a fresh process, as a user's would be. The
API's refusals are tested in this process, with the registry restored after each test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from archdsl.graph import TensorType
from archdsl.ops import REGISTRY, plugin
from archdsl.ops.plugin import Flops, OpDef, PluginError, lower, register

EXAMPLE = Path(__file__).parent / "plugins" / "swish_ops"

SPEC = """model Tiny {
    input x: [B, 6]
    h = x |> Linear(8) |> Swish(beta=1.5) |> Scale(init=0.5)
    output y = h |> Swish |> Linear(3)
}
"""
SWISH_ONLY = """model Gate {
    input x: [B, 4]
    output y = x |> Linear(5) |> Swish(beta=2.0)
}
"""

# Run in the installed plugin's process: its ops in the PyTorch and NumPy builds, against
# the float64 NumPy reference (every output, gradient and optimizer step), and Keras and ONNX
# too for Swish, the one op they lower.
CHECK_BACKENDS = """
import json, sys
import archdsl
from archdsl.verify import run
tiny = run(archdsl.load(sys.argv[1]).graph(), ["torch", "numpy"])
gate = run(archdsl.load(sys.argv[2]).graph(), ["torch", "tensorflow", "numpy", "onnx"])
print(json.dumps({"tiny": [tiny.ok, len(tiny.rows), tiny.errors],
                  "gate": [gate.ok, len(gate.rows), gate.errors]}))
"""


def _archdsl(args: list[str], pythonpath: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "archdsl.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin, pip-installed (no index, no dependencies) into a folder of its
    own: the source is copied first so the build leaves nothing in the repository."""
    root = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(EXAMPLE, root / "src")
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(site), str(source)],
                   check=True, capture_output=True)
    assert (site / "archdsl_swish").is_dir()
    return site


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("specs")
    (folder / "tiny.arch").write_text(SPEC, encoding="utf-8")
    (folder / "gate.arch").write_text(SWISH_ONLY, encoding="utf-8")
    return folder


def test_installed_plugin_is_found_through_its_entry_point(installed: Path, specs: Path
                                                           ) -> None:
    out = _archdsl(["check", "tiny.arch"], installed, specs)
    assert out.returncode == 0, out.stderr
    assert "tiny.arch: ok (Tiny)" in out.stdout


def test_plugin_ops_are_costed_like_built_ins(installed: Path, specs: Path) -> None:
    out = _archdsl(["analyze", "tiny.arch", "--format", "json", "--bind", "B=4"], installed,
                   specs)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    rows = {r["op"]: r for r in report["layers"]}
    assert rows["Scale"]["params"] == 8  # one weight per feature
    assert report["total"]["params"] == 6 * 8 + 8 + 8 + 8 * 3 + 3
    assert report["total"]["flops"] == 2 * 4 * (6 * 8 + 8 * 3)
    # Swish's declared elementwise cost: 5 per element, twice; Scale 1 per element
    other_linear = 4 * (8 + 3)
    assert report["total"]["other_flops"] == other_linear + 4 * 8 * (5 + 1 + 5)


def test_plugin_ops_compute_the_same_in_every_backend_they_lower_to(installed: Path,
                                                                    specs: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-c", CHECK_BACKENDS, "tiny.arch", "gate.arch"],
                         env=env, cwd=specs, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["tiny"][0] and result["tiny"][1] > 20, result
    assert result["gate"][0] and not result["gate"][2], result


def test_generated_module_carries_the_plugins_helper(installed: Path, specs: Path,
                                                     ruff) -> None:
    out = _archdsl(["compile", "tiny.arch", "-o", "tiny.py"], installed, specs)
    assert out.returncode == 0, out.stderr
    source = (specs / "tiny.py").read_text(encoding="utf-8")
    assert "class Scale(nn.Module):" in source  # copied: the module imports no plugin
    assert "import archdsl_swish" not in source and "from archdsl_swish" not in source
    assert "h * torch.sigmoid(1.5 * h)" in source
    for command in ("check", "format"):
        result = ruff(command, [specs / "tiny.py"])
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_backend_without_rules_refuses_the_op_where_it_is_written(installed: Path,
                                                                   specs: Path) -> None:
    out = _archdsl(["compile", "tiny.arch", "--backend", "onnx", "-o", "tiny.onnx"],
                   installed, specs)
    assert out.returncode == 1
    assert "error[E0901]: the ONNX backend has no lowering for `Scale`" in out.stderr
    assert "tiny.arch:3:46" in out.stderr and "^^^^^^^^^^^^^^^" in out.stderr


def test_plugin_option_loads_a_module_that_is_not_installed(specs: Path) -> None:
    out = _archdsl(["check", "tiny.arch", "--plugin", "archdsl_swish"], EXAMPLE, specs)
    assert out.returncode == 0, out.stderr
    without = _archdsl(["check", "tiny.arch"], EXAMPLE, specs)
    assert without.returncode == 1 and "unknown layer `Swish`" in without.stderr


def test_a_plugin_that_cannot_be_imported_is_a_usage_error(specs: Path) -> None:
    out = _archdsl(["check", "tiny.arch", "--plugin", "no_such_plugin"], EXAMPLE, specs)
    assert out.returncode == 2
    assert "cannot load the plugin no_such_plugin" in out.stderr
    assert "Traceback" not in out.stderr


# ---- the registration API ---------------------------------------------------------------------
@pytest.fixture
def restored() -> Iterator[None]:
    """The registry and the plugin tables as they were before the test: the ops it adds
    are removed from every backend table (imported before or during the test)."""
    ops, owners = dict(REGISTRY), dict(plugin.OWNERS)
    lowerings = {b: dict(v) for b, v in plugin.LOWERINGS.items()}
    yield
    added = set(REGISTRY) - set(ops)
    REGISTRY.clear()
    REGISTRY.update(ops)
    plugin.OWNERS.clear()
    plugin.OWNERS.update(owners)
    plugin.LOWERINGS.clear()
    plugin.LOWERINGS.update(lowerings)
    for tables in plugin._TABLES.values():
        for table in tables.values():
            for op in added & set(table):
                del table[op]


def _op(name: str, kind: str = "function", shape=lambda a, ins: ins[0]) -> OpDef:
    return OpDef(name=name, kind=kind, args=(), shape=shape,
                 flops=lambda a, ins, out: Flops())


REFUSED = [
    ("a built-in name", _op("relu"), "already declared by archdsl"),
    ("a lowercase layer", _op("swish2", kind="layer"), "capitalised identifier"),
    ("a capitalised function", _op("Twice"), "lowercase identifier"),
    ("a keyword", _op("model"), "keyword of the language"),
    ("no FLOP rule", OpDef(name="twice", kind="function", args=(),
                           shape=lambda a, ins: ins[0]), "needs a FLOP rule"),
]


@pytest.mark.parametrize(("what", "op", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_register_refuses(restored: None, what: str, op: OpDef, message: str) -> None:
    with pytest.raises(PluginError, match=message):
        register(op)


def test_lower_refuses_unknown_tables_backends_and_built_ins(restored: None) -> None:
    register(_op("twice"))
    with pytest.raises(PluginError, match="takes construct=, forward=, as_module=, helpers="):
        lower("twice", "torch", kernel=object())
    with pytest.raises(PluginError, match="no backend 'jax'"):
        lower("twice", "jax", forward=object())
    with pytest.raises(PluginError, match="takes construct=, forward=; got kernel="):
        lower("twice", "tensorflow", kernel=object())
    with pytest.raises(PluginError, match="built into archdsl"):
        lower("relu", "torch", forward=object())
    with pytest.raises(PluginError, match="register the op first"):
        lower("thrice", "torch", forward=object())


def test_rows_wait_for_the_backend_and_reach_it_once_imported(restored: None) -> None:
    """lower() imports nothing: a row for a backend not imported yet is kept, and installed
    when its table module loads (the NumPy backend, in a fresh process); a row for one
    already imported goes in at once."""
    from archdsl.backends.torch.target import FORWARD
    register(_op("twice"))
    rule = object()
    lower("twice", "torch", forward=rule)
    assert FORWARD["twice"] is rule
    assert plugin.lowered("twice") == ["torch"]
    script = (
        "import sys\n"
        "from archdsl.ops.plugin import Flops, OpDef, lower, register\n"
        "register(OpDef(name='twice', kind='function', args=(), shape=lambda a, i: i[0],\n"
        "               flops=lambda a, i, o: Flops()))\n"
        "lower('twice', 'numpy', kernel='a kernel')\n"
        "before = 'archdsl.backends.numpy.kernels' in sys.modules\n"
        "from archdsl.backends.numpy.kernels import KERNELS\n"
        "print(before, KERNELS['twice'])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "a", "kernel"], out.stderr


def test_a_crashing_rule_is_the_plugins_bug_not_the_specs(restored: None) -> None:
    import archdsl

    def broken(a: dict, ins: list[TensorType]) -> TensorType:
        raise ZeroDivisionError("oops")

    register(_op("twice", shape=broken))
    with pytest.raises(PluginError, match=r"shape rule of `twice` \(plugin .*\) failed: "
                                          r"ZeroDivisionError\('oops'\); this is a bug in the "
                                          r"plugin"):
        archdsl.load("model M {\n    input x: [B, 4]\n    output y = twice(x)\n}\n")
