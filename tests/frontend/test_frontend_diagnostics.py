"""Diagnostics beyond the goldens: which code an odd spec gets and where, what a message must
(and must not) say, and how an excerpt of a very long line is drawn.

Each row is a spec that must fail with one of the listed codes, on the listed line. Rows are
the corners of the language the goldens do not reach: wrong kinds of values in odd places,
statements in the wrong place, limits of scalar arithmetic. None may end in E9999.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import archdsl

M = "model Net {{\n    input x: {t}\n    {body}\n}}\n"  # the body is on line 3


def model(body: str, t: str = "[B, 4]") -> str:
    return M.format(t=t, body=body)


@dataclass(frozen=True)
class Row:
    name: str
    spec: str
    codes: tuple[str, ...]  # the first diagnostic has one of these
    line: int | None = 3


ROWS = [
    # ---- statements in the wrong place --------------------------------------------------
    Row("train_in_a_block",
        "block Head {\n    input x: [B, F]\n    train { epochs = 2 }\n    output y = x\n}\n\n"
        "model Net {\n    input x: [B, 4]\n    output y = x |> Head\n}\n", ("E0605",)),
    Row("two_train_sections",
        model("output y = x\n    train { epochs = 2 }\n    train { epochs = 3 }"),
        ("E0701", "E0605", "E0202"), 5),
    Row("output_inside_a_loop", model("for i in range(2) {\n        output y = x\n    }"),
        ("E0605",), 4),
    Row("input_inside_a_loop", model("for i in range(2) {\n        input z: [B]\n    }\n"
                                     "    output y = x"), ("E0605",), 4),
    Row("output_declared_twice", model("output y = x\n    output y = x"), ("E0202",), 4),
    Row("input_declared_twice", model("input x: [B, 4]\n    output y = x"), ("E0202",)),
    Row("gan_with_an_input", "gan Pair {\n    input z: [B, 4]\n}\n", ("E0605",), 2),
    Row("gan_as_a_layer",
        "model G {\n    input z: [B, 4]\n    output x = z\n}\n"
        "model D {\n    input x: [B, 4]\n    output s = x |> Linear(1)\n}\n"
        "gan P {\n    generator = G\n    discriminator = D\n}\n"
        "model Net {\n    input x: [B, 4]\n    output y = x |> P\n}\n", ("E0204",), 15),
    Row("gan_discriminator_is_a_block",
        "model G {\n    input z: [B, 4]\n    output x = z\n}\n"
        "block D {\n    input x: [B, 4]\n    output s = x |> Linear(1)\n}\n"
        "gan P {\n    generator = G\n    discriminator = D\n}\n", ("E0603",), 11),
    # ---- names ----------------------------------------------------------------------------
    Row("undeclared_dimension_in_an_assertion", model("assert x: [N, 4]\n    output y = x"),
        ("E0201",)),
    Row("keyword_as_a_local_name", model("in = 3\n    output y = x"), ("E0103",)),
    Row("keyword_as_a_parameter", "model Net(for: int = 1) {\n    input x: [B]\n"
        "    output y = x\n}\n", ("E0103",), 1),
    Row("builtin_as_a_constant", "const relu = 3\n" + model("output y = x"), ("E0205",), 1),
    Row("mutual_recursion",
        "block A {\n    input x: [B, 4]\n    output y = x |> C\n}\n"
        "block C {\n    input x: [B, 4]\n    output y = x |> A\n}\n" + model("output y = x |> A"),
        ("E0607",), 7),
    Row("model_using_itself",
        "model Net(n: int = 2) {\n    input x: [B, 4]\n"
        "    output y = if n == 0 then x else (x |> Net(n - 1))\n}\n", ("E0607",)),
    Row("unused_input_of_a_block",
        "block Pick {\n    input a: [B, F]\n    input b: [B, F]\n    output y = a\n}\n\n"
        "model Net {\n    input x: [B, 4]\n    output y = Pick()(x, x)\n}\n", ("E0606",), 3),
    # ---- values of the wrong kind -------------------------------------------------------
    Row("mean_over_a_float_dimension", model("output y = mean(x, 1.5)"), ("E0402",)),
    Row("sum_over_a_boolean_dimension", model("output y = sum(x, true)"), ("E0402",)),
    Row("mean_over_a_string_dimension", model('output y = mean(x, "a")'), ("E0402",)),
    Row("reshape_layer_with_a_string", model('output y = x |> Reshape("a")'), ("E0402",)),
    Row("reshape_layer_with_a_float", model("output y = x |> Reshape(2.0, 2)"), ("E0402",)),
    Row("reshape_layer_with_a_tuple", model("output y = x |> Reshape((2, 2))"),
        ("E0402", "E0304")),
    Row("range_with_a_zero_step",
        model("for i in range(0, 4, 0) {\n        x = x\n    }\n    output y = x"),
        ("E0403", "E0402")),
    Row("range_with_a_keyword",
        model("for i in range(n=2) {\n        x = x\n    }\n    output y = x"),
        ("E0401", "E0402")),
    Row("range_of_a_float", model("for i in range(1.5) {\n        x = x\n    }\n    output y = x"),
        ("E0402",)),
    Row("boolean_as_a_width", model("output y = x |> Linear(true)"), ("E0402",)),
    Row("layer_as_an_output", model("output y = Linear(3)"), ("E0204",)),
    Row("calling_a_tensor", model("output y = x(x)"), ("E0204",)),
    Row("attribute_of_an_unapplied_layer", model("l = Linear(4)\n    w = l.weight\n"
                                                 "    output y = x |> l"), ("E0204",), 4),
    Row("constant_holding_a_layer", "const L = Linear(3)\n" + model("output y = x |> L"),
        ("E0204",), 1),
    Row("unknown_parameter_type", "model Net(n: tensor = 3) {\n    input x: [B]\n"
        "    output y = x\n}\n", ("E0402",), 1),
    Row("parameter_default_of_the_wrong_type", "model Net(n: int = \"a\") {\n"
        "    input x: [B]\n    output y = x\n}\n", ("E0402",), 1),
    Row("unknown_dtype", model("output y = x", t="f33[B, 4]"), ("E0402",), 2),
    Row("dimension_zero", model("output y = x", t="[B, 0]"), ("E0403",), 2),
    Row("dimension_float", model("output y = x", t="[B, 2.5]"), ("E0402",), 2),
    Row("repeat_by_zero", model("output y = x |> Linear(4) * 0"), ("E0403",)),
    Row("repeat_by_a_float", model("output y = x |> Linear(4) * 1.5"), ("E0402",)),
    Row("repeat_of_a_block_with_two_outputs",
        "block Two {\n    input x: [B, 4]\n    output a = x\n    output b = x\n}\n"
        + model("output y = x |> Two * 2"), ("E0401",), 8),
    Row("optimizer_with_an_unknown_setting",
        model("output y = x\n    train { optimizer = Adam(beta=0.9) }"), ("E0701",), 4),
    Row("optimizer_with_three_betas",
        model("output y = x\n    train { optimizer = Adam(betas=(0.1, 0.2, 0.3)) }"),
        ("E0701",), 4),
    # ---- scalar arithmetic --------------------------------------------------------------
    Row("complex_power", model("output y = x * (-8.0) ** 0.5"), ("E0406",)),
    Row("float_power_overflow", model("output y = x * 10.0 ** 400"), ("E0406",)),
    Row("integer_overflow", model("output y = x |> Linear(2 ** 62 * 4)"), ("E0406",)),
    Row("float_floor_division_by_zero", model("output y = x * (1.0 // 0.0)"), ("E0406",)),
    Row("zero_to_a_negative_power", model("output y = x * 0 ** -1"), ("E0406",)),
    Row("string_times_int", model('output y = x |> Linear("a" * 3)'), ("E0402",)),
    Row("symbolic_loop_bound", model("for i in range(B) {\n        x = x\n    }\n"
                                     "    output y = x"), ("E0405",)),
    Row("symbolic_comparison", model("output y = x |> Linear(if B == 4 then 1 else 2)"),
        ("E0405",)),
    Row("symbolic_true_division", model("output y = reshape(x, [B / 2, 8])"), ("E0405",)),
    Row("symbolic_slice_of_undecidable_length", model("output y = x[:, -2:1]", t="[B, T]"),
        ("E0405", "E0309")),
    Row("dimension_above_the_limit", model("output y = x |> Linear(2 ** 41)"), ("E0801",)),
    Row("blocks_nested_too_deeply",
        "".join(f"block L{i} {{\n    input x: [B, 4]\n    output y = x |> L{i + 1}\n}}\n"
                for i in range(80))
        + "block L80 {\n    input x: [B, 4]\n    output y = x\n}\n" + model("output y = x |> L0"),
        ("E0801",), None),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_diagnostic(row: Row) -> None:
    with pytest.raises(archdsl.SpecError) as info:
        archdsl.load(row.spec)
    err = info.value
    assert "E9999" not in err.codes, str(err)
    first = err.diagnostics[0]
    assert first.code in row.codes, str(err)
    if row.line is not None:
        assert first.loc is not None and first.loc.line == row.line, str(err)
    lines = row.spec.split("\n")
    for d in err.diagnostics:
        if d.loc is not None:
            assert 1 <= d.loc.line <= len(lines)
            assert 1 <= d.loc.col <= len(lines[d.loc.line - 1]) + 1


def test_import_outside_the_root_is_refused_even_when_missing(tmp_path: Path) -> None:
    """Whether a file outside the root exists is none of the spec's business."""
    (tmp_path / "spec").mkdir()
    main = tmp_path / "spec" / "main.arch"
    main.write_text('import "../elsewhere/lib.arch"\n' + model("output y = x"))
    with pytest.raises(archdsl.SpecError) as info:
        archdsl.load(main)
    assert info.value.codes == ["E0503"]


@pytest.mark.parametrize("target", ["missing.arch", "../outside.arch"])
def test_a_failed_import_does_not_cascade(tmp_path: Path, target: str) -> None:
    """The names a failed import would have brought are not reported again as unknown."""
    (tmp_path / "outside.arch").write_text("const WIDTH = 3\nblock Head {\n    input x: [B, F]\n"
                                           "    output y = x\n}\n")
    (tmp_path / "spec").mkdir()
    main = tmp_path / "spec" / "main.arch"
    main.write_text(f'import "{target}"\n' + model("output y = x |> Linear(WIDTH) |> Head"))
    with pytest.raises(archdsl.SpecError) as info:
        archdsl.load(main)
    assert len(info.value.codes) == 1, str(info.value)
    assert info.value.codes[0] in ("E0501", "E0503")


def test_search_paths_allow_another_folder(tmp_path: Path) -> None:
    (tmp_path / "spec").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "w.arch").write_text("const WIDTH = 3\n")
    main = tmp_path / "spec" / "main.arch"
    main.write_text('import "../lib/w.arch"\n' + model("output y = x |> Linear(WIDTH)"))
    with pytest.raises(archdsl.SpecError):
        archdsl.load(main)
    g = archdsl.load(main, search_paths=[str(tmp_path / "lib")]).graph()
    assert str(g.nodes[g.outputs[0]].type) == "[B, 3]"


# ---- what messages say ----------------------------------------------------------------------
WORDING = [
    # (spec, text the diagnostics must say, text they must not say); the excerpt does not count
    (model("output y = 2 * 3"), "an int", "a int"),
    (model("output y = x |> Linear(4) + 1"), "an int", "a int"),
    (model("output y = x * 10.0 ** 400"), "out of range", "(34,"),
    (model("output y = x |> LSTM(8)"), "[B, T, F]", "Reshape(C, H, W)"),
    ("const WIDTH = DEPTH + 1\nconst DEPTH = WIDTH * 2\n" + model("output y = x |> Linear(WIDTH)"),
     "DEPTH", "in terms of itself\n"),
    ("block H {\n    input a: [B, F]\n    input b: [B, F]\n    output y = a + b\n}\n"
     + model("output y = H(x, x)"), "H()(", "x |> H(...)"),
]


@pytest.mark.parametrize(("spec", "must", "must_not"), WORDING,
                         ids=[f"{m} not {n!r}" for _, m, n in WORDING])
def test_message_wording(spec: str, must: str, must_not: str) -> None:
    with pytest.raises(archdsl.SpecError) as info:
        archdsl.load(spec)
    said = [part for d in info.value.diagnostics
            for part in (d.message, d.label, d.hint or "", *(n.message for n in d.notes))]
    text = "\n".join(said)
    assert must in text, str(info.value)
    assert must_not not in text, str(info.value)


def test_underline_of_a_span_in_the_middle_of_a_long_line() -> None:
    """Lines over 200 characters are shown as a window around the span; the carets must still
    cover the span only."""
    pad = " + ".join(["x"] * 40)
    spec = model(f"output y = {pad} + Foo + {pad}")
    with pytest.raises(archdsl.SpecError) as info:
        archdsl.load(spec)
    rendered = str(info.value).split("\n")
    carets = [line for line in rendered if "^" in line]
    assert len(carets) == 1
    assert carets[0].count("^") == len("Foo")
    shown = rendered[rendered.index(carets[0]) - 1]
    start = carets[0].index("^")
    assert shown[start:start + 3] == "Foo"


def test_every_independent_error_is_reported_once() -> None:
    spec = ("model Net {\n    input x: [B, 4]\n    a = x |> Relu\n    b = a |> Linear(2)\n"
            "    c = x |> Linear(0)\n    d = undefined\n    output y = b + c + d\n}\n")
    with pytest.raises(archdsl.SpecError) as info:
        archdsl.load(spec)
    assert info.value.codes == ["E0203", "E0403", "E0201"]
    assert [d.loc.line for d in info.value.diagnostics if d.loc] == [3, 5, 6]


def test_diagnostics_carry_structured_fields() -> None:
    with pytest.raises(archdsl.SpecError) as info:
        archdsl.load(model("output y = x |> Conv2D(4, 3)", t="[B, 3, 8, 8]"))
    d = info.value.diagnostics[0]
    assert (d.code, d.file, d.line, d.col, d.end) == ("E0203", "<spec>", 3, 21, (3, 27))
    assert d.hint == "did you mean `Conv2d`?"
    assert d.severity == "error"
