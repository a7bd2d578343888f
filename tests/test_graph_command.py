"""`archdsl graph`: DOT that Graphviz's grammar accepts, Mermaid text, blocks collapsed by
depth, shapes on the edges, and a clear message when Graphviz is missing."""

import shutil
from pathlib import Path

import pydot
import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.arch")), ids=lambda p: p.stem)
@pytest.mark.parametrize("depth", ["1", "3"])
def test_dot_output_parses(spec, depth, tmp_path):
    out = tmp_path / "net.dot"
    result = runner.invoke(app, ["graph", str(spec), "-o", str(out), "--depth", depth])
    assert result.exit_code == 0, result.output
    graphs = pydot.graph_from_dot_data(out.read_text())
    assert graphs and graphs[0].get_edges(), "no edges parsed"


def _boxes(graph):
    """Every node of a pydot graph, in its frames too."""
    return graph.get_nodes() + [n for sub in graph.get_subgraphs() for n in _boxes(sub)]


def test_depth_collapses_blocks_and_edges_carry_shapes(tmp_path):
    spec = ROOT / "specs" / "resnet_block.arch"
    shallow, deep = tmp_path / "a.dot", tmp_path / "b.dot"
    assert runner.invoke(app, ["graph", str(spec), "-o", str(shallow)]).exit_code == 0
    assert runner.invoke(app, ["graph", str(spec), "-o", str(deep), "--depth", "2"]
                         ).exit_code == 0
    a = pydot.graph_from_dot_data(shallow.read_text())[0]
    b = pydot.graph_from_dot_data(deep.read_text())[0]
    labels_a = [n.get_label() or "" for n in a.get_nodes()]
    scope = next(s for s in archdsl.load(spec).graph().scopes if s.args["stride"] == 2)
    # a whole block as one box, with its arguments and parameters
    assert any(label.startswith(f'"{scope.path}: BasicBlock(channels=32, stride=2)\\n')
               and label.endswith(' params"') for label in labels_a), labels_a
    assert len(_boxes(b)) > len(_boxes(a))  # opened one level deeper
    assert '"[B, 64, 8, 8]"' in [e.get_label() for e in a.get_edges()]
    frames = [g.get_label() for g in b.get_subgraphs()]
    assert f'"{scope.path}: BasicBlock(channels=32, stride=2)"' in frames  # opened: framed


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


def test_layer_boxes_show_arguments_and_parameters(tmp_path):
    out = tmp_path / "net.dot"
    assert runner.invoke(app, ["graph", str(ROOT / "specs" / "resnet50.arch"), "-o", str(out)]
                         ).exit_code == 0
    labels = [n.get_label() for n in pydot.graph_from_dot_data(out.read_text())[0].get_nodes()]
    g = archdsl.load(ROOT / "specs" / "resnet50.arch").graph()
    stem = next(layer for layer in g.layers.values() if layer.op == "Conv2d")
    assert f'"{stem.path}: Conv2d(64, kernel=7, stride=2, padding=3, bias=false)\\n9.41 k params"' \
        in labels


def test_a_gan_is_drawn_as_its_two_models(tmp_path):
    out = tmp_path / "gan.dot"
    result = runner.invoke(app, ["graph", str(ROOT / "specs" / "digits_gan.arch"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    dot = pydot.graph_from_dot_data(out.read_text())[0]
    assert sorted(g.get_label() for g in dot.get_subgraphs()) == [
        '"discriminator: Discriminator"', '"generator: Generator"']
    assert '"generated [B, 1, 16, 16]"' in [e.get_label() for e in dot.get_edges()]
    mermaid = tmp_path / "gan.mmd"
    assert runner.invoke(app, ["graph", str(ROOT / "specs" / "digits_gan.arch"), "-o",
                               str(mermaid)]).exit_code == 0
    assert mermaid.read_text().count("subgraph ") == 2


WIDE = """model Wide {
    input x: [B, 16]
    branches = [x |> Linear(4), x |> Linear(4), x |> Linear(4), x |> Linear(4), x |> Linear(4),
                x |> Linear(4), x |> Linear(4), x |> Linear(4)]
    output y = concat(branches, dim=1) |> Linear(2)
}
"""


def test_a_wide_graph_is_laid_out_left_to_right(tmp_path):
    (tmp_path / "wide.arch").write_text(WIDE)
    for name, marker in (("net.dot", "rankdir=LR;"), ("net.mmd", "flowchart LR")):
        out = tmp_path / name
        assert runner.invoke(app, ["graph", str(tmp_path / "wide.arch"), "-o", str(out)]
                             ).exit_code == 0
        assert marker in out.read_text()
    deep = tmp_path / "deep.dot"
    assert runner.invoke(app, ["graph", str(ROOT / "specs" / "cnn_digits.arch"), "-o", str(deep)]
                         ).exit_code == 0
    assert "rankdir=TB;" in deep.read_text()


def test_several_models_get_a_clear_answer(tmp_path):
    spec = tmp_path / "two.arch"
    spec.write_text("model A {\n    input x: [B, 4]\n    output y = x\n}\n\n"
                    "model C {\n    input x: [B, 4]\n    output y = x |> ReLU\n}\n")
    result = runner.invoke(app, ["graph", str(spec), "-o", str(tmp_path / "n.dot")])
    assert result.exit_code == 1
    assert "error[E0601]" in result.output and "candidates: A, C" in result.output
    assert "--model A" in result.output


def test_each_output_of_a_multi_output_op_carries_its_own_shape(tmp_path):
    """The op is one box; each part read is an edge out of it with that part's shape (no box
    for the IR's `part` nodes), even when one op reads several parts of it."""
    spec = tmp_path / "split.arch"
    spec.write_text("model M {\n    input x: [B, 10]\n    a, b = split(x, [4, 6], dim=1)\n"
                    "    h, c = LSTMCell(8)(a)\n"
                    "    output y = concat([b, a, h * c], dim=1)\n}\n")
    out = tmp_path / "net.dot"
    assert runner.invoke(app, ["graph", str(spec), "-o", str(out)]).exit_code == 0
    dot = pydot.graph_from_dot_data(out.read_text())[0]
    labels = {n.get_name(): (n.get_label() or "").strip('"') for n in dot.get_nodes()}
    assert not [label for label in labels.values() if label.startswith("part")], labels
    edges = [(labels[e.get_source()], labels[e.get_destination()], e.get_label().strip('"'))
             for e in dot.get_edges()]
    split = next(label for label in labels.values() if label.startswith("split"))
    cell = next(label for label in labels.values() if "LSTMCell" in label)
    concat = next(label for label in labels.values() if label.startswith("concat"))
    assert (split, concat, "[B, 4]") in edges and (split, concat, "[B, 6]") in edges
    assert (split, cell, "[B, 4]") in edges
    assert [e for e in edges if e[:2] == (cell, "mul")] == [(cell, "mul", "[B, 8]")] * 2
