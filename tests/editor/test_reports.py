"""Reports people read: `analyze` rows with hyperparameters and input shapes, `--depth` in every
format, CSV, notebook tables, and JSON Schemas that real outputs satisfy."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from schema_check import errors

import archdsl
from archdsl.cost import render
from archdsl.schemas import SCHEMAS

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
ALL_SPECS = sorted(SPECS.glob("*.arch"))
BIND = {"char_lstm": ["--bind", "T=16"], "attention_summarizer": ["--bind", "T=16"],
        "gpt2_small": ["--bind", "T=64"], "text_transformer": ["--bind", "T=32"],
        "llama_decoder": ["--bind", "T=64"],
        "seq2seq_transformer": ["--bind", "T=16", "--bind", "S=24"],
        "digits_gan": ["--model", "Generator"], "cdcgan_digits": ["--model", "Generator"]}


def archdsl_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "archdsl.cli", *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _row(report: archdsl.analyze, op: str, nth: int = 0):  # type: ignore[valid-type]
    return [r for r in report.layers if r.op == op][nth]


def test_rows_carry_hyperparameters_and_input_shapes() -> None:
    resnet = archdsl.analyze(SPECS / "resnet50.arch")
    stem = _row(resnet, "Conv2d")
    assert stem.args == {"out": 64, "kernel": 7, "stride": 2, "padding": 3, "bias": False}
    assert stem.input_shapes == [[1, 3, 224, 224]] and stem.output_shape == [1, 64, 112, 112]
    assert _row(resnet, "MaxPool2d").args == {"kernel": 3, "stride": 2, "padding": 1}
    assert _row(resnet, "BatchNorm2d").args == {}  # all defaults
    assert _row(resnet, "add").input_shapes == [[1, 256, 56, 56]] * 2
    gpt2 = archdsl.analyze(SPECS / "gpt2_small.arch", bind={"T": 64})
    assert _row(gpt2, "MultiHeadAttention").args == {"heads": 12, "causal": True,
                                                     "dropout": 0.1}
    bottleneck = next(b for b in resnet.blocks if b.definition == "Bottleneck"
                      and b.args["stride"] == 2)
    assert bottleneck.args == {"width": 128, "stride": 2, "expansion": 4}
    assert bottleneck.input_shapes == [[1, 256, 56, 56]]
    assert bottleneck.output_shapes == [[1, 512, 28, 28]]


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_depth_gives_the_same_rows_in_every_format(depth: int) -> None:
    report = archdsl.analyze(SPECS / "resnet50.arch")
    as_json = json.loads(render(report, "json", depth))["layers"]
    as_csv = list(csv.DictReader(io.StringIO(render(report, "csv", depth))))
    paths = [r["path"] for r in as_json]
    assert [r["layer"] for r in as_csv] == paths
    markdown = render(report, "markdown", depth)
    table = render(report, "table", depth)
    for path in paths:
        assert f"`{path}`" in markdown and f" {path} " in table
    if depth == 1:
        assert len(paths) == 22 and sum(1 for r in as_json if r["op"] == "Bottleneck") == 16
        assert all(r["params"] for r in as_json if r["op"] == "Bottleneck")


def test_by_default_json_and_csv_hold_every_layer_and_tables_one_level() -> None:
    report = archdsl.analyze(SPECS / "resnet50.arch")
    assert json.loads(render(report, "json"))["layers"] == report.model_dump()["layers"]
    assert len(render(report, "csv").splitlines()) == 1 + len(report.layers)
    assert render(report, "markdown") == render(report, "markdown", 1)
    assert render(report, "table") == render(report, "table", 1)


def test_csv_holds_exact_integers_that_add_up() -> None:
    report = archdsl.analyze(SPECS / "resnet50.arch")
    rows = list(csv.DictReader(io.StringIO(archdsl_cli("analyze", str(SPECS / "resnet50.arch"),
                                                       "--format", "csv"))))
    assert sum(int(r["params"]) for r in rows) == report.total.params == 25_557_032
    assert sum(int(r["flops"]) for r in rows) == report.total.flops == 8_178_368_512
    stem = rows[0]
    assert stem["args"] == "64, kernel=7, stride=2, padding=3, bias=false"
    assert stem["inputs"] == "[1, 3, 224, 224]" and stem["output"] == "[1, 64, 112, 112]"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.rows = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.open.append(tag)
        self.rows += tag == "tr"

    def handle_endtag(self, tag: str) -> None:
        assert self.open.pop() == tag


def _html_rows(text: str) -> int:
    parser = _Tags()
    parser.feed(text)
    assert parser.open == []
    return parser.rows


def test_notebook_tables() -> None:
    program = archdsl.load(SPECS / "digits_gan.arch")
    markdown = program._repr_markdown_()
    for name in ("Generator", "Discriminator", "DigitsGAN"):
        assert f"`{name}`" in markdown
    assert "`z: f32[B, 64]`" in markdown and "`score: f32[B, 1]`" in markdown
    assert _html_rows(program._repr_html_()) == 1 + len(program.definitions)
    resnet = archdsl.load(SPECS / "resnet50.arch")
    assert "25,557,032" in resnet._repr_markdown_() and "8.18 GFLOP" in resnet._repr_html_()
    report = archdsl.analyze(SPECS / "resnet50.arch")
    assert report._repr_markdown_() == render(report, "markdown")
    rows = len(json.loads(render(report, "json", 1))["layers"])
    assert _html_rows(report._repr_html_()) == 2 + rows + len(
        [line for line in render(report, "table").splitlines() if line.count(":") == 1
         and line.startswith(" ")])


# ---- JSON Schemas, against what archdsl writes ---------------------------------------------------
def test_the_command_prints_the_schemas() -> None:
    for name, schema in SCHEMAS.items():
        assert json.loads(archdsl_cli("schema", name)) == schema()


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.stem)
def test_real_outputs_satisfy_the_schemas(spec: Path) -> None:
    graph = json.loads(archdsl_cli("check", "--emit-ir", "json", str(spec)))
    assert errors(graph, SCHEMAS["ir"]()) == []
    extra = BIND.get(spec.stem, [])
    for options in ([], ["--train"], ["--depth", "1"]):
        report = json.loads(archdsl_cli("analyze", str(spec), "--format", "json", *extra,
                                        *options))
        assert errors(report, SCHEMAS["analysis"]()) == []


def test_the_schemas_refuse_what_archdsl_does_not_write() -> None:
    graph = archdsl.load(SPECS / "resnet_block.arch").graph().model_dump(mode="json")
    graph["nodes"][3]["type"]["shape"][0] = 1.5
    graph["nodes"][4]["unknown"] = True
    found = errors(graph, SCHEMAS["ir"]())
    assert len(found) == 2 and "1.5" in found[0] and "`unknown`" in found[1]
    report = archdsl.analyze(SPECS / "resnet_block.arch").model_dump(mode="json")
    report["total"]["params"] = str(report["total"]["params"])
    del report["layers"][0]["flops"]
    assert len(errors(report, SCHEMAS["analysis"]())) == 2
