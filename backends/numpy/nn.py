"""What a generated NumPy module runs on: `Module`, and one layer class and one function per
op, over the kernels.

`archdsl compile --backend numpy` writes a module that reads like its PyTorch twin:

    class BasicBlock(nn.Module):
        def __init__(self, C: int, channels: int, stride: int = 1) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(C, channels, (3, 3), stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)

        def forward(self, x: np.ndarray) -> np.ndarray:
            h = self.conv1(x)  # (B, channels, (H - 1) // stride + 1, (W - 1) // stride + 1)
            h = nn.relu(self.bn1(h))
            return h

Tensors are plain NumPy arrays. A layer (`nn.Conv2d`, a class per op of the registry) holds
the op's normalized arguments (`signature.bind` reads them from the call) and its parameters,
drawn at construction from the recipes the op declares. A function (`nn.relu`,
`nn.max_pool2d`: `signature.function_name` of an op without parameters) takes tensors and
arguments. Either runs the op's kernel (`kernels/`: forward and backward side by side)
through `tape.run`, which records it when a model is being called: `model.backward(dy)` then
runs the recorded backward functions in reverse (`tape.py`), adds each layer's parameter
gradients to `grads()`, and returns the inputs' gradients. Only what a backward pass reaches
gets a gradient, as PyTorch leaves `.grad` None elsewhere.

    with nn.building(np.float64, seed=1):     # parameters in float64, from seed 1
        model = module.ResNet20()
    y = model(x)                              # train() / eval() as in PyTorch (starts in train)
    model.zero_grad(); dx, = model.backward(dy); model.grads()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from archdsl.ops import REGISTRY
from archdsl.ops.init import resolve
from archdsl.ops.registry import OpDef
from archdsl.symbolic import evaluate, parse_dim

from . import tape
from .init import draw
from .kernels import KERNELS
from .signature import bind, function_name, has_params

FLOATS = ("f16", "bf16", "f32", "f64")


# ---- where new parameters come from -----------------------------------------------------------
@dataclass
class _Building:
    dtype: np.dtype
    seed: int
    rng: np.random.Generator


_BUILDING = _Building(np.dtype(np.float32), 0, np.random.default_rng(0))


@contextmanager
def building(dtype: Any = np.float32, seed: int = 0) -> Iterator[None]:
    """Modules made inside draw their parameters in `dtype` from one generator seeded with
    `seed`, in the order they are made (outside, float32 from a generator seeded 0)."""
    global _BUILDING
    saved = _BUILDING
    _BUILDING = _Building(np.dtype(dtype), seed, np.random.default_rng(seed))
    try:
        yield
    finally:
        _BUILDING = saved


# ---- modules ------------------------------------------------------------------------------------
class Module:
    """A model, a block or a layer: submodules and arrays by attribute, in the order they are
    set, which is PyTorch's state-dict order (own parameters, own buffers, then each child)."""

    archdsl_backend = "numpy"

    def __init__(self) -> None:
        object.__setattr__(self, "_children", {})
        self._own: dict[str, np.ndarray] = {}  # local name -> parameter or buffer
        self._buffers: set[str] = set()
        self._grad: dict[str, np.ndarray] = {}
        self._reached: set[str] = set()  # parameters a backward pass reached since zero_grad
        self._inputs: dict[str, tuple[str, tuple[Any, ...]]] | None = None
        self._tape: tape.Tape | None = None
        self._rng: np.random.Generator | None = None
        self._seed = _BUILDING.seed
        self.dtype = _BUILDING.dtype
        self.training = True  # as a freshly made torch.nn.Module
        # Monte Carlo arithmetic for `archdsl verify`: when set on the model that is called,
        # applied to every op's floating output and to every gradient of the backward pass.
        self.perturb: Callable[[np.ndarray], np.ndarray] | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        children = self.__dict__.get("_children")
        if children is not None and not name.startswith("_"):
            if isinstance(value, Module) or (value is None and name in children):
                children[name] = value
            elif isinstance(value, np.ndarray):  # `nn.parameter(...)`: a learned tensor
                self._add(name, value)
        object.__setattr__(self, name, value)

    def _add(self, name: str, value: np.ndarray, buffer: bool = False) -> None:
        self._own[name] = value
        if buffer:
            self._buffers.add(name)
        else:
            self._grad[name] = np.zeros_like(value)

    def _accumulate(self, name: str, g: np.ndarray) -> None:
        """The first gradient since `zero_grad` is written over the stale one (no pass to zero
        it first), later ones are added."""
        if name in self._reached:
            self._grad[name] += g
        else:
            np.copyto(self._grad[name], g)
            self._reached.add(name)

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError

    # -- what it holds -------------------------------------------------------------------------
    def modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Every module, this one first, with its state-dict prefix (`layer1.0.`)."""
        yield prefix, self
        for name, child in self._children.items():
            if child is not None:
                yield from child.modules(f"{prefix}{name}.")

    def _arrays(self) -> Iterator[tuple[str, Module, str]]:
        for prefix, m in self.modules():
            for name in m._own:
                yield prefix + name, m, name

    def parameters(self) -> dict[str, np.ndarray]:
        """State-dict key -> the live array (optimisers update it in place)."""
        return {k: m._own[n] for k, m, n in self._arrays() if n not in m._buffers}

    def buffers(self) -> dict[str, np.ndarray]:
        return {k: m._own[n] for k, m, n in self._arrays() if n in m._buffers}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer, live (a copy: `nb.state_dict(model)`), in PyTorch's
        state-dict order."""
        return {k: m._own[n] for k, m, n in self._arrays()}

    def grads(self) -> dict[str, np.ndarray]:
        """The gradients of the parameters a backward pass reached since `zero_grad`; the
        others are absent, as PyTorch's `.grad` is None, and optimisers leave them be."""
        return {k: m._grad[n] for k, m, n in self._arrays() if n in m._reached}

    def zero_grad(self) -> None:
        """Forget every gradient (`grads()` is empty until the next backward pass)."""
        for _, m in self.modules():
            m._reached.clear()

    def train(self, mode: bool = True) -> Module:
        for _, m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    @property
    def rng(self) -> np.random.Generator:
        """The generator of every dropout mask of a pass of this model (seeded from the seed
        it was built with)."""
        if self._rng is None:
            self._rng = np.random.default_rng([self._seed, 1])
        return self._rng

    # -- running -------------------------------------------------------------------------------
    def expect_inputs(self, **inputs: tuple[str, tuple[Any, ...]]) -> None:
        """Check the inputs of every call from outside: name=(dtype, shape), a symbolic size
        as its name (`"B"`) or expression (`"2*T"`)."""
        self._inputs = inputs

    def __call__(self, *inputs: Any, **named: Any) -> Any:
        if tape.active():  # inside another module's pass
            return self.forward(*inputs, **named)
        xs = self._take(inputs)
        with tape.recording(self) as self._tape:
            out = self.forward(*xs, **named)
        self._tape.finish(xs, out)
        return out

    def _take(self, inputs: tuple[Any, ...]) -> list[np.ndarray]:
        """The inputs as arrays: floating ones in the model's dtype, each checked."""
        if self._inputs is None:
            return [_cast(np.asarray(x), self.dtype) for x in inputs]
        if len(inputs) != len(self._inputs):
            raise TypeError(f"{type(self).__name__} takes {len(self._inputs)} inputs "
                            f"({', '.join(self._inputs)}), got {len(inputs)}")
        xs = []
        for x, (dtype, _) in zip(inputs, self._inputs.values(), strict=True):
            x = np.asarray(x)
            xs.append(x.astype(self.dtype if dtype in FLOATS else
                               (bool if dtype == "bool" else np.int64), copy=False))
        sizes: dict[str, int] = {}
        for x, (_, shape) in zip(xs, self._inputs.values(), strict=True):
            for d, n in zip(shape, x.shape, strict=False):
                if isinstance(d, str) and d.isidentifier():
                    sizes.setdefault(d, n)
        for x, (name, (_, shape)) in zip(xs, self._inputs.items(), strict=True):
            want = [evaluate(parse_dim(d), sizes) if isinstance(d, str) else d for d in shape]
            if list(x.shape) != want:
                raise ValueError(f"input `{name}` must have shape "
                                 f"[{', '.join(map(str, shape))}], got {list(x.shape)}")
        return xs

    def backward(self, *grad_outputs: Any) -> tuple[np.ndarray | None, ...]:
        """Accumulate parameter gradients into `grads()`; return the inputs' gradients (None
        for an input no gradient reached). One gradient per output, None for an output the
        loss does not read. Each call allows one backward."""
        last, self._tape = self._tape, None
        if last is None:
            raise RuntimeError("call the model before backward (each call allows one backward)")
        return last.backward(self, grad_outputs)


class Sequential(Module):
    """Modules applied one after the other (`nn.Sequential`); children are `0`, `1`, ..."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for k, m in enumerate(modules):
            setattr(self, str(k), m)

    def __getitem__(self, k: int) -> Module:
        return self._children[str(k)]

    def __len__(self) -> int:
        return len(self._children)

    def forward(self, x: Any) -> Any:
        for m in self._children.values():
            x = m(x)
        return x


class ModuleList(Module):
    """Modules made in a loop (`nn.ModuleList`), indexed by the loop variable."""

    def append(self, module: Module) -> None:
        setattr(self, str(len(self._children)), module)

    def __getitem__(self, k: int) -> Module:
        return self._children[str(k)]

    def __len__(self) -> int:
        return len(self._children)


class ParameterList(Module):
    """Learned tensors made in a loop (`nn.ParameterList`), keyed `0`, `1`, ..."""

    def append(self, value: np.ndarray) -> None:
        self._add(str(len(self._own)), value)

    def __getitem__(self, k: int) -> np.ndarray:
        return self._own[str(k)]

    def __len__(self) -> int:
        return len(self._own)


class Layer(Module):
    """One op of the registry as a module: its normalized arguments, and the parameters and
    buffers its declaration lists, initialised by the declared recipes."""

    op: OpDef

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.args = bind(self.op, args, kwargs)
        specs = self.op.params(self.args, [])
        shapes = {p.name: tuple(p.shape) for p in specs}
        for p in specs:
            value = draw(resolve(p.init, shapes[p.name], shapes), shapes[p.name],
                         _BUILDING.rng)
            self._add(p.name, value.astype(self.dtype if p.dtype in FLOATS else np.int64),
                      buffer=p.kind == "buffer")

    def __getattr__(self, name: str) -> np.ndarray:  # `self.wte.weight`
        own = self.__dict__.get("_own", {})
        if name in own:
            return own[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or parameter `{name}`")

    def __repr__(self) -> str:
        return f"{self.op.name}({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"

    def forward(self, *xs: Any, **named: Any) -> Any:
        inputs, given = _keyword_inputs(self.op, list(xs), named)
        return tape.run(self.op.name, {**self.args, **given}, self._own, inputs, self.training,
                    self)


def _layer_class(op: OpDef) -> type[Layer]:
    return type(op.name, (Layer,), {"op": op, "__doc__": op.doc, "__module__": __name__})


def parameter(*args: Any, **kwargs: Any) -> np.ndarray:
    """A learned tensor (`Parameter(shape, init)` of the spec): set it as an attribute."""
    (spec,) = REGISTRY["Parameter"].params(bind(REGISTRY["Parameter"], args, kwargs), [])
    shape = tuple(spec.shape)
    return draw(resolve(spec.init, shape, {spec.name: shape}), shape,
                _BUILDING.rng).astype(_BUILDING.dtype)


# ---- functions ----------------------------------------------------------------------------------
def _keyword_inputs(op: OpDef, xs: list[Any], named: dict[str, Any]
                    ) -> tuple[list[Any], dict[str, Any]]:
    """Tensors given by keyword (`key_padding_mask=m`) follow the positional ones, and the
    arguments say which were given."""
    unknown = set(named) - set(op.keyword_inputs)
    if unknown:
        raise TypeError(f"{op.name} takes no tensor `{sorted(unknown)[0]}`")
    flags = {k: k in named for k in op.keyword_inputs}
    return [*xs, *(named[k] for k in op.keyword_inputs if k in named)], flags


def _function(op: OpDef) -> Callable[..., Any]:
    n = len(op.positional_inputs)

    def function(*values: Any, training: bool = False, **kwargs: Any) -> Any:
        if op.tensor_list_input:
            inputs, rest = list(values[0]), values[1:]
        else:
            inputs, rest = list(values[:n]), values[n:]
        numbers = {}
        for name in op.number_inputs:  # `where(c, x, 0.0)`: a number is an argument
            k = op.inputs.index(name)
            numbers[name] = None if isinstance(inputs[k], np.ndarray) else inputs[k]
        inputs = [x for x in inputs if isinstance(x, np.ndarray) or not op.number_inputs]
        tensors = {k: v for k, v in kwargs.items() if k in op.keyword_inputs}
        inputs, flags = _keyword_inputs(op, inputs, tensors)
        args = bind(op, rest, {k: v for k, v in kwargs.items() if k not in tensors})
        return tape.run(op.name, {**args, **flags, **numbers}, {}, inputs, training)

    function.__name__ = function_name(op)
    function.__doc__ = op.doc
    return function


def _binary(op: OpDef) -> Callable[..., Any]:
    """`add(a, b)`, `mul(x, 0.5)`, `sub(1.0, x)`: an operator of two tensors or of a tensor
    and a number."""
    def function(a: Any, b: Any) -> Any:
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return tape.run(op.name, {"scalar": None, "scalar_first": False}, {}, [a, b], False)
        first = not isinstance(a, np.ndarray)
        x, number = (b, a) if first else (a, b)
        return tape.run(op.name, {"scalar": number, "scalar_first": first}, {}, [x], False)

    function.__name__ = op.name
    function.__doc__ = op.doc
    return function


def getitem(x: np.ndarray, index: Any) -> np.ndarray:
    """`x[index]` on the tape; write the index as `np.s_[:, -1]`."""
    items = index if isinstance(index, tuple) else (index,)
    normalized = [i if isinstance(i, int) else [i.start, i.stop, i.step] for i in items]
    return tape.run("getitem", {"index": normalized}, {}, [x], False)


def _cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return x.astype(dtype, copy=False) if np.issubdtype(x.dtype, np.floating) else x


# ---- one layer class and one function per op with a kernel ------------------------------------
# `getitem` and `parameter` are written above; `param`, `part` and `input` are never called.
_BY_HAND = ("getitem", "Parameter", "param", "part", "input")


def _function_names() -> dict[str, str]:
    """Op -> the name of its function. A function op owns its name; a layer is called by
    its snake-case name (`MaxPool2d`: `max_pool2d`) unless a function op owns that name and
    runs another kernel (`Flatten` is not `flatten`): then it is only a module."""
    owned = {op.name for op in REGISTRY.values() if op.kind == "function"}
    out = {}
    for name, op in REGISTRY.items():
        if name not in KERNELS or name in _BY_HAND or has_params(op):
            continue
        fname = function_name(op)
        if op.kind == "layer" and fname in owned and KERNELS.get(fname) is not KERNELS[name]:
            continue
        out[name] = fname
    return out


def _exports(functions: dict[str, str], layers: dict[str, type[Layer]]) -> dict[str, Any]:
    out: dict[str, Any] = dict(layers)
    for name, fname in functions.items():
        op = REGISTRY[name]
        if fname in out and op.kind == "layer":
            continue  # the function op of that name, which runs the same kernel
        binary = {"scalar", "scalar_first"} <= {a.name for a in op.args}
        out[fname] = _binary(op) if binary else _function(op)
    return out


@dataclass
class _Tables:
    functions: dict[str, str]  # op -> the name of its function (`MaxPool2d`: `max_pool2d`)
    layers: dict[str, type[Layer]]  # op -> its layer class
    exports: dict[str, Any]  # what `nn.<name>` gives: layer classes and functions
    size: tuple[int, int]  # the registry's and the kernels' sizes they were made from


_TABLES = _Tables({}, {}, {}, (-1, -1))


def tables() -> _Tables:
    """The layers and functions of the ops with kernels now: an op a plugin registers, with
    its kernel, after this module was imported joins them (the tables are made again when
    the registry or the kernels grew)."""
    global _TABLES
    if _TABLES.size != (len(REGISTRY), len(KERNELS)):
        functions = _function_names()
        layers = {name: _TABLES.layers.get(name) or _layer_class(op)
                  for name, op in REGISTRY.items() if op.kind == "layer" and name in KERNELS}
        _TABLES = _Tables(functions, layers, _exports(functions, layers),
                          (len(REGISTRY), len(KERNELS)))
    return _TABLES


def __getattr__(name: str) -> Any:  # `nn.Conv2d`, `nn.relu`
    try:
        return tables().exports[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *tables().exports})
