"""The `archdsl` command. Exit status: 0 clean, 1 errors in the spec, 2 misuse of the command."""

import gc
import math
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from archdsl import __version__
from archdsl.diagnostics import SpecError
from archdsl.ops.plugin import PluginError

app = typer.Typer(
    name="archdsl",
    help="Write a network once in a .arch file; check its shapes, count its cost, and compile "
         "it to PyTorch, TensorFlow/Keras, NumPy or ONNX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_STATE: dict[str, Any] = {"debug": False, "limits": None}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"archdsl {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks of internal "
                                        "errors.")] = False,
    limit: Annotated[list[str] | None, typer.Option("--limit", help="Raise or lower a resource "
                                                    "limit of docs/limits.md: --limit "
                                                    "max_nodes=500000 (repeatable).")] = None,
) -> None:
    _STATE["debug"] = debug
    _STATE["limits"] = parse_limits(limit or [])


def parse_limits(items: list[str]) -> Any:
    from archdsl.limits import Limits
    values: dict[str, int] = {}
    for key, value in parse_assignments(items, "--limit").items():
        if key not in Limits.model_fields:
            fail(f"--limit: no limit named {key!r}; limits: {', '.join(Limits.model_fields)}")
        values[key] = parse_count(f"--limit {key}", value, 2**63 - 1)
    return Limits(**values)


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def show_diagnostics(text: str) -> None:
    """Rendered diagnostics on standard error, in colour on a terminal (archdsl.color)."""
    from archdsl.color import for_stream
    typer.echo(for_stream(text, sys.stderr), err=True, color=True)


def run_guarded(fn: Callable[[], int | None]) -> None:
    """Run a command body: spec errors print as diagnostics (exit 1), never as tracebacks."""
    try:
        code = fn() or 0
    except SpecError as err:
        show_diagnostics(err.render())
        n = len(err.diagnostics)
        typer.echo(f"\n{n} error{'s' if n != 1 else ''} found", err=True)
        raise typer.Exit(1) from None
    except PluginError as err:  # a plugin that does not load or breaks: not the spec's fault
        fail(str(err))
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        if _STATE["debug"]:
            traceback.print_exc()
        typer.echo(f"internal error: {exc!r} (run with --debug for details; please report it)",
                   err=True)
        raise typer.Exit(3) from None
    raise typer.Exit(code)


def parse_assignments(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            fail(f"{what} takes NAME=VALUE, got {item!r}")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:  # bytes the locale could not decode, kept as surrogates
            fail(f"{what} takes UTF-8 text; {item!r} holds bytes that are not")
        out[key.strip()] = value.strip()
    return out


def parse_binds(items: list[str]) -> dict[str, int]:
    """--bind values: sizes, so from 1 to the limit on a dimension (docs/limits.md)."""
    from archdsl.limits import Limits
    largest = (_STATE["limits"] or Limits()).max_dim
    return {key: parse_count(f"--bind {key}", value, largest)
            for key, value in parse_assignments(items, "--bind").items()}


def parse_count(what: str, value: str, largest: int) -> int:
    """A whole number from 1 to `largest`, or a usage error that quotes the value (cut)."""
    shown = repr(value if len(value) <= 40 else value[:40] + "...")
    if len(value) > 40:
        fail(f"{what} takes a whole number from 1 to {largest:,}, not {shown}")
    try:
        n = int(value.replace("_", ""))
    except ValueError:
        fail(f"{what} needs an integer, got {shown}")
    if not 1 <= n <= largest:
        fail(f"{what} takes a whole number from 1 to {largest:,}, not {shown}")
    return n


def check_backend(name: str) -> None:
    from archdsl.api import BACKENDS
    if name not in BACKENDS:
        fail(f"--backend is one of {', '.join(BACKENDS)}, not {name!r}")


def _sources(paths: list[Path] | None) -> dict[str, Any]:
    """Loading options: the folders imports may come from (--path) and --limit's limits."""
    return {"search_paths": [str(p) for p in paths or []], "limits": _STATE["limits"]}


def _spec_file(path: Path) -> Path:
    from archdsl.outputs import PathRefused, check_spec_file
    try:
        return check_spec_file(path)
    except PathRefused as exc:
        raise typer.BadParameter(str(exc)) from None


def _spec_files(paths: list[Path]) -> list[Path]:
    return [_spec_file(p) for p in paths]


FileArg = Annotated[Path, typer.Argument(help="A .arch spec.", show_default=False,
                                         callback=_spec_file)]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m",
                                              help="Which model or gan of the file.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a model parameter: "
                                                  "--set layers=24 (repeatable).")]
BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="torch, tensorflow, numpy or "
                                         "onnx.")]
PathOpt = Annotated[list[Path] | None, typer.Option("--path", "-I", help="Another folder "
                                                    "imports may come from (repeatable).")]
PluginOpt = Annotated[list[str] | None, typer.Option("--plugin", help="Import this Python "
                                                     "module first: the ops it declares "
                                                     "(docs/plugins.md). Repeatable.")]


def load_plugins(modules: list[str] | None) -> None:
    """The plugins of `--plugin`, then those installed under the entry point group."""
    from archdsl.ops import plugin
    for module in modules or []:
        plugin.load(module)
    plugin.load_entry_points()


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="One or more .arch specs.",
                                                show_default=False, callback=_spec_files)],
    emit_ir: Annotated[str | None, typer.Option("--emit-ir", help="Print the typed graph: "
                                                "json.")] = None,
    model: ModelOpt = None,
    set_: SetOpt = None,
    path: PathOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """Parse and check specs: every shape proved, every error reported with its location."""
    if emit_ir not in (None, "json"):
        fail(f"--emit-ir supports json, not {emit_ir!r}")
    params = parse_assignments(set_ or [], "--set")

    def body() -> int:
        load_plugins(plugin)
        from archdsl.api import load
        failed = 0
        for f in files:
            try:
                program = load(f, **_sources(path), check=emit_ir is None
                               and not params and model is None)
                if emit_ir or params or model:
                    g = program.graph(model, params)
                    if emit_ir:
                        typer.echo(g.model_dump_json(indent=2))
                        continue
                    names = [g.name]
                else:
                    names = program.check()
                for w in program.warnings:
                    show_diagnostics(w.render(program.sources))
                if not emit_ir:
                    typer.echo(f"{f}: ok ({', '.join(names) or 'no models'})")
            except SpecError as err:
                failed += len(err.diagnostics)
                show_diagnostics(err.render() + "\n")
        if failed:
            typer.echo(f"{failed} error{'s' if failed != 1 else ''} found", err=True)
            return 1
        return 0

    run_guarded(body)


@app.command()
def analyze(
    file: FileArg,
    model: ModelOpt = None,
    bind: Annotated[list[str] | None, typer.Option("--bind", help="Give a symbolic dimension a "
                                                   "value: --bind T=128 (B defaults to 1).")]
    = None,
    set_: SetOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json, markdown or csv.")]
    = "table",
    depth: Annotated[int | None, typer.Option(
        "--depth", min=0, help="Sum rows below this block nesting into their block (default: "
        "1 for table and markdown, every layer for json and csv).")] = None,
    train: Annotated[bool, typer.Option("--train", help="Also estimate training memory "
                                        "(weights, gradients, optimizer state, activations).")]
    = False,
    devices: Annotated[int | None, typer.Option("--devices", min=1, help="Plan training on N "
                                                "devices: one device's memory at the global "
                                                "batch B (default: the spec's).")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="ddp (default), fsdp, "
                                                 "zero2 or zero3, with --devices.")] = None,
    path: PathOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """Exact parameters, FLOPs and memory, per layer and in total."""
    from archdsl.sharding import STRATEGIES
    if fmt not in ("table", "json", "markdown", "csv"):
        fail(f"--format is table, json, markdown or csv, not {fmt!r}")
    if strategy is not None and strategy not in STRATEGIES:
        fail(f"--strategy is one of {', '.join(STRATEGIES)}, not {strategy!r}")
    params = parse_assignments(set_ or [], "--set")
    binds = parse_binds(bind or [])

    def body() -> int:
        load_plugins(plugin)
        from archdsl.api import graph
        from archdsl.cost import analyze_graph, render
        from archdsl.sharding import analyze_on_devices
        g = graph(file, model, params, **_sources(path))
        if devices is None and strategy is None:
            report = analyze_graph(g, bind=binds, train=train)
        else:
            try:
                report = analyze_on_devices(g, binds, devices or 1, strategy or "ddp")
            except ValueError as exc:
                fail(str(exc))
        typer.echo(render(report, fmt, depth))
        return 0

    run_guarded(body)


@app.command("compile")
def compile_(
    file: FileArg,
    backend: BackendOpt = "torch",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the module (or "
                                                "the ONNX model) here instead of standard "
                                                "output.")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="With --backend onnx: the "
                                                 "weights the model carries (.safetensors, "
                                                 ".npz, or a checkpoint of `archdsl train`), "
                                                 "in PyTorch's state-dict keys; without it, "
                                                 "freshly initialised ones.")] = None,
    model: ModelOpt = None,
    set_: SetOpt = None,
    path: PathOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """Generate a readable, standalone module for one backend, or an ONNX model."""
    check_backend(backend)
    if weights is not None and backend != "onnx":
        fail("--weights goes with --backend onnx: the generated modules initialise their own "
             "weights and load a state dict at run time")
    if backend == "onnx" and output is None and sys.stdout.isatty():
        fail("an ONNX model is binary: write it to a file with -o model.onnx, or pipe it")
    params = parse_assignments(set_ or [], "--set")
    if output is not None:
        _check_output(output, [file])

    def body() -> int:
        load_plugins(plugin)
        from archdsl import weights as weight_files
        from archdsl.api import check_memory, graph, load, located
        from archdsl.checkpoint import CheckpointError
        from archdsl.weights import WeightsError
        program = load(file, check=False, **_sources(path))
        g = graph(program, model, params)
        beside = None
        try:
            options = {} if weights is None else {"weights": weight_files.load(weights)}
            with located(program):
                if backend == "onnx":
                    check_memory(g, program, export=True)  # the file carries the weights
                    content, beside = _onnx(g, output, options)
                else:
                    content = _generate(g, backend)
        except (WeightsError, CheckpointError) as exc:  # unreadable, not this model's, too big
            fail(str(exc), 1)
        if output is None:
            if isinstance(content, bytes):
                sys.stdout.buffer.write(content)
                sys.stdout.buffer.flush()
            else:
                _write_stdout(content)
        else:
            _write_output(output, content, program)
            also = f", its weights in {beside}" if beside else ""
            typer.echo(f"wrote {output} ({backend}, {g.name}){also}", err=True)
        return 0

    run_guarded(body)


@app.command()
def train(
    file: FileArg,
    backend: BackendOpt = "torch",
    data: Annotated[str | None, typer.Option("--data", help="An embedded dataset (digits, "
                                             "chars, copy, reverse, sort, first) or an .npz "
                                             "file; by default the one that fits the spec.")]
    = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=0, help="Override the spec's "
                                               "epochs.")] = None,
    batch: Annotated[int | None, typer.Option("--batch", min=1, help="Override the spec's "
                                              "batch size.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0, help="Override the "
                                             "optimizer's learning rate.")] = None,
    schedule: Annotated[str | None, typer.Option("--schedule", help="Override the spec's "
                                                 "learning-rate schedule: "
                                                 "\"Cosine(warmup=100)\", "
                                                 "\"Step(step_size=300, gamma=0.5)\", "
                                                 "\"OneCycle(max_lr=0.01)\".")] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="At most this many "
                                              "optimizer steps and held-out batches per "
                                              "epoch: a quick smoke run.")] = None,
    early_stop: Annotated[int | None, typer.Option("--early-stop", min=0, metavar="N",
                                                   help="Stop after N epochs without a "
                                                   "better held-out metric (0: never).")]
    = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The run's folder (default "
                                             "runs/<spec>/<date_time>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out (by "
                                         "default the spec's latest run).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the run --out "
                                            "holds.")] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for weights, data split "
                                             "and order, and dropout (default 0).")] = None,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="Processes for data-parallel "
                                       "PyTorch training under torchrun (gloo on CPU, NCCL on "
                                       "GPUs); the batch is the global batch.")] = 1,
    device: Annotated[str | None, typer.Option("--device", help="auto (default), cpu, cuda, "
                                               "cuda:N or mps; auto takes a GPU when there is "
                                               "one. A resumed run keeps its own.")] = None,
    precision: Annotated[str | None, typer.Option("--precision", help="fp32 (default), or "
                                                  "bf16 / fp16 mixed precision (torch and "
                                                  "tensorflow).")] = None,
    strategy: Annotated[str, typer.Option("--strategy", help="With --nproc: ddp replicates "
                                          "the model, fsdp shards it (FSDP2).")] = "ddp",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Threads of every "
                                                "pool (torch, TensorFlow, BLAS); default: the "
                                                "idle cores this process may use.")] = None,
    model: ModelOpt = None,
    set_: SetOpt = None,
    path: PathOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """Train a model on embedded or .npz data into a run folder of its own: checkpoints,
    best and last weights (model.safetensors), metrics (CSV, TensorBoard) and curves."""
    from archdsl import runs, schedules
    from archdsl.devices import DeviceError
    from archdsl.devices import check as check_device
    from archdsl.sharding import TRAIN_STRATEGIES
    check_backend(backend)
    from archdsl.api import TRAINABLE
    if backend not in TRAINABLE:
        fail(f"--backend {backend} runs inference only; train with {', '.join(TRAINABLE[:-1])} "
             f"or {TRAINABLE[-1]}, "
             f"then export: archdsl compile FILE --backend {backend} --weights "
             "runs/<model>/checkpoint.npz -o model.onnx")
    try:
        check_device(backend, device or "auto", precision or "fp32")
    except DeviceError as exc:
        fail(str(exc))
    params = parse_assignments(set_ or [], "--set")
    try:
        chosen_schedule = schedules.parse(schedule) if schedule is not None else None
    except ValueError as exc:
        fail(f"--schedule: {exc}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        fail(f"--lr takes a positive finite number, not {lr}")
    if out is not None:
        from archdsl.outputs import PathRefused, check_output_folder
        try:
            check_output_folder(out)
        except PathRefused as exc:
            fail(str(exc))
    if nproc > 1 and backend != "torch":
        fail("--nproc runs the PyTorch build; use --backend torch")
    if strategy not in TRAIN_STRATEGIES:
        fail(f"train --strategy is ddp or fsdp, not {strategy!r} (zero2 and zero3 are "
             "DeepSpeed's: `archdsl analyze --devices N --strategy` plans them)")
    if strategy != "ddp" and nproc == 1 and int(os.environ.get("WORLD_SIZE", 1)) == 1:
        fail(f"--strategy {strategy} shares the model over processes: add --nproc N")
    _size_thread_pools(threads, nproc, backend)

    def launch() -> int:
        """Check the spec once here, so its errors are reported once and never as a failure
        of torchrun's workers; claim the run folder; then train in `nproc` processes."""
        from archdsl.api import graph
        from archdsl.graph import GanGraph
        g = graph(file, model, params, **_sources(path))
        if isinstance(g, GanGraph):
            fail(f"`{g.name}` is a gan: it trains in one process (drop --nproc)")
        try:
            folder = run_folder(file, out, resume)
            runs.claim(folder, resume, overwrite)
        except runs.RunError as exc:
            fail(str(exc))
        return _torchrun(nproc, folder)

    if nproc > 1:
        run_guarded(launch)
    quiet(backend)

    def body() -> int:
        load_plugins(plugin)
        from archdsl.api import graph, load, located
        program = load(file, check=False, **_sources(path))
        with located(program):  # a backend's refusal quotes the spec
            g = graph(program, model, params)
            try:
                folder = run_folder(file, out, resume)
            except runs.RunError as exc:
                fail(str(exc))
            try:
                return trained(g, folder, program.limits)
            finally:
                if out is None and not resume and not any(folder.iterdir()):
                    folder.rmdir()  # a fresh folder the run never wrote to

    def trained(g: Any, folder: Path, limits: Any) -> int:
        from archdsl.checkpoint import CheckpointError
        from archdsl.data import DataError
        from archdsl.graph import GanGraph
        from archdsl.train import fit
        if isinstance(g, GanGraph):
            from archdsl.gan import fit as fit_gan
            if chosen_schedule or early_stop:
                fail(f"`{g.name}` is a gan: --schedule and --early-stop apply to models (a "
                     "gan has no held-out metric, and its two optimizers no schedule yet)")
            try:
                gan_result = fit_gan(g, file.read_text(encoding="utf-8"), backend, folder,
                                     epochs=epochs, batch=batch, lr=lr, seed=seed or 0,
                                     resume=resume, max_steps=steps, overwrite=overwrite,
                                     progress=sys.stderr.isatty(), device=device,
                                     precision=precision,
                                     log=lambda m: typer.echo(m, err=True), limits=limits)
            except (runs.RunError, DeviceError) as exc:
                fail(str(exc))
            except (CheckpointError, ValueError) as exc:
                fail(str(exc), 1)
            if gan_result.stopped:
                typer.echo(f"stopped: {gan_result.stopped}", err=True)
                return 1
            sys.stderr.flush()
            typer.echo(f"{g.name}: samples, losses, model.safetensors and judge.json in "
                       f"{folder}")
            return 0
        try:
            result = fit(g, file.read_text(encoding="utf-8"), backend, folder, data=data,
                         epochs=epochs, batch=batch, lr=lr, seed=seed, resume=resume,
                         steps=steps, progress=sys.stderr.isatty(),
                         log=lambda m: typer.echo(m, err=True), schedule=chosen_schedule,
                         early_stop=early_stop, overwrite=overwrite, limits=limits,
                         device=device, precision=precision, strategy=strategy)
        except (runs.RunError, DeviceError) as exc:
            fail(str(exc))
        except (DataError, CheckpointError, ValueError) as exc:
            fail(str(exc), 1)
        from archdsl.train import distributed_rank
        if distributed_rank()[0] != 0:
            return 0  # rank 0 reports for everyone
        if result.stopped:
            typer.echo(f"stopped: {result.stopped}", err=True)
        sys.stderr.flush()  # the summary comes after the epochs' lines
        typer.echo(summary(g.name, backend, result))
        return 1 if result.stopped and "interrupted" not in result.stopped else 0

    run_guarded(body)


def run_folder(file: Path, out: Path | None, resume: bool) -> Path:
    """`--out`, else the spec's latest run (`--resume`) or a new one (runs.py)."""
    from archdsl import runs
    if out is not None:
        return out
    return runs.latest(file) if resume else runs.new_folder(file)


def summary(name: str, backend: str, result: Any) -> str:
    """The run's outcome: best and last epochs with their held-out metrics, and its files."""
    from archdsl.weights import BEST, FILE
    last = result.history[-1] if result.history else None
    if last is None:
        return f"{name}: no epoch finished ({backend}); the run is in {result.out}"
    best = result.best or last
    classify = best["val_accuracy"] == best["val_accuracy"]  # accuracy is NaN for regression

    def metric(row: dict[str, Any]) -> str:
        return f"{row['val_accuracy']:.2%} (loss {row['val_loss']:.4f})" if classify else \
            f"{row['val_loss']:.4f}"

    lines = [f"{name}: best held-out {'accuracy' if classify else 'loss'} {metric(best)} at "
             f"epoch {best['epoch']}, last {metric(last)} at epoch {last['epoch']} ({backend})"]
    if result.early_stop:
        lines.append(f"early stop: {result.early_stop}")
    lines.append(f"weights: {result.out / BEST / FILE} (best), {result.out / FILE} (last); "
                 f"metrics.csv, TensorBoard events, checkpoint and curves in {result.out}")
    return "\n".join(lines)


def quiet(*backends: str) -> None:
    """Keep TensorFlow's start-up logs out of the terminal, unless --debug."""
    if "tensorflow" in backends and not _STATE["debug"]:
        from archdsl.quiet import import_tensorflow
        import_tensorflow()


@app.command()
def predict(
    file: FileArg,
    weights: Annotated[Path, typer.Option("--weights", "-w", help="A model.safetensors, or a "
                                          "run folder (its best weights).",
                                          show_default=False)],
    data: Annotated[str | None, typer.Option("--data", help="An .npz with arrays named after "
                                             "the spec's inputs (labels optional), or an "
                                             "embedded dataset (its held-out split); by "
                                             "default the spec's.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Save to FILE.npz "
                                                "(every output) or FILE.csv (the printed "
                                                "table) instead of printing.")] = None,
    backend: BackendOpt = "torch",
    batch: Annotated[int, typer.Option("--batch", min=1, help="Examples per forward "
                                       "pass.")] = 256,
    seed: Annotated[int | None, typer.Option("--seed", help="For an embedded dataset, the "
                                             "seed of its held-out split (default: the "
                                             "run's).")] = None,
    model: ModelOpt = None,
    set_: SetOpt = None,
    path: PathOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """Run trained weights on data: print the predictions, or save them to .npz or .csv."""
    check_backend(backend)
    if output is not None and output.suffix not in (".npz", ".csv"):
        fail(f"-o must end in .npz or .csv, not {output.name!r}")
    params = parse_assignments(set_ or [], "--set")
    quiet(backend)

    def body() -> int:
        load_plugins(plugin)
        from rich.progress import Progress

        from archdsl import predict as pred
        from archdsl import weights as w
        from archdsl.api import graph, load, located
        from archdsl.data import DataError
        from archdsl.graph import GanGraph
        program = load(file, check=False, **_sources(path))
        g = graph(program, model, params)
        if isinstance(g, GanGraph):
            fail(f"`{g.name}` is a gan: predict runs a model; name its generator or "
                 "discriminator with --model")
        try:
            state = w.load(weights)
            run_seed = int(w.metadata(weights).get("seed", 0))
            inputs, labels, described = pred.load_data(g, data, run_seed if seed is None
                                                        else seed)
        except (w.WeightsError, DataError) as exc:
            fail(str(exc), 1)
        source = w.locate(weights)
        bar = Progress(disable=not sys.stderr.isatty(), transient=True)
        with located(program), bar:
            task = bar.add_task(f"predicting with {g.name}", total=len(inputs[0]))
            try:
                outputs = pred.predict(g, backend, state, inputs, batch,
                                       lambda n: bar.update(task, advance=n))
            except w.WeightsError as exc:
                fail(f"{source}: {exc}", 1)
        predictions = pred.Predictions(outputs, (g.train and g.train.loss) or "cross_entropy",
                                       labels)
        accuracy = predictions.accuracy()
        typer.echo(f"{g.name}: {len(inputs[0])} examples of {described} with {backend}, "
                   f"weights {source}" + (f"; accuracy {accuracy:.2%} against its labels"
                                          if accuracy is not None else ""), err=True)
        try:
            if output is None:
                typer.echo(pred.render(predictions))
            else:
                pred.write(predictions, output)
                typer.echo(f"wrote {output}", err=True)
        except ValueError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}", 1)
        return 0

    run_guarded(body)


@app.command("graph")
def graph_(
    file: FileArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="net.svg, net.png, net.dot "
                                         "or net.mmd (Mermaid).")],
    depth: Annotated[int, typer.Option("--depth", min=1, help="Nesting level at which blocks "
                                       "are drawn as one box (1: top-level blocks).")] = 1,
    model: ModelOpt = None,
    set_: SetOpt = None,
    path: PathOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """Draw the model (or a gan's two models): one box per layer or block with its
    arguments and parameters, shapes on the edges."""
    fmt = output.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "dot", "mmd"):
        fail(f"-o must end in .svg, .png, .dot or .mmd, not {output.name!r}")
    params = parse_assignments(set_ or [], "--set")
    _check_output(output, [file])

    def body() -> int:
        load_plugins(plugin)
        from archdsl.api import graph, load
        from archdsl.diagram import GraphvizMissing, render
        program = load(file, check=False, **_sources(path))
        g = graph(program, model, params)
        try:
            content = render(g, fmt, depth)
        except GraphvizMissing as exc:
            fail(str(exc), 1)
        _write_output(output, content, program)
        typer.echo(f"wrote {output}", err=True)
        return 0

    run_guarded(body)


@app.command()
def verify(
    file: FileArg,
    backends: Annotated[str, typer.Option("--backends", help="Comma-separated backends to "
                                          "compare with the NumPy float64 reference.")]
    = "torch,tensorflow,numpy,onnx",
    bind: Annotated[list[str] | None, typer.Option("--bind", help="Sizes for symbolic "
                                                   "dimensions (B defaults to 2, others to "
                                                   "small distinct sizes).")] = None,
    loss: Annotated[str | None, typer.Option("--loss", help="Loss for the gradient checks "
                                             "(default: the spec's).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    weights: Annotated[Path | None, typer.Option("--weights", "-w", help="Compare with these "
                                                 "weights (a model.safetensors or a run "
                                                 "folder) instead of drawn ones.")] = None,
    model: ModelOpt = None,
    set_: SetOpt = None,
    path: PathOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """Check that every backend computes the same numbers: outputs, loss, gradients, running
    statistics and one SGD and one Adam step, against a float64 NumPy reference."""
    from archdsl.api import BACKENDS
    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown or not chosen:
        fail(f"--backends takes some of {', '.join(BACKENDS)}; got {backends!r}")
    if fmt not in ("table", "json"):
        fail(f"--format is table or json, not {fmt!r}")
    if loss is not None and loss not in ("cross_entropy", "bce_with_logits", "mse", "l1"):
        fail(f"--loss is cross_entropy, bce_with_logits, mse or l1, not {loss!r}")
    params = parse_assignments(set_ or [], "--set")
    binds = parse_binds(bind or [])
    quiet(*chosen)

    def body() -> int:
        load_plugins(plugin)
        from rich.console import Console

        from archdsl.api import graph, load, located
        from archdsl.graph import GanGraph
        from archdsl.verify import render, run
        program = load(file, check=False, **_sources(path))
        g = graph(program, model, params)
        sides = [g.generator, g.discriminator] if isinstance(g, GanGraph) else [g]
        from archdsl import weights as w
        from archdsl.weights import WeightsError
        state = None
        if weights is not None:
            if len(sides) > 1:
                fail(f"`{g.name}` is a gan: verify the weights of its generator or "
                     "discriminator with --model")
            try:
                state = w.load(weights)
            except WeightsError as exc:
                fail(str(exc), 1)
        console = Console(stderr=True)
        ok = True
        for side in sides:
            with console.status(f"verifying {side.name}") as status, located(program):
                try:
                    report = run(side, chosen, bind=binds, loss=loss, seed=seed,
                                 progress=lambda m, s=status, n=side.name: s.update(
                                     f"{n}: {m}"), weights=state, limits=program.limits)
                except WeightsError as exc:
                    fail(f"--weights {weights}: {exc}", 1)
            typer.echo(report.model_dump_json(indent=2) if fmt == "json" else render(report))
            ok = ok and report.ok
        return 0 if ok else 1

    run_guarded(body)


@app.command("fmt")
def fmt_(
    files: Annotated[list[Path], typer.Argument(help="Specs or folders of specs; - reads "
                                                "standard input and writes standard output.",
                                                show_default=False)],
    check: Annotated[bool, typer.Option("--check", help="Change nothing; exit 1 if a file "
                                        "is not formatted.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Change nothing; print what would "
                                       "change.")] = False,
) -> None:
    """Lay specs out in the one canonical layout (comments kept, meaning unchanged)."""
    from archdsl.formatter import spec_files

    def body() -> int:
        import difflib

        from archdsl.formatter import format_source
        stdin = [str(f) for f in files] == ["-"]
        changed = 0
        for f in [Path("-")] if stdin else spec_files(files):
            text = sys.stdin.buffer.read() if stdin else f.read_bytes()
            new = format_source(text, "<stdin>" if stdin else str(f))
            if stdin and not (check or diff):
                sys.stdout.write(new)
            if new.encode("utf-8") == text:
                continue
            changed += 1
            if diff:
                old = text.decode("utf-8", "replace").splitlines(keepends=True)
                sys.stdout.writelines(difflib.unified_diff(old, new.splitlines(keepends=True),
                                                           str(f), str(f)))
            elif check:
                typer.echo(f"would reformat {f}", err=True)
            elif not stdin:
                _write_atomic(f, new)
                typer.echo(f"reformatted {f}", err=True)
        return 1 if changed and (check or diff) else 0

    missing = [f for f in files if str(f) != "-" and not f.exists()]
    if missing:
        fail(f"no such file or folder: {missing[0]}")
    run_guarded(body)


@app.command()
def explain(
    code: Annotated[str | None, typer.Argument(help="A diagnostic code, such as E0302; "
                                               "without one, every code.",
                                               show_default=False)] = None,
) -> None:
    """Explain a diagnostic code: what it means, a spec that gets it, and the fix."""
    from archdsl import explain as catalogue
    if code is None:
        typer.echo(catalogue.catalogue(), nl=False)
        return
    known = catalogue.normalize(code)
    if known is None:
        near = catalogue.near(code)
        fail(f"no diagnostic code {code!r}" + (f"; did you mean {near}?" if near else "")
             + " (`archdsl explain` lists them)")
    from archdsl.color import wanted
    colored = wanted(sys.stdout)
    run_guarded(lambda: typer.echo(catalogue.explain(known, colored), nl=False, color=colored))


@app.command()
def lsp(
    stdio: Annotated[bool, typer.Option("--stdio", help="Talk over standard input and "
                                        "output (the only way; accepted for editors that "
                                        "pass it).")] = True,
) -> None:
    """Run the language server for editors (diagnostics, hover, definitions, completion,
    formatting); see docs/editor.md."""
    try:
        from archdsl.lsp import main as serve
    except ImportError as exc:
        fail(f"the language server needs pygls ({exc.name} is missing): "
             "pip install 'archdsl[lsp]'")
    serve()


@app.command()
def schema(
    what: Annotated[str, typer.Argument(help="ir (the typed graph of check --emit-ir json) "
                                        "or analysis (analyze --format json).",
                                        show_default=False)],
) -> None:
    """Print the JSON Schema of a JSON output of archdsl."""
    import json

    from archdsl.schemas import SCHEMAS
    if what not in SCHEMAS:
        fail(f"schema takes {' or '.join(SCHEMAS)}, not {what!r}")
    typer.echo(json.dumps(SCHEMAS[what](), indent=2))


def _size_thread_pools(threads: int | None, nproc: int, backend: str) -> None:
    """Before any framework loads (archdsl/threads.py); `nproc` processes share the threads."""
    from archdsl.threads import configure
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        return  # a torchrun worker: its parent sized the pools for it
    n, why = configure(threads)
    if nproc > 1:
        n, _ = configure(max(1, n // nproc))
        why += f", shared by {nproc} processes"
    if backend == "tensorflow" and threads is None:
        typer.echo(f"threads: TensorFlow's own pools, {n} for BLAS ({why})", err=True)
    else:
        typer.echo(f"threads: {n} per pool ({why})", err=True)


def _torchrun(nproc: int, folder: Path) -> int:
    """Run this same `train` command in `nproc` processes under torchrun (single node), all
    into `folder` (already claimed: its old run replaced if --overwrite said so)."""
    import subprocess
    cleaned: list[str] = []
    args = iter(sys.argv[1:])
    for a in args:
        if a in ("--nproc", "--out", "-o"):
            next(args, None)
        elif not a.startswith(("--nproc=", "--out=")) and a != "--overwrite":
            cleaned.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "archdsl.cli", *cleaned, "--out", str(folder)]
    return subprocess.call(cmd)


def _generate(g: Any, backend: str) -> str:
    from archdsl.api import backend as backend_module
    return backend_module(backend).generate(g)


def _onnx(g: Any, output: Path | None, options: dict[str, Any]) -> tuple[bytes, Path | None]:
    """The model file's bytes and, for a model over 2 GiB written to `output`, the file of
    weights already written beside it."""
    from archdsl.backends.onnx import export, serialized
    return serialized(export(g, **options), output)


def _write_atomic(path: Path, content: str) -> None:
    from archdsl.checkpoint import write_atomic
    write_atomic(path, lambda f: f.write(content.encode("utf-8")))


def _check_output(output: Path, reading: list[Path]) -> None:
    """Refuse a bad -o before any work (misuse: exit 2)."""
    from archdsl.outputs import PathRefused, check_output
    try:
        check_output(output, reading)
    except PathRefused as exc:
        fail(str(exc))


def _write_output(output: Path, content: str | bytes, program: Any) -> None:
    """Write -o, never over a spec the program read (its imports too)."""
    from archdsl.outputs import PathRefused, write_output
    try:
        write_output(output, content, list(program.scopes))
    except PathRefused as exc:
        fail(str(exc))


def _write_stdout(text: str) -> None:
    """Generated modules are UTF-8 whatever the locale's encoding."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.buffer.flush()


def main() -> None:
    """The `archdsl` program. When it exits, every object dies with the process: `gc.freeze`
    spares them the interpreter's last pass of the cyclic collector, which walked them all
    once more for memory the process returns anyway (0.05 s of CPU after analyzing
    ResNet-50; 1 to 1.5 s after checking a 10,000-block spec, whose elaboration pauses the
    collector and leaves a heap of cyclic garbage)."""
    try:
        app()
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
