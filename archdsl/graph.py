"""The typed graph: what a model means once its spec is elaborated.

A `Graph` is flat: `nodes` in execution order, each naming the `layer` whose parameters it uses
(a path such as `layer2.0.conv1`; a shared layer has one path and several nodes) and the
`scope` (block instance) it sits in. `scopes` keep the block hierarchy for generators that
emit one class per block. Dimensions are `int` or `Sym`; in JSON a symbolic dimension is a
string (`"B"`, `"(H + 1)//2"`), so `Graph.model_validate_json(g.model_dump_json())` round-trips.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
)

from archdsl.diagnostics import Loc
from archdsl.records import Record
from archdsl.symbolic import Dim as _Dim
from archdsl.symbolic import Sym, format_dim, format_shape, parse_dim


def _to_dim(v: Any) -> _Dim:
    if isinstance(v, Sym) or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    if isinstance(v, str):
        return parse_dim(v)
    raise ValueError(f"not a dimension: {v!r}")


def _dim_json(v: _Dim) -> int | str:
    return int(v) if isinstance(v, int) else format_dim(v)


DimField = Annotated[Any, BeforeValidator(_to_dim), PlainSerializer(_dim_json)]


def _size(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"not a size: {v!r}")
    return v  # a traced size keeps its expression (archdsl.expr.Traced)


SizeField = Annotated[int, PlainValidator(_size), PlainSerializer(int)]


def _args_in(v: Any) -> Any:
    if isinstance(v, dict):
        if set(v) == {"$dim"}:
            return parse_dim(v["$dim"])
        return {k: _args_in(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_args_in(x) for x in v]
    return v


def _args_out(v: Any) -> Any:
    if isinstance(v, Sym):
        return {"$dim": format_dim(v)}
    if isinstance(v, int) and not isinstance(v, bool):
        return int(v)  # a traced size is a plain number in JSON
    if isinstance(v, dict):
        return {k: _args_out(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_args_out(x) for x in v]
    return v


Args = Annotated[dict[str, Any], BeforeValidator(_args_in), PlainSerializer(_args_out)]

_M = TypeVar("_M", bound=BaseModel)
_REQUIRED = object()


@cache
def _layout(cls: type[BaseModel]) -> tuple[dict[str, Any], tuple[tuple[str, type], ...],
                                           frozenset[str], frozenset[str]]:
    """The field defaults of `cls` in field order (`_REQUIRED` for a required field), its
    fields whose default is a fresh `[]` or `{}` each time, its field names and its required
    ones."""
    defaults: dict[str, Any] = {}
    fresh: list[tuple[str, type]] = []
    for name, f in cls.__pydantic_fields__.items():
        defaults[name] = _REQUIRED if f.is_required() else f.default
        if f.default in ([], {}):
            fresh.append((name, type(f.default)))
    required = frozenset(k for k, v in defaults.items() if v is _REQUIRED)
    return defaults, tuple(fresh), frozenset(defaults), required


def construct(cls: type[_M], **values: Any) -> _M:
    """`cls.model_construct(**values)` (trusted values, no validation) for models without
    aliases or default factories, at a fraction of its cost: elaboration makes one per node,
    layer and block call, tens of thousands for a large spec."""
    if cls.__pydantic_post_init__:  # private attributes to initialise
        return cls.model_construct(**values)
    defaults, fresh, names, required = _layout(cls)
    data = defaults.copy()  # in field order, as pydantic keeps them
    data.update(values)
    for name, kind in fresh:  # a fresh copy of a mutable default, as pydantic makes one
        if name not in values:
            data[name] = kind()
    if len(data) != len(names) or not required <= values.keys():  # unknown or missing fields
        data = {k: v for k, v in data.items() if k in names and v is not _REQUIRED}
    return instance(cls, data, set(values))


def instance(cls: type[_M], data: dict[str, Any], fields_set: set[str]) -> _M:
    """A `cls` holding `data` as its fields, unvalidated, as `model_construct` makes one."""
    m = cls.__new__(cls)
    object.__setattr__(m, "__dict__", data)
    object.__setattr__(m, "__pydantic_fields_set__", fields_set)
    object.__setattr__(m, "__pydantic_extra__", None)
    object.__setattr__(m, "__pydantic_private__", None)
    return m


DTYPES = ("f16", "bf16", "f32", "f64", "i32", "i64", "bool")
FLOAT_DTYPES = ("f16", "bf16", "f32", "f64")
DTYPE_BYTES = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8, "i32": 4, "i64": 8, "bool": 1}


class TensorType(Record):
    model_config = ConfigDict(frozen=True)

    dtype: str = "f32"
    shape: tuple[DimField, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return format_shape(self.shape)

    def with_shape(self, shape: list[_Dim] | tuple[_Dim, ...]) -> TensorType:
        # Shape rules call this for every node; the dims are already ints or Syms.
        return construct(TensorType, dtype=self.dtype, shape=tuple(shape))


class ParamSpec(Record):
    """One parameter or buffer of a layer, in PyTorch's layout and with PyTorch's initial
    values (`init`, a recipe of `archdsl.ops.init`). `Layer.key` gives its state-dict name."""

    name: str  # "weight", "out_proj.bias"; "" for a bare `Parameter`
    shape: tuple[SizeField, ...]
    init: tuple[Any, ...]
    kind: Literal["param", "buffer"] = "param"
    dtype: str = "f32"


class Layer(Record):
    """A layer instance: its op, its resolved arguments and its parameters."""

    path: str
    op: str
    args: Args = {}
    params: list[ParamSpec] = []
    loc: Loc | None = None

    def key(self, p: ParamSpec) -> str:
        return f"{self.path}.{p.name}" if p.name else self.path


class Node(Record):
    """One operation. A multi-output op (`split`, `LSTMCell`, a recurrent layer with
    `return_state`) lists every output in `parts` (its `type` is the first); consumers read
    part k through a `part` node (`args={"index": k}`)."""

    id: int
    op: str
    inputs: list[int] = []
    args: Args = {}
    type: TensorType
    parts: list[TensorType] = []
    layer: str | None = None
    scope: str = ""
    name: str | None = None
    loc: Loc | None = None


class Scope(Record):
    """One call of a block (or model-as-layer) instance: where its nodes live and how it was
    called. A shared instance called twice has two entries with the same `path` (its layers);
    `span` tells their nodes apart. `caller_names` are the names the caller binds the outputs
    to (`ya = a |> tower`), None where it binds none."""

    path: str
    definition: str
    args: Args = {}
    inputs: list[int] = []
    input_names: list[str] = []
    outputs: list[int] = []
    output_names: list[str] = []
    caller_names: list[str | None] = []
    span: tuple[int, int] = (0, 0)  # node ids [start, end) made by this call, nested ones too
    loc: Loc | None = None


class SymbolSource(Record):
    """Where a symbolic dimension comes from at run time: `inputs[input].shape[axis]`."""

    input: int
    axis: int


class Optimizer(Record):
    name: Literal["SGD", "Adam", "AdamW"]
    args: dict[str, Any] = {}


class Schedule(Record):
    """A learning-rate schedule of the `train` section (archdsl/schedules.py)."""

    name: Literal["Cosine", "Step", "OneCycle"]
    args: dict[str, Any] = {}


class TrainConfig(Record):
    loss: str | None = None
    optimizer: Optimizer | None = None
    schedule: Schedule | None = None
    g_optimizer: Optimizer | None = None
    d_optimizer: Optimizer | None = None
    batch: int | None = None
    epochs: int | None = None
    n_critic: int | None = None
    clip: float | None = None
    data: str | None = None


class Graph(Record):
    kind: Literal["model"] = "model"
    name: str
    file: str = ""
    params: dict[str, Any] = {}
    inputs: list[int] = []
    input_names: list[str] = []
    outputs: list[int] = []
    output_names: list[str] = []
    nodes: list[Node] = []
    layers: dict[str, Layer] = {}
    scopes: list[Scope] = []
    symbols: dict[str, SymbolSource] = {}
    train: TrainConfig | None = None
    loc: Loc | None = None
    # What code generators need beyond the graph (`archdsl.staging.Staging`), present when
    # the graph was elaborated with `trace=True`; never part of the JSON form.
    _staging: Any = PrivateAttr(default=None)
    _origin: Any = PrivateAttr(default=None)  # (program, name, params, gan part) it came from

    @property
    def staging(self) -> Any:
        return self._staging

    def __eq__(self, other: object) -> bool:
        """Graphs are equal when they say the same; how they were made is not compared."""
        return isinstance(other, Graph) and self.__dict__ == other.__dict__

    def traced(self) -> Graph:
        """This graph with code records: itself, or elaborated again with `trace=True`."""
        return self if self._staging is not None else _retrace(self)

    def node(self, i: int) -> Node:
        return self.nodes[i]

    def parameters(self, kind: str = "param") -> dict[str, ParamSpec]:
        """State-dict key -> spec, each shared parameter once, in creation order."""
        return {layer.key(p): p for layer in self.layers.values() for p in layer.params
                if p.kind == kind}


class GanGraph(Record):
    """A generator and a discriminator. With `latent`, the generator's first input is the
    latent, drawn N(0, 1) with its declared shape; its other inputs are the `conditions` (by
    name, in the generator's order), which the discriminator takes after its sample under the
    same names and types (LANGUAGE.md 10.4)."""

    kind: Literal["gan"] = "gan"
    name: str
    file: str = ""
    params: dict[str, Any] = {}
    generator: Graph
    discriminator: Graph
    loss: str = "nonsaturating"
    latent: bool = True
    conditions: list[str] = []
    train: TrainConfig | None = None
    loc: Loc | None = None
    _origin: Any = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GanGraph) and self.__dict__ == other.__dict__

    def traced(self) -> GanGraph:
        return self if self.generator.staging is not None else _retrace(self)


def _retrace(g: Graph | GanGraph) -> Any:
    if g._origin is None:
        raise ValueError("this graph has no code records and no spec to elaborate again (a "
                         "graph read from JSON): get it from `archdsl.compile`/`archdsl.build`"
                         ", or `program.graph(..., trace=True)`")
    program, name, params, part = g._origin
    again = program.graph(name, params, trace=True)
    again = getattr(again, part) if part else again
    _keep_changed_args(g, again)
    return again


def _keep_changed_args(changed: Any, again: Any) -> None:
    """Arguments a caller changed after elaboration (verify's dropout set to 0) survive the
    second elaboration; unchanged ones keep their traced sizes."""
    pairs = [(changed.generator, again.generator), (changed.discriminator, again.discriminator)
             ] if isinstance(changed, GanGraph) else [(changed, again)]
    for old, new in pairs:
        holders = [*zip(old.nodes, new.nodes, strict=True),
                   *((old.layers[k], v) for k, v in new.layers.items() if k in old.layers)]
        for before, after in holders:
            if before.args != after.args:
                after.args = {k: before.args[k] if before.args.get(k) != v else v
                              for k, v in after.args.items()}


GAN_LOSSES = ("minimax", "nonsaturating", "hinge", "wasserstein", "lsgan")
TRAIN_LOSSES = ("cross_entropy", "bce_with_logits", "mse", "l1")
