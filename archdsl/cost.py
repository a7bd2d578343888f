"""`archdsl analyze`: exact parameters, FLOPs and memory from shapes alone (docs/analyze.md).

Nothing here allocates a tensor or imports a framework: every figure is integer arithmetic on
the graph's shapes, so a GPT-3-sized spec analyses in milliseconds and never overflows.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, model_serializer

from archdsl.diagnostics import Diagnostic, SpecError
from archdsl.graph import DTYPE_BYTES, GanGraph, Graph, TensorType, construct
from archdsl.layer_args import args_text, key_args
from archdsl.ops import REGISTRY
from archdsl.sharding import DeviceMemory, describe, state_per_parameter
from archdsl.symbolic import Dim, Sym, evaluate, format_dim
from archdsl.text_table import lay_out, plain

# Ops whose output is a view of their input: they keep no memory of their own. A `part` is
# a view of its multi-output node, which counts every one of its outputs.
VIEW_OPS = frozenset({"input", "param", "Flatten", "Reshape", "reshape", "transpose", "permute",
                      "expand", "getitem", "Identity", "part", "split", "chunk", "unsqueeze",
                      "squeeze", "flatten"})


class Totals(BaseModel):
    params: int
    trainable_params: int
    buffers: int
    flops: int
    macs: int
    other_flops: int
    param_bytes: int
    activation_bytes: int


class LayerRow(BaseModel):
    path: str
    op: str
    args: dict[str, Any] = {}  # the hyperparameters the spec did not leave at their defaults
    input_shapes: list[list[int]] = []
    output_shape: list[int]
    params: int
    flops: int


class BlockRow(BaseModel):
    """One call of a block: the rows under its path sum into it when a report is collapsed."""

    path: str
    definition: str
    args: dict[str, Any] = {}
    input_shapes: list[list[int]] = []
    output_shapes: list[list[int]] = []


class TrainMemory(BaseModel):
    optimizer: str
    weights: int
    gradients: int
    optimizer_state: int
    activations: int
    total: int


class Report(BaseModel):
    model: str
    bind: dict[str, int]
    params: dict[str, Any]
    total: Totals
    layers: list[LayerRow]
    blocks: list[BlockRow] = []
    train: TrainMemory | None = None
    devices: DeviceMemory | None = None  # `--devices N --strategy S` (archdsl/sharding.py)

    def _repr_markdown_(self) -> str:
        from archdsl.notebook import report
        return report(self, "markdown")

    def _repr_html_(self) -> str:
        from archdsl.notebook import report
        return report(self, "html")

    @model_serializer(mode="wrap")
    def _drop_empty_train(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        for key in ("train", "devices"):
            if out.get(key) is None:
                out.pop(key, None)
        return out


def _bind(graph: Graph, bind: dict[str, int] | None) -> dict[str, int]:
    values = dict(bind or {})
    unknown = sorted(set(values) - set(graph.symbols))
    if unknown:
        raise SpecError([Diagnostic(
            code="E0405", message=f"--bind names a dimension `{graph.name}` does not have",
            label=f"unknown: {', '.join(unknown)}; symbolic dimensions: "
                  f"{', '.join(graph.symbols) or 'none'}")])
    if "B" in graph.symbols:
        values.setdefault("B", 1)
    missing = [s for s in graph.symbols if s not in values]
    if missing:
        example = " ".join(f"--bind {s}=128" for s in missing)
        raise SpecError([Diagnostic(
            code="E0405", message=f"`{graph.name}` has symbolic dimensions without a value",
            label=f"unbound: {', '.join(missing)}", hint=f"give them values: {example}")])
    return {k: values[k] for k in graph.symbols}


def _shape(shape: tuple[Dim, ...], values: dict[str, int]) -> list[int]:
    return [evaluate(d, values) for d in shape]


def analyze_graph(graph: Graph | GanGraph, bind: dict[str, int] | None = None,
                  train: bool = False) -> Report:
    """Parameters, FLOPs and memory of a checked graph at the given dimension values."""
    from archdsl.api import gc_paused  # archdsl.api imports this module

    with gc_paused():
        return _analyze_graph(graph, bind, train)


def _analyze_graph(graph: Graph | GanGraph, bind: dict[str, int] | None, train: bool
                   ) -> Report:
    if isinstance(graph, GanGraph):
        raise SpecError([Diagnostic(
            code="E0601", message=f"`{graph.name}` is a gan: analyze its generator or "
                                  "discriminator with --model",
            label=f"e.g. --model {graph.generator.name}")])
    values = _bind(graph, bind)
    rows: dict[str, LayerRow] = {}
    counters: dict[tuple[str, str], int] = {}
    flops = other = activation = 0
    bound: dict[tuple[str, tuple[Dim, ...]], TensorType] = {}  # a type at these values

    def at_values(t: TensorType) -> TensorType:
        key = (t.dtype, t.shape)
        concrete = bound.get(key)
        if concrete is None:
            concrete = bound[key] = t.with_shape(_shape(t.shape, values))
        return concrete

    types = [at_values(node.type) for node in graph.nodes]
    for node in graph.nodes:
        op = REGISTRY[node.op]
        ins = [types[i] for i in node.inputs]
        out = types[node.id]
        cost = op.flops(node.args, ins, out) if op.flops else None
        f = int(cost.flops) if cost else 0
        flops += f
        other += int(cost.other) if cost else 0
        if node.op not in VIEW_OPS:
            activation += sum(math.prod(t.shape) * DTYPE_BYTES[t.dtype]
                              for t in map(at_values, node.parts or [node.type]))
        if node.op in ("input", "param", "part"):
            continue
        path = node.layer
        if path is None:
            key = (node.scope, node.op)
            k = counters.get(key, 0)
            counters[key] = k + 1
            path = (f"{node.scope}." if node.scope else "") + f"{node.op}()" + (f"#{k}" if k
                                                                               else "")
        row = rows.get(path)
        if row is None:
            layer = graph.layers.get(path)
            n = sum(math.prod(p.shape) for p in layer.params if p.kind == "param") if layer \
                else 0
            rows[path] = construct(LayerRow, path=path, op=node.op,
                                   args=_plain(key_args(node.op, node.args)),
                                   input_shapes=[list(t.shape) for t in ins],
                                   output_shape=list(out.shape), params=n, flops=f)
        else:
            row.flops += f
            row.output_shape = list(out.shape)
    params = graph.parameters("param")
    buffers = graph.parameters("buffer")
    n_params = sum(math.prod(p.shape) for p in params.values())
    total = Totals(
        params=n_params, trainable_params=n_params,
        buffers=sum(math.prod(p.shape) for p in buffers.values()),
        flops=flops, macs=flops // 2, other_flops=other,
        param_bytes=sum(math.prod(p.shape) * DTYPE_BYTES[p.dtype] for p in params.values()),
        activation_bytes=activation)
    blocks: dict[str, BlockRow] = {}
    for scope in graph.scopes:
        if scope.path not in blocks:
            blocks[scope.path] = construct(
                BlockRow, path=scope.path, definition=scope.definition, args=_plain(scope.args),
                input_shapes=[list(types[i].shape) for i in scope.inputs],
                output_shapes=[list(types[i].shape) for i in scope.outputs])
    report = Report(model=graph.name, bind=values, params=dict(graph.params), total=total,
                    layers=list(rows.values()), blocks=list(blocks.values()))
    if train:
        report.train = training_memory(graph, total)
    return report


def _plain(v: Any) -> Any:
    """Arguments as JSON holds them: a symbolic size as its text, tuples as lists."""
    if isinstance(v, Sym):
        return format_dim(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def training_memory(graph: Graph, total: Totals) -> TrainMemory:
    """Weights + gradients + optimizer state + kept activations for one training step."""
    name, per_parameter = state_per_parameter(graph)
    trainable_bytes = total.param_bytes
    state = per_parameter * trainable_bytes
    weights = total.param_bytes + _buffer_bytes(graph)
    out = TrainMemory(optimizer=name, weights=weights, gradients=trainable_bytes,
                      optimizer_state=state, activations=total.activation_bytes, total=0)
    out.total = out.weights + out.gradients + out.optimizer_state + out.activations
    return out


def _buffer_bytes(graph: Graph) -> int:
    return sum(math.prod(p.shape) * DTYPE_BYTES[p.dtype]
               for p in graph.parameters("buffer").values())


# ---- presentation -------------------------------------------------------------------------
def human(n: float, unit: str = "") -> str:
    """25557032 -> '25.6 M'; 8178368512 with unit FLOP -> '8.18 GFLOP'."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            v = n / scale
            digits = 2 if v < 10 else 1 if v < 100 else 0
            return f"{v:.{digits}f} {prefix}{unit}".rstrip()
    return f"{int(n)} {unit}".rstrip()


def human_bytes(n: int) -> str:
    for scale, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            v = n / scale
            return f"{v:.{2 if v < 10 else 1}f} {unit}"
    return f"{n} B"


def collapse(report: Report, depth: int | None) -> list[LayerRow]:
    """Rows nested deeper than `depth` block levels are summed into their enclosing block's
    row (its definition as the op, its arguments and inputs); None keeps every row."""
    if depth is None:
        return [row.model_copy() for row in report.layers]
    if depth <= 0:
        return []
    blocks = {b.path: b for b in report.blocks}
    out: dict[str, LayerRow | list] = {}  # a block's sums: [params, flops, output shape]
    for row in report.layers:
        # the blocks enclosing the row, outermost first: the prefixes of its path that end
        # before a dot
        path = row.path
        chain = [path[:i] for i, ch in enumerate(path) if ch == "." and path[:i] in blocks]
        if len(chain) >= depth:
            owner = chain[depth - 1]
            sums = out.get(owner)
            if sums is None:
                out[owner] = [row.params, row.flops, row.output_shape]
            else:
                sums[0] += row.params  # type: ignore[index]
                sums[1] += row.flops  # type: ignore[index]
                sums[2] = row.output_shape  # type: ignore[index]
        else:
            out[row.path] = row.model_copy()
    return [v if isinstance(v, LayerRow) else _block_row(blocks[k], *v) for k, v in out.items()]


def _block_row(b: BlockRow, params: int, flops: int, output_shape: list[int]) -> LayerRow:
    """A block call's row: its definition as the op, its arguments and inputs, the sums of the
    rows it holds and the output of the last."""
    return construct(LayerRow, path=b.path, op=b.definition, args=dict(b.args),
                     input_shapes=[list(s) for s in b.input_shapes],
                     output_shape=list(output_shape), params=params, flops=flops)


FORMATS = ("table", "json", "markdown", "csv")


def _shape_text(shape: list[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def row_args(row: LayerRow) -> str:
    """`64, kernel=7, stride=2` for a layer; `width=64, stride=2` for a block."""
    if row.op in REGISTRY:
        return args_text(row.op, row.args)
    return ", ".join(f"{k}={v}" for k, v in row.args.items())


def render(report: Report, fmt: str, depth: int | None = None) -> str:
    """The report as a table, markdown, CSV or JSON, collapsed to `depth` block levels (by
    default 1 for the table and markdown, every layer for JSON and CSV)."""
    from archdsl.api import gc_paused

    with gc_paused():  # a table of many rows is many small objects, as in analyze_graph
        return _render(report, fmt, depth)


def _render(report: Report, fmt: str, depth: int | None) -> str:
    if fmt == "json":
        shown = report if depth is None else report.model_copy(
            update={"layers": collapse(report, depth)})
        return shown.model_dump_json(indent=2)
    rows = collapse(report, depth if depth is not None or fmt == "csv" else 1)
    if fmt == "csv":
        return _csv(rows)
    t = report.total
    total_flops = t.flops or 1
    header = ["layer", "op", "args", "input", "output", "params", "FLOPs", "share"]
    body = [[r.path, r.op, row_args(r), " ".join(map(_shape_text, r.input_shapes)),
             _shape_text(r.output_shape), human(r.params), human(r.flops, "FLOP"),
             f"{100 * r.flops / total_flops:.1f}%"] for r in rows]
    bind = ", ".join(f"{k}={v}" for k, v in report.bind.items())
    summary = summary_lines(report)
    if fmt == "markdown":
        lines = [f"## {report.model} ({bind})", "", "| " + " | ".join(header) + " |",
                 "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(f"`{c}`" if i in (0, 2) and c else c.replace("|", "\\|")
                                    for i, c in enumerate(r)) + " |" for r in body]
        lines += ["", "| total | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in summary]
        return "\n".join(lines)
    title = f"{report.model} ({bind})"
    footer = ["total", "", "", "", "", human(t.params), human(t.flops, "FLOP"), "100%"]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]
    width = min(200, max(120, sum(widths) + 3 * len(widths) + 1))
    lines = [f"{k:>18}: {v}" for k, v in summary]
    table = lay_out(title, header, [i >= 5 for i in range(len(header))], body, footer, width)
    if table is not None and all(len(line) <= width and plain(line) for line in lines):
        return "\n".join([table, *lines]).rstrip()
    return _rich_table(title, header, body, footer, lines, width)


def _rich_table(title: str, header: list[str], body: list[list[str]], footer: list[str],
                lines: list[str], width: int) -> str:
    """The table as rich lays it out, for what `archdsl.text_table.lay_out` does not write:
    text rich would style or wrap, or a table wider than the console."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table
    table = Table(title=title, title_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="right" if i >= 5 else "left", no_wrap=i != 2)
    for r in body:
        table.add_row(*r)
    table.add_section()
    table.add_row(*footer)
    buf = StringIO()
    console = Console(file=buf, width=width, force_terminal=False, highlight=False)
    console.print(table)
    for line in lines:
        console.print(line, markup=False)
    return buf.getvalue().rstrip()


def summary_lines(report: Report) -> list[tuple[str, str]]:
    t = report.total
    summary = [
        ("parameters", f"{t.params:,} ({human(t.params)})"),
        ("buffers", f"{t.buffers:,}"),
        ("FLOPs", f"{t.flops:,} ({human(t.flops, 'FLOP')})"),
        ("MACs", f"{t.macs:,}"),
        ("other FLOPs", f"{t.other_flops:,} ({human(t.other_flops, 'FLOP')})"),
        ("parameter memory", human_bytes(t.param_bytes)),
        ("activation memory", human_bytes(t.activation_bytes)),
    ]
    if report.train:
        m = report.train
        summary += [("training memory", f"{human_bytes(m.total)} = weights "
                     f"{human_bytes(m.weights)} + gradients {human_bytes(m.gradients)} + "
                     f"{m.optimizer} state {human_bytes(m.optimizer_state)} + activations "
                     f"{human_bytes(m.activations)}")]
    if report.devices:
        summary.append(describe(report.devices))
    return summary


def _csv(rows: list[LayerRow]) -> str:
    """One line per row, exact integers; shapes as `[1, 64, 56, 56]`, several inputs parted by
    spaces; the arguments as they are written in a spec."""
    import csv
    from io import StringIO
    buf = StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["layer", "op", "args", "inputs", "output", "params", "flops"])
    for r in rows:
        out.writerow([r.path, r.op, row_args(r), " ".join(map(_shape_text, r.input_shapes)),
                      _shape_text(r.output_shape), r.params, r.flops])
    return buf.getvalue().rstrip("\n")
