"""`archdsl analyze`: exact parameters, FLOPs and memory from shapes alone (docs/analyze.md).

Nothing here allocates a tensor or imports a framework: every figure is integer arithmetic on
the graph's shapes, so a GPT-3-sized spec analyses in milliseconds and never overflows.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, model_serializer

from archdsl.diagnostics import Diagnostic, SpecError
from archdsl.graph import DTYPE_BYTES, GanGraph, Graph
from archdsl.ops import REGISTRY
from archdsl.sharding import DeviceMemory, describe, state_per_parameter
from archdsl.symbolic import Dim, evaluate

# Ops whose output is a view of their input: they keep no memory of their own.
VIEW_OPS = frozenset({"input", "param", "Flatten", "Reshape", "reshape", "transpose", "permute",
                      "expand", "getitem", "Identity"})


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
    output_shape: list[int]
    params: int
    flops: int


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
    train: TrainMemory | None = None
    devices: DeviceMemory | None = None  # `--devices N --strategy S` (archdsl/sharding.py)

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
    if isinstance(graph, GanGraph):
        raise SpecError([Diagnostic(
            code="E0601", message=f"`{graph.name}` is a gan: analyze its generator or "
                                  "discriminator with --model",
            label=f"e.g. --model {graph.generator.name}")])
    values = _bind(graph, bind)
    rows: dict[str, LayerRow] = {}
    counters: dict[tuple[str, str], int] = {}
    flops = other = activation = 0
    for node in graph.nodes:
        op = REGISTRY[node.op]
        ins = [graph.nodes[i].type.with_shape(_shape(graph.nodes[i].type.shape, values))
               for i in node.inputs]
        out = node.type.with_shape(_shape(node.type.shape, values))
        cost = op.flops(node.args, ins, out) if op.flops else None
        f = int(cost.flops) if cost else 0
        flops += f
        other += int(cost.other) if cost else 0
        if node.op not in VIEW_OPS:
            activation += math.prod(out.shape) * DTYPE_BYTES[out.dtype]
        if node.op in ("input", "param"):
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
            rows[path] = LayerRow(path=path, op=node.op, output_shape=list(out.shape), params=n,
                                  flops=f)
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
    report = Report(model=graph.name, bind=values, params=dict(graph.params), total=total,
                    layers=list(rows.values()))
    if train:
        report.train = training_memory(graph, total)
    return report


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


def collapse(report: Report, graph_scopes: list[str], depth: int) -> list[LayerRow]:
    """Rows nested deeper than `depth` block levels are summed into their enclosing block."""
    if depth <= 0:
        return []
    scopes = sorted(set(graph_scopes), key=len)
    out: dict[str, LayerRow] = {}
    for row in report.layers:
        chain = [s for s in scopes if row.path.startswith(s + ".")]
        if len(chain) >= depth:
            owner = chain[depth - 1]
            agg = out.get(owner)
            if agg is None:
                out[owner] = LayerRow(path=owner, op="", output_shape=row.output_shape,
                                      params=row.params, flops=row.flops)
            else:
                agg.params += row.params
                agg.flops += row.flops
                agg.output_shape = row.output_shape
        else:
            out[row.path] = row.model_copy()
    return list(out.values())


def render(report: Report, fmt: str, depth: int, scopes: dict[str, str] | None = None) -> str:
    if fmt == "json":
        return report.model_dump_json(indent=2)
    scopes = scopes or {}
    rows = collapse(report, list(scopes), depth)
    for r in rows:
        if not r.op:
            r.op = scopes.get(r.path, "block")
    t = report.total
    total_flops = t.flops or 1
    header = ["layer", "op", "output", "params", "FLOPs", "share"]
    body = [[r.path, r.op, "[" + ", ".join(map(str, r.output_shape)) + "]", human(r.params),
             human(r.flops, "FLOP"), f"{100 * r.flops / total_flops:.1f}%"] for r in rows]
    bind = ", ".join(f"{k}={v}" for k, v in report.bind.items())
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
    if fmt == "markdown":
        lines = [f"## {report.model} ({bind})", "", "| " + " | ".join(header) + " |",
                 "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(f"`{c}`" if i == 0 else c for i, c in enumerate(r)) + " |"
                  for r in body]
        lines += ["", "| total | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in summary]
        return "\n".join(lines)
    from io import StringIO

    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"{report.model} ({bind})", title_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="right" if i >= 3 else "left", no_wrap=i == 0)
    for r in body:
        table.add_row(*r)
    table.add_section()
    table.add_row("total", "", "", human(t.params), human(t.flops, "FLOP"), "100%")
    buf = StringIO()
    console = Console(file=buf, width=120, force_terminal=False, highlight=False)
    console.print(table)
    for k, v in summary:
        console.print(f"{k:>18}: {v}", markup=False)
    return buf.getvalue().rstrip()
