"""The Python API: the same operations as the command line, for other people's tooling."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from archdsl import backends as registry
from archdsl.diagnostics import Diagnostic, SpecError
from archdsl.graph import GanGraph, Graph
from archdsl.limits import Limits
from archdsl.ops import plugin
from archdsl.ops.plugin import PluginError
from archdsl.program import ParseCache, Program, Source, load_program

BACKENDS = registry.NAMES
TRAINABLE = registry.TRAINABLE  # the backends that train and compile to a Python module


@contextmanager
def gc_paused() -> Iterator[None]:
    """Parsing, elaboration and analysis allocate many small acyclic objects; the cyclic
    collector's repeated passes over them would make large specs take superlinear time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load(source: Source | Program, *, search_paths: list[str] | tuple[str, ...] = (),
         limits: Limits | None = None, check: bool = True,
         overlay: Mapping[str, str] | None = None, parse_cache: ParseCache | None = None
         ) -> Program:
    """Parse and check a spec given as a path or as text; raise `SpecError` on any problem.
    For editors: `overlay` maps real paths to unsaved texts read instead of those files, and
    a `ParseCache` kept between loads spares parsing and checking what did not change (the
    checked graphs of `program.checked` are then shared between those loads: read them, do
    not change them). The first load imports the plugins installed under the entry point
    group `archdsl.ops`."""
    plugin.load_entry_points()
    if isinstance(source, Program):
        return source
    with gc_paused():
        return _load(source, search_paths, limits, check, overlay, parse_cache)


def _load(source: Source, search_paths: list[str] | tuple[str, ...], limits: Limits | None,
          check: bool, overlay: Mapping[str, str] | None, parse_cache: ParseCache | None
          ) -> Program:
    try:
        program = load_program(source, search_paths=search_paths, limits=limits,
                               overlay=overlay, parse_cache=parse_cache)
        if check:
            program.check()
        return program
    except (SpecError, PluginError):
        raise
    except RecursionError:
        raise SpecError([Diagnostic(code="E0801", message="the spec nests too deeply")]) from None
    except Exception as exc:  # a bug in archdsl must still surface as a located SpecError
        raise SpecError([Diagnostic(code="E9999", message=f"internal error: {exc!r}",
                                    hint="please report this spec to the archdsl developers")]
                        ) from exc


def graph(source: Source | Program, model: str | None = None,
          params: dict[str, Any] | None = None, trace: bool = False, **kw: Any
          ) -> Graph | GanGraph:
    program = load(source, check=False, **kw)
    try:
        with gc_paused():
            return program.graph(model, params, trace=trace)
    except (SpecError, PluginError):
        raise
    except Exception as exc:
        raise SpecError([Diagnostic(code="E9999", message=f"internal error: {exc!r}")],
                        program.sources) from exc


def backend(name: str) -> registry.Backend:
    """The registered backend called `name` (`torch`, `tensorflow`, `numpy`)."""
    return registry.get(name)


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
            params: dict[str, Any] | None = None, **options: Any) -> str | bytes:
    """The generated source of one model for one backend; for onnx, the serialized model
    (`weights=` a state dict to carry, else weights initialised as PyTorch's)."""
    program = load(source, check=False)
    g = graph(program, model, params, trace=True)
    target = registry.get(backend)
    with located(program):
        if target.writes_weights:
            check_memory(g, program, export=True)
        return target.generate(g, **options)


def build(source: Source | Program, backend: str = "torch", model: str | None = None,
          params: dict[str, Any] | None = None, **options: Any) -> Any:
    """A ready model object: an nn.Module, a keras.Model, a NumPy model or an ONNX Runtime
    model (inference only)."""
    program = load(source, check=False)
    g = graph(program, model, params, trace=True)
    with located(program):
        if options.get("device") != "meta":  # torch's meta device allocates nothing
            check_memory(g, program)
        return registry.get(backend).build(g, **options)


def check_memory(g: Graph | GanGraph, program: Program, export: bool = False) -> None:
    """Refuse, before anything is allocated, weights past the limits or the machine (for an
    `export` to a file that carries them, the copies the export makes)."""
    from archdsl.memory import EXPORT_COPIES, check_model
    how = ("exporting", EXPORT_COPIES) if export else ("building", 1)
    for side in (g.generator, g.discriminator) if isinstance(g, GanGraph) else (g,):
        check_model(side, program.limits, *how)


def state_dict(model: Any) -> dict[str, Any]:
    """Weights as {state-dict key: numpy array} in PyTorch's layout, from any backend."""
    return registry.of_model(model).state_dict(model)


def load_state_dict(model: Any, state: dict[str, Any]) -> None:
    """Load canonical weights into a model of any backend, checking names and shapes."""
    registry.of_model(model).load_state_dict(model, state)


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
