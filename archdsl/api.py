"""The Python API: the same operations as the command line, for other people's tooling."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from archdsl.diagnostics import Diagnostic, SpecError
from archdsl.graph import GanGraph, Graph
from archdsl.limits import Limits
from archdsl.program import Program, Source, load_program

BACKENDS = ("torch", "tensorflow", "numpy")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Parsing and elaboration allocate many small acyclic objects; the cyclic collector's
    repeated passes over them would make large specs take superlinear time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load(source: Source | Program, *, search_paths: list[str] | tuple[str, ...] = (),
         limits: Limits | None = None, check: bool = True) -> Program:
    """Parse and check a spec given as a path or as text; raise `SpecError` on any problem."""
    if isinstance(source, Program):
        return source
    with _gc_paused():
        return _load(source, search_paths, limits, check)


def _load(source: Source, search_paths: list[str] | tuple[str, ...], limits: Limits | None,
          check: bool) -> Program:
    try:
        program = load_program(source, search_paths=search_paths, limits=limits)
        if check:
            program.check()
        return program
    except SpecError:
        raise
    except RecursionError:
        raise SpecError([Diagnostic(code="E0801", message="the spec nests too deeply")]) from None
    except Exception as exc:  # a bug in archdsl must still surface as a located SpecError
        raise SpecError([Diagnostic(code="E9999", message=f"internal error: {exc!r}",
                                    hint="please report this spec to the archdsl developers")]
                        ) from exc


def graph(source: Source | Program, model: str | None = None,
          params: dict[str, Any] | None = None, **kw: Any) -> Graph | GanGraph:
    program = load(source, check=False, **kw)
    try:
        with _gc_paused():
            return program.graph(model, params)
    except SpecError:
        raise
    except Exception as exc:
        raise SpecError([Diagnostic(code="E9999", message=f"internal error: {exc!r}")],
                        program.sources) from exc


def backend(name: str) -> Any:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"archdsl.backends.{name}")


@contextmanager
def located(program: Program) -> Iterator[None]:
    """A backend's refusal (E0901) quotes the spec's lines, as the front end's errors do: the
    backend sees only the graph, whose locations name the files the program holds."""
    try:
        yield
    except SpecError as err:
        if err.sources is not None:
            raise
        raise SpecError(err.diagnostics, program.sources) from None


def compile(source: Source | Program, backend: str = "torch", model: str | None = None,
            params: dict[str, Any] | None = None) -> str:
    """The generated source of one model for one backend."""
    program = load(source, check=False)
    g = graph(program, model, params)
    with located(program):
        return _backend(backend).generate(g)


def build(source: Source | Program, backend: str = "torch", model: str | None = None,
          params: dict[str, Any] | None = None, **options: Any) -> Any:
    """A ready model object: an nn.Module, a keras.Model or a NumPy model."""
    program = load(source, check=False)
    g = graph(program, model, params)
    with located(program):
        return _backend(backend).build(g, **options)


def state_dict(model: Any) -> dict[str, Any]:
    """Weights as {state-dict key: numpy array} in PyTorch's layout, from any backend."""
    return _backend(_backend_of(model)).state_dict(model)


def load_state_dict(model: Any, state: dict[str, Any]) -> None:
    """Load canonical weights into a model of any backend, checking names and shapes."""
    _backend(_backend_of(model)).load_state_dict(model, state)


def _backend(name: str) -> Any:
    return backend(name)


def _backend_of(model: Any) -> str:
    module = type(model).__module__
    for klass in type(model).__mro__:
        root = klass.__module__.split(".")[0]
        if root == "torch":
            return "torch"
        if root in ("keras", "tensorflow", "tf_keras"):
            return "tensorflow"
    tag = getattr(model, "archdsl_backend", None)
    if tag in BACKENDS:
        return tag
    raise TypeError(f"not a model built by archdsl: {type(model).__name__} from {module}")


def analyze(source: Source | Program, model: str | None = None,
            params: dict[str, Any] | None = None, bind: dict[str, int] | None = None,
            train: bool = False, devices: int | None = None,
            strategy: str | None = None) -> Any:
    """Exact parameters, FLOPs and memory of one model (see docs/analyze.md); with `devices`
    or `strategy` (ddp, fsdp, zero2, zero3), also one device's training memory, at the global
    batch `bind["B"]` (by default the spec's `train` batch)."""
    from archdsl.cost import analyze_graph
    from archdsl.sharding import analyze_on_devices
    g = graph(source, model, params)
    if devices is None and strategy is None:
        return analyze_graph(g, bind=bind, train=train)
    return analyze_on_devices(g, dict(bind or {}), devices or 1, strategy or "ddp")
