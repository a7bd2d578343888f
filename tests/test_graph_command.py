"""`archdsl graph`: DOT that Graphviz's grammar accepts, Mermaid text, blocks collapsed by
depth, shapes on the edges, and a clear message when Graphviz is missing."""

import shutil
from pathlib import Path

import pydot
import pytest
from typer.testing import CliRunner

from archdsl.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.arch")), ids=lambda p: p.stem)
def test_dot_output_parses(spec, tmp_path):
    if spec.stem == "digits_gan":
        args = ["--model", "Generator"]
    else:
        args = []
    out = tmp_path / "net.dot"
    result = runner.invoke(app, ["graph", str(spec), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    graphs = pydot.graph_from_dot_data(out.read_text())
    assert graphs and graphs[0].get_edges(), "no edges parsed"


def test_depth_collapses_blocks_and_edges_carry_shapes(tmp_path):
    spec = ROOT / "specs" / "resnet_block.arch"
    shallow, deep = tmp_path / "a.dot", tmp_path / "b.dot"
    assert runner.invoke(app, ["graph", str(spec), "-o", str(shallow)]).exit_code == 0
    assert runner.invoke(app, ["graph", str(spec), "-o", str(deep), "--depth", "2"]
                         ).exit_code == 0
    a = pydot.graph_from_dot_data(shallow.read_text())[0]
    b = pydot.graph_from_dot_data(deep.read_text())[0]
    labels_a = [n.get_label() for n in a.get_nodes()]
    assert '"basicblock_1: BasicBlock"' in labels_a  # a whole block as one box
    assert len(b.get_nodes()) > len(a.get_nodes())  # opened one level deeper
    assert '"[B, 64, 8, 8]"' in [e.get_label() for e in a.get_edges()]


def test_mermaid_needs_nothing(tmp_path):
    out = tmp_path / "net.mmd"
    result = runner.invoke(app, ["graph", str(ROOT / "specs" / "char_lstm.arch"), "-o", str(out)])
    assert result.exit_code == 0
    text = out.read_text()
    assert text.startswith("flowchart TB") and '-->|"[B, T, 128]"|' in text


def test_svg_without_graphviz_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = runner.invoke(app, ["graph", str(ROOT / "specs" / "cnn_digits.arch"),
                                 "-o", str(tmp_path / "net.svg")])
    assert result.exit_code == 1
    assert "Graphviz" in result.output and "Traceback" not in result.output


def test_each_output_of_a_multi_output_op_carries_its_own_shape(tmp_path):
    spec = tmp_path / "split.arch"
    spec.write_text("model M {\n    input x: [B, 10]\n    a, b = split(x, [4, 6], dim=1)\n"
                    "    output y = concat([b, a], dim=1)\n}\n")
    out = tmp_path / "net.mmd"
    assert runner.invoke(app, ["graph", str(spec), "-o", str(out)]).exit_code == 0
    text = out.read_text()
    assert '-->|"[B, 4]"|' in text and '-->|"[B, 6]"|' in text
