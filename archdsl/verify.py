"""`archdsl verify`: one spec, one set of numbers, in every backend.

One set of canonical weights is drawn once (the NumPy build in float64, with constant tensors
such as BatchNorm's scale and running statistics perturbed so they are tested too) and loaded
into every backend's float32 build; the same random inputs go through each. Every result is
compared with the float64 NumPy reference by its normwise relative error,
max|x - ref| / max|ref|, at the tolerances of docs/verify.md, or at ten times the quantity's
float32 noise where float32 cannot reach them (`float32_noise`). Dropout is off, and every
`randn_like` returns the same draws in every backend (`archdsl.noise`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from pydantic import computed_field

from archdsl import backends as registry
from archdsl import memory
from archdsl.draws import Draws, noise
from archdsl.graph import Graph, Optimizer
from archdsl.limits import Limits
from archdsl.records import Record
from archdsl.symbolic import Sym
from archdsl.weights import WeightsError

TOLERANCE = {"output": 1e-4, "loss": 1e-4, "gradient": 1e-4, "input gradient": 1e-4,
             "running stats": 1e-4, "after SGD": 1e-4, "after Adam": 1e-4}
# One op in isolation rounds only a few times (the op-level conformance table).
SINGLE_OP = dict.fromkeys(TOLERANCE, 1e-5)
# Checks judged on one scale: parameter and input gradients both measure the loss's
# sensitivity, so an input gradient that is zero in truth is judged against the parameters'.
FAMILY = {"input gradient": "gradient"}
SGD = Optimizer(name="SGD", args={"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3,
                                  "dampening": 0.0, "nesterov": False})
ADAM = Optimizer(name="Adam", args={"lr": 1e-3, "betas": [0.9, 0.999], "weight_decay": 1e-3})
# A comparison passes within NOISE_FACTOR times its float32 noise when that is larger than
# its tolerance; the noise is the largest of NOISE_RUNS perturbed float32 runs.
NOISE_FACTOR = 10.0
NOISE_RUNS = 2


def adam_for(gradients: dict[str, np.ndarray]) -> Optimizer:
    """ADAM with eps the largest gradient entry. Adam's first step is lr * g / (|g| + eps):
    with the default eps=1e-8 that is lr * sign(g), which float32 cannot reproduce for entries
    at its rounding noise; an eps of the gradients' own scale keeps every entry's step between
    lr * g / (2 eps) and lr * g / eps, as accurate as its gradient, while the whole update rule
    (moments, bias corrections, decay) still shapes it."""
    eps = max((_max_abs(g) for g in gradients.values()), default=0.0) or 1e-8
    return Optimizer(name="Adam", args={**ADAM.args, "eps": eps})


class Row(Record):
    check: str
    backend: str
    name: str
    max_abs: float
    max_rel: float
    tolerance: float
    noise: float  # float32 noise, relative to the same scale as max_rel
    ok: bool


class Report(Record):
    model: str
    backends: list[str]
    bind: dict[str, int]
    rows: list[Row]
    errors: dict[str, str] = {}
    # backend -> why the quantities it has no row for do not apply (an inference-only build)
    not_applicable: dict[str, str] = {}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not self.errors and all(r.ok for r in self.rows)


# The ops whose argument `p` is the probability to drop something in training.
DROPOUT = ("Dropout", "Dropout1d", "Dropout2d", "DropPath")


@contextmanager
def dropout_off(graph: Graph) -> Iterator[Graph]:
    """`graph` with code records and every dropout probability 0 while the context lasts, so
    train mode is deterministic (`randn_like` is made so by `same_noise`). The arguments are
    changed in place, where code generated from the records reads them, and restored after.
    A graph without records or a spec to trace again (read from JSON) is copied instead: the
    backends that generate code then report that they cannot."""
    try:
        g = graph.traced()
    except ValueError:
        g = copy.deepcopy(graph)
    saved = []
    for holder in [*g.nodes, *g.layers.values()]:
        key = "p" if holder.op in DROPOUT else "dropout" if "dropout" in holder.args else None
        if key is not None:
            saved.append((holder, holder.args))
            holder.args = {**holder.args, key: 0.0}
    try:
        yield g
    finally:
        for holder, args in saved:
            holder.args = args


def default_bind(graph: Graph, bind: dict[str, int] | None) -> dict[str, int]:
    values = dict(bind or {})
    sizes = iter((5, 4, 6, 3, 7, 2, 8))
    for name in graph.symbols:
        if name not in values:
            values[name] = 2 if name == "B" else next(sizes)
    return values


def _int_bound(graph: Graph, node_id: int) -> int:
    """Token ids must index every Embedding the input feeds: the smallest table size."""
    bounds = [graph.layers[n.layer].args["num"] for n in graph.nodes
              if n.op == "Embedding" and node_id in n.inputs and n.layer]
    return min(bounds) if bounds else 2


def make_inputs(graph: Graph, bind: dict[str, int], rng: np.random.Generator
                ) -> list[np.ndarray]:
    out = []
    for node_id in graph.inputs:
        t = graph.nodes[node_id].type
        shape = [d.substitute(bind) if isinstance(d, Sym) else d for d in t.shape]
        if t.dtype in ("i32", "i64"):
            x = rng.integers(0, _int_bound(graph, node_id), size=shape)
            out.append(x.astype(np.int64 if t.dtype == "i64" else np.int32))
        elif t.dtype == "bool":
            out.append(rng.random(shape) < 0.5)
        else:
            out.append(rng.normal(size=shape).astype(np.float64))
    return out


def make_target(loss: str, output: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if loss == "cross_entropy":
        return rng.integers(0, output.shape[-1], size=output.shape[:-1]).astype(np.int64)
    if loss == "bce_with_logits":
        return (rng.random(output.shape) < 0.5).astype(np.float32)
    return rng.normal(size=output.shape).astype(np.float32)


def canonical_weights(reference: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    state = reference.state()
    out = {}
    for k, v in state.items():
        v = np.array(v, dtype=np.float64) if v.dtype.kind == "f" else np.array(v)
        if v.dtype.kind == "f" and v.size > 1 and np.all(v == v.flat[0]):
            if k.endswith("running_var"):
                v = rng.uniform(0.5, 1.5, size=v.shape)
            else:
                v = v + rng.normal(scale=0.1, size=v.shape)
        out[k] = v
    return out


def compare(check: str, backend: str, name: str, x: Any, ref: Any, floor: float,
            tol: float, noise: float = 0.0) -> Row:
    """Normwise relative error; the denominator is at least `floor` (a hundredth of the
    largest reference value of the same FAMILY of checks), so a tensor whose true value is
    zero, such as the gradient of a bias that feeds BatchNorm, is judged against its
    family's scale. `noise` (absolute) raises the tolerance to NOISE_FACTOR times it."""
    x = np.asarray(x, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if x.shape != ref.shape:
        return Row(check=check, backend=backend, name=f"{name} (shape {list(x.shape)} vs "
                   f"{list(ref.shape)})", max_abs=float("inf"), max_rel=float("inf"),
                   tolerance=tol, noise=0.0, ok=False)
    err = _max_abs(x - ref)
    scale = max(_max_abs(ref), floor)
    rel, noise = (err / scale, noise / scale) if scale > 0 else (err, noise)
    tol = max(tol, NOISE_FACTOR * noise)
    return Row(check=check, backend=backend, name=name, max_abs=err, max_rel=rel,
               tolerance=tol, noise=noise, ok=bool(rel <= tol))


def _max_abs(x: np.ndarray) -> float:
    return float(np.max(np.abs(x))) if x.size else 0.0


def _float32(x: np.ndarray) -> np.ndarray:
    """What a float32 backend receives: floats rounded to float32, integers as they are."""
    return x.astype(np.float32) if x.dtype.kind == "f" else x


def float32_noise(graph: Graph, weights: dict[str, np.ndarray], inputs: list[np.ndarray],
                  target: np.ndarray, loss: str, adam: Optimizer,
                  expected: list[tuple[str, str, Any]], rng: np.random.Generator
                  ) -> dict[tuple[str, str], float]:
    """How far float32 itself lands from the reference, per compared quantity (absolute).

    Some quantities cannot be computed in float32 to the documented tolerance by any
    implementation: ResNet-50's train-mode gradients at a small batch, where the last stages'
    BatchNorms normalise 8 to 32 values and a ReLU input within rounding of zero can go either
    way, move by percents. Monte Carlo arithmetic measures it: the NumPy build runs in float32
    NOISE_RUNS times with every op's output and every gradient of its backward pass perturbed
    by a random float32 rounding error of the tensor's scale (2**-23 * max|y| * N(0, 1), the
    normwise error an op with another summation order could make); each quantity's noise is
    its largest distance to the reference."""

    def perturb(y: np.ndarray) -> np.ndarray:
        if y.dtype.kind != "f":
            return y
        return y + (2.0**-23 * _max_abs(y) * rng.standard_normal(y.shape)).astype(y.dtype)

    h = harness("numpy", graph, perturb=perturb)
    f32 = {k: _float32(v) for k, v in weights.items()}
    x32 = [_float32(x) for x in inputs]
    reference = {(c, n): v for c, n, v in expected}
    noise = dict.fromkeys(reference, 0.0)
    for _ in range(NOISE_RUNS):
        for c, n, v in _measure(h, f32, x32, target, loss, adam):
            diff = np.asarray(v, dtype=np.float64) - reference[(c, n)]
            noise[(c, n)] = max(noise[(c, n)], _max_abs(diff))
    return noise


def harness(backend: str, graph: Graph, **kw: Any) -> Any:
    module = registry.get(backend).part("harness")
    return module.Harness(graph, **kw)


def same_noise(seed: int) -> Draws:
    """The draws every backend's `randn_like` returns under `archdsl.noise`: the k-th of a
    forward pass is the same array in each, run after run."""
    return lambda k, shape: np.random.default_rng([seed, 4, k]).standard_normal(shape)


def run(graph: Graph, backends: list[str], bind: dict[str, int] | None = None,
        loss: str | None = None, seed: int = 0,
        progress: Callable[[str], None] = lambda message: None,
        tolerances: dict[str, float] = TOLERANCE,
        weights: dict[str, np.ndarray] | None = None, limits: Limits | None = None) -> Report:
    """Compare `backends` with the float64 reference on drawn canonical weights, or on
    `weights` (a trained state dict; WeightsError when it does not fit the graph); `limits`
    bound the parameters before anything is allocated."""
    with noise(same_noise(seed)), dropout_off(graph) as g:
        return _run(g, graph.name, backends, bind, loss, seed, progress, tolerances, weights,
                    limits)


def _run(g: Graph, model: str, backends: list[str], bind: dict[str, int] | None,
         loss: str | None, seed: int, progress: Callable[[str], None],
         tolerances: dict[str, float], weights: dict[str, np.ndarray] | None,
         limits: Limits | None) -> Report:
    values = default_bind(g, bind)
    memory.check_training(g, limits or Limits(), values)  # before any backend allocates
    rng = np.random.default_rng(seed)
    progress("reference: NumPy float64")
    ref = harness("numpy", g, dtype=np.float64)
    if weights is None:
        weights = canonical_weights(ref, rng)
    else:
        weights = {k: np.asarray(v, np.float64) if np.asarray(v).dtype.kind == "f"
                   else np.asarray(v) for k, v in weights.items()}
    try:
        ref.load(weights)
    except ValueError as exc:  # trained weights of another model
        raise WeightsError(str(exc)) from None
    inputs = make_inputs(g, values, rng)
    loss = loss or (g.train.loss if g.train and g.train.loss else "cross_entropy")
    ref_eval = ref.forward(inputs, train=False)
    # The target has a stream of its own: the NumPy build draws its initial weights from
    # default_rng(seed), and a target equal to an output puts an l1 loss on its kink.
    target = make_target(loss, ref_eval[0], np.random.default_rng([seed, 2]))
    expected = _measure(ref, weights, inputs, target, loss)
    adam = adam_for({n: v for c, n, v in expected if c == "gradient"})
    progress("float32 noise: NumPy float32 with Monte Carlo arithmetic")
    noise = float32_noise(g, weights, inputs, target, loss, adam, expected,
                          np.random.default_rng([seed, 3]))
    report = Report(model=model, backends=backends, bind=values, rows=[])
    floors: dict[str, float] = {}
    for check, _, value in expected:
        family = FAMILY.get(check, check)
        floors[family] = max(floors.get(family, 0.0), 1e-2 * _max_abs(np.asarray(value)))
    for b in backends:
        progress(f"{b}: building and comparing")
        try:
            h = harness(b, g)
            eval_only = getattr(h, "inference_only", False)
            got = {(c, n): v for c, n, v in _measure(
                h, {k: _float32(v) for k, v in weights.items()},
                [_float32(x) for x in inputs], target, loss, adam, eval_only)}
        except Exception as exc:  # a backend that fails to build or run is a failed check
            report.errors[b] = f"{type(exc).__name__}: {exc}"
            continue
        for check, name, ref_value in expected:
            if (check, name) in got:
                report.rows.append(compare(check, b, name, got[(check, name)], ref_value,
                                           floors[FAMILY.get(check, check)], tolerances[check],
                                           noise[(check, name)]))
        if eval_only:
            report.not_applicable[b] = (
                f"runs inference only: {len(expected) - len(got)} comparisons of training "
                "(train-mode outputs, loss, gradients, optimizer steps) do not apply")
    return report


def render(report: Report, tolerances: dict[str, float] = TOLERANCE) -> str:
    """One row per compared quantity, one column per backend: relative error and verdict;
    `~` marks a tolerance raised above `tolerances` by the quantity's float32 noise."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"{report.model} ({', '.join(f'{k}={v}' for k, v in report.bind.items())}"
                  f"): relative error against NumPy float64", title_justify="left")
    table.add_column("check")
    table.add_column("tensor", no_wrap=True)
    table.add_column("tolerance", justify="right")
    for b in report.backends:
        table.add_column(b, justify="right")
    cells: dict[tuple[str, str], dict[str, Row]] = {}
    for r in report.rows:
        cells.setdefault((r.check, r.name), {})[r.backend] = r
    raised = 0
    for (check, name), by_backend in cells.items():
        first = next(iter(by_backend.values()))
        noisy = first.tolerance > tolerances.get(check, first.tolerance)
        raised += noisy
        row = [check, name, f"{first.tolerance:.1e} ~" if noisy else f"{first.tolerance:.0e}"]
        for b in report.backends:
            r = by_backend.get(b)
            row.append(("n/a" if b in report.not_applicable else "-") if r is None
                       else f"{r.max_rel:.1e} {'ok' if r.ok else 'FAIL'}")
        table.add_row(*row)
    buf = StringIO()
    console = Console(file=buf, width=140, force_terminal=False, highlight=False)
    console.print(table)
    if raised:
        console.print(f"~ {raised} tolerance(s) raised to {NOISE_FACTOR:g}x the float32 noise of "
                      "the quantity: float32 cannot compute it more closely (docs/verify.md)",
                      markup=False)
    for b, why in report.not_applicable.items():
        console.print(f"n/a: {b} {why}", markup=False)
    for b, err in report.errors.items():
        console.print(f"{b}: could not run: {err}", markup=False)
    failed = sum(not r.ok for r in report.rows)
    console.print(f"{'PASS' if report.ok else 'FAIL'}: {len(report.rows) - failed} of "
                  f"{len(report.rows)} comparisons within tolerance"
                  + (f", {len(report.errors)} backend(s) failed to run" if report.errors else ""),
                  markup=False)
    return buf.getvalue().rstrip()


def _measure(h: Any, weights: dict[str, np.ndarray], inputs: list[np.ndarray],
             target: np.ndarray, loss: str, adam: Optimizer | None = None,
             eval_only: bool = False) -> list[tuple[str, str, Any]]:
    """Every compared quantity of one backend, as (check, name, value) in report order, or
    its evaluation outputs alone (`eval_only`); Adam's eps defaults to the scale of this
    run's own gradients (`adam_for`)."""
    order: list[tuple[str, str, Any]] = []

    def put(check: str, name: str, value: Any) -> None:
        order.append((check, name, value))

    names = h.graph.output_names
    h.load(weights)
    for name, y in zip(names, h.forward(inputs, train=False), strict=True):
        put("output", f"{name} (eval)", y)
    if eval_only:
        return order
    h.load(weights)
    for name, y in zip(names, h.forward(inputs, train=True), strict=True):
        put("output", f"{name} (train)", y)
    buffers = [k for k in weights if k.endswith(("running_mean", "running_var"))]
    after = h.state()
    for k in buffers:
        put("running stats", k, after[k])
    h.load(weights)
    value, grads, input_grads = h.gradients(inputs, target, loss)
    put("loss", loss, value)
    for k in sorted(grads):
        put("gradient", k, grads[k])
    for name, gx in zip(h.graph.input_names, input_grads, strict=True):
        if gx is not None:
            put("input gradient", name, gx)
    for check, opt in (("after SGD", SGD), ("after Adam", adam or adam_for(grads))) if grads \
            else ():
        h.load(weights)
        state = h.optimizer_step(inputs, target, loss, opt)
        for k in sorted(h.graph.parameters("param")):  # those without a gradient stay put
            put(check, k, state[k])
    return order
