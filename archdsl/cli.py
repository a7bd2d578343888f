"""The `archdsl` command. Exit status: 0 clean, 1 errors in the spec, 2 misuse of the command."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from archdsl import __version__
from archdsl.diagnostics import SpecError

app = typer.Typer(
    name="archdsl",
    help="Write a network once in a .arch file; check its shapes, count its cost, and compile "
         "it to PyTorch, TensorFlow/Keras or NumPy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_STATE = {"debug": False}


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
) -> None:
    _STATE["debug"] = debug


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run_guarded(fn: Callable[[], int | None]) -> None:
    """Run a command body: spec errors print as diagnostics (exit 1), never as tracebacks."""
    try:
        code = fn() or 0
    except SpecError as err:
        typer.echo(err.render(), err=True)
        n = len(err.diagnostics)
        typer.echo(f"\n{n} error{'s' if n != 1 else ''} found", err=True)
        raise typer.Exit(1) from None
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
        out[key.strip()] = value.strip()
    return out


def parse_binds(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in parse_assignments(items, "--bind").items():
        try:
            out[key] = int(value.replace("_", ""))
        except ValueError:
            fail(f"--bind {key} needs an integer, got {value!r}")
        if out[key] < 1:
            fail(f"--bind {key} must be at least 1")
    return out


def check_backend(name: str) -> None:
    from archdsl.api import BACKENDS
    if name not in BACKENDS:
        fail(f"--backend is one of {', '.join(BACKENDS)}, not {name!r}")


def _search_paths(paths: list[Path] | None) -> list[str]:
    return [str(p) for p in paths or []]


FileArg = Annotated[Path, typer.Argument(help="A .arch spec.", show_default=False)]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m",
                                              help="Which model or gan of the file.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a model parameter: "
                                                  "--set layers=24 (repeatable).")]
BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="torch, tensorflow or numpy.")]
PathOpt = Annotated[list[Path] | None, typer.Option("--path", "-I", help="Another folder "
                                                    "imports may come from (repeatable).")]


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="One or more .arch specs.",
                                                show_default=False)],
    emit_ir: Annotated[str | None, typer.Option("--emit-ir", help="Print the typed graph: "
                                                "json.")] = None,
    model: ModelOpt = None,
    set_: SetOpt = None,
    path: PathOpt = None,
) -> None:
    """Parse and check specs: every shape proved, every error reported with its location."""
    if emit_ir not in (None, "json"):
        fail(f"--emit-ir supports json, not {emit_ir!r}")
    params = parse_assignments(set_ or [], "--set")

    def body() -> int:
        from archdsl.api import load
        failed = 0
        for f in files:
            try:
                program = load(str(f), search_paths=_search_paths(path), check=emit_ir is None
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
                    typer.echo(w.render(program.sources), err=True)
                if not emit_ir:
                    typer.echo(f"{f}: ok ({', '.join(names) or 'no models'})")
            except SpecError as err:
                failed += len(err.diagnostics)
                typer.echo(err.render() + "\n", err=True)
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
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or markdown.")]
    = "table",
    depth: Annotated[int, typer.Option("--depth", help="Block nesting shown in the table.",
                                       min=0)] = 1,
    train: Annotated[bool, typer.Option("--train", help="Also estimate training memory "
                                        "(weights, gradients, optimizer state, activations).")]
    = False,
    devices: Annotated[int | None, typer.Option("--devices", min=1, help="Plan training on N "
                                                "devices: one device's memory at the global "
                                                "batch B (default: the spec's).")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="ddp (default), fsdp, "
                                                 "zero2 or zero3, with --devices.")] = None,
    path: PathOpt = None,
) -> None:
    """Exact parameters, FLOPs and memory, per layer and in total."""
    from archdsl.sharding import STRATEGIES
    if fmt not in ("table", "json", "markdown"):
        fail(f"--format is table, json or markdown, not {fmt!r}")
    if strategy is not None and strategy not in STRATEGIES:
        fail(f"--strategy is one of {', '.join(STRATEGIES)}, not {strategy!r}")
    params = parse_assignments(set_ or [], "--set")
    binds = parse_binds(bind or [])

    def body() -> int:
        from archdsl.api import graph
        from archdsl.cost import analyze_graph, render
        from archdsl.sharding import analyze_on_devices
        g = graph(str(file), model, params, search_paths=_search_paths(path))
        if devices is None and strategy is None:
            report = analyze_graph(g, bind=binds, train=train)
        else:
            try:
                report = analyze_on_devices(g, binds, devices or 1, strategy or "ddp")
            except ValueError as exc:
                fail(str(exc))
        typer.echo(render(report, fmt, depth, {s.path: s.definition for s in g.scopes}))
        return 0

    run_guarded(body)


@app.command("compile")
def compile_(
    file: FileArg,
    backend: BackendOpt = "torch",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the module here "
                                                "instead of standard output.")] = None,
    model: ModelOpt = None,
    set_: SetOpt = None,
    path: PathOpt = None,
) -> None:
    """Generate a readable, standalone module for one backend."""
    check_backend(backend)
    params = parse_assignments(set_ or [], "--set")

    def body() -> int:
        from archdsl.api import graph, load, located
        program = load(str(file), check=False, search_paths=_search_paths(path))
        g = graph(program, model, params)
        with located(program):
            source = _generate(g, backend)
        if output is None:
            sys.stdout.write(source)
        else:
            _write_atomic(output, source)
            typer.echo(f"wrote {output} ({backend}, {g.name})", err=True)
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
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="At most this many "
                                              "optimizer steps and held-out batches per "
                                              "epoch: a quick smoke run.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for checkpoint, "
                                             "metrics and plots (default runs/<model>).")]
    = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint in "
                                         "--out.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed for weights, data order and "
                                      "dropout.")] = 0,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="Processes for data-parallel "
                                       "PyTorch training under torchrun (gloo on CPU, NCCL on "
                                       "GPUs); the batch is the global batch.")] = 1,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps; "
                                        "auto takes a GPU when there is one.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="fp32, or bf16 / fp16 mixed "
                                           "precision (torch and tensorflow).")] = "fp32",
    strategy: Annotated[str, typer.Option("--strategy", help="With --nproc: ddp replicates "
                                          "the model, fsdp shards it (FSDP2).")] = "ddp",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Threads of every "
                                                "pool (torch, TensorFlow, BLAS); default: the "
                                                "idle cores this process may use.")] = None,
    model: ModelOpt = None,
    set_: SetOpt = None,
    path: PathOpt = None,
) -> None:
    """Train a model on embedded or .npz data, with checkpoints, metrics and a plot."""
    from archdsl.devices import DeviceError
    from archdsl.devices import check as check_device
    from archdsl.sharding import TRAIN_STRATEGIES
    check_backend(backend)
    try:
        check_device(backend, device, precision)
    except DeviceError as exc:
        fail(str(exc))
    params = parse_assignments(set_ or [], "--set")
    if nproc > 1 and backend != "torch":
        fail("--nproc runs the PyTorch build; use --backend torch")
    if strategy not in TRAIN_STRATEGIES:
        fail(f"train --strategy is ddp or fsdp, not {strategy!r} (zero2 and zero3 are "
             "DeepSpeed's: `archdsl analyze --devices N --strategy` plans them)")
    if strategy != "ddp" and nproc == 1 and int(os.environ.get("WORLD_SIZE", 1)) == 1:
        fail(f"--strategy {strategy} shares the model over processes: add --nproc N")
    _size_thread_pools(threads, nproc, backend)
    if nproc > 1:
        run_guarded(lambda: _launch(file, model, params, path, nproc))

    def body() -> int:
        from archdsl.api import graph, load, located
        program = load(str(file), check=False, search_paths=_search_paths(path))
        with located(program):  # a backend's refusal quotes the spec
            return trained(graph(program, model, params))

    def trained(g: Any) -> int:
        from archdsl.checkpoint import CheckpointError
        from archdsl.data import DataError
        from archdsl.graph import GanGraph
        from archdsl.train import fit
        folder = out or Path("runs") / g.name
        if isinstance(g, GanGraph):
            from archdsl.gan import fit as fit_gan
            try:
                gan_result = fit_gan(g, file.read_text(encoding="utf-8"), backend, folder,
                                     epochs=epochs, batch=batch, lr=lr, seed=seed,
                                     resume=resume, max_steps=steps,
                                     progress=sys.stderr.isatty(), device=device,
                                     precision=precision,
                                     log=lambda m: typer.echo(m, err=True))
            except DeviceError as exc:
                fail(str(exc))
            except (CheckpointError, ValueError) as exc:
                fail(str(exc), 1)
            if gan_result.stopped:
                typer.echo(f"stopped: {gan_result.stopped}", err=True)
                return 1
            typer.echo(f"{g.name}: samples, losses and judge.json in {folder}")
            return 0
        try:
            result = fit(g, file.read_text(encoding="utf-8"), backend, folder, data=data,
                         epochs=epochs, batch=batch, lr=lr, seed=seed, resume=resume,
                         steps=steps, progress=sys.stderr.isatty(), device=device,
                         precision=precision, strategy=strategy,
                         log=lambda m: typer.echo(m, err=True))
        except DeviceError as exc:
            fail(str(exc))
        except (DataError, CheckpointError, ValueError) as exc:
            fail(str(exc), 1)
        from archdsl.train import distributed_rank
        if distributed_rank()[0] != 0:
            return 0  # rank 0 reports for everyone
        if result.stopped:
            typer.echo(f"stopped: {result.stopped}", err=True)
        typer.echo(f"{g.name}: held-out accuracy {result.accuracy:.2%}, loss {result.loss:.4f} "
                   f"({backend}); metrics, checkpoint and curves in {folder}")
        return 1 if result.stopped and "interrupted" not in result.stopped else 0

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
) -> None:
    """Draw the model: one box per layer or block, shapes on the edges."""
    fmt = output.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "dot", "mmd"):
        fail(f"-o must end in .svg, .png, .dot or .mmd, not {output.name!r}")
    params = parse_assignments(set_ or [], "--set")

    def body() -> int:
        from archdsl.api import graph
        from archdsl.diagram import GraphvizMissing, render
        from archdsl.graph import GanGraph
        g = graph(str(file), model, params, search_paths=_search_paths(path))
        if isinstance(g, GanGraph):
            fail(f"`{g.name}` is a gan: draw its generator or discriminator with --model")
        try:
            content = render(g, fmt, depth)
        except GraphvizMissing as exc:
            fail(str(exc), 1)
        output.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            output.write_text(content, encoding="utf-8")
        else:
            output.write_bytes(content)
        typer.echo(f"wrote {output}", err=True)
        return 0

    run_guarded(body)


@app.command()
def verify(
    file: FileArg,
    backends: Annotated[str, typer.Option("--backends", help="Comma-separated backends to "
                                          "compare with the NumPy float64 reference.")]
    = "torch,tensorflow,numpy",
    bind: Annotated[list[str] | None, typer.Option("--bind", help="Sizes for symbolic "
                                                   "dimensions (B defaults to 2, others to "
                                                   "small distinct sizes).")] = None,
    loss: Annotated[str | None, typer.Option("--loss", help="Loss for the gradient checks "
                                             "(default: the spec's).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    model: ModelOpt = None,
    set_: SetOpt = None,
    path: PathOpt = None,
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

    def body() -> int:
        from rich.console import Console

        from archdsl.api import graph
        from archdsl.graph import GanGraph
        from archdsl.verify import render, run
        g = graph(str(file), model, params, search_paths=_search_paths(path))
        sides = [g.generator, g.discriminator] if isinstance(g, GanGraph) else [g]
        console = Console(stderr=True)
        ok = True
        for side in sides:
            with console.status(f"verifying {side.name}") as status:
                report = run(side, chosen, bind=binds, loss=loss, seed=seed,
                             progress=lambda m, s=status, n=side.name: s.update(f"{n}: {m}"))
            typer.echo(report.model_dump_json(indent=2) if fmt == "json" else render(report))
            ok = ok and report.ok
        return 0 if ok else 1

    run_guarded(body)


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


def _launch(file: Path, model: str | None, params: dict[str, str], path: list[Path] | None,
            nproc: int) -> int:
    """Check the spec once here, so its errors are reported once and never as a failure of
    torchrun's workers, then train in `nproc` processes."""
    from archdsl.api import graph
    from archdsl.graph import GanGraph
    g = graph(str(file), model, params, search_paths=_search_paths(path))
    if isinstance(g, GanGraph):
        fail(f"`{g.name}` is a gan: it trains in one process (drop --nproc)")
    return _torchrun(nproc)


def _torchrun(nproc: int) -> int:
    """Run this same `train` command in `nproc` processes under torchrun (single node)."""
    import subprocess
    cleaned: list[str] = []
    args = iter(sys.argv[1:])
    for a in args:
        if a == "--nproc":
            next(args, None)
        elif not a.startswith("--nproc="):
            cleaned.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "archdsl.cli", *cleaned]
    return subprocess.call(cmd)


def _generate(g: Any, backend: str) -> str:
    from archdsl.api import backend as backend_module
    return backend_module(backend).generate(g)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
