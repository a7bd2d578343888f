"""Graph -> the source of a standalone Keras module (one `keras.Model` per model).

Python decides every line here; the templates under `templates/` only lay them out. Each block
instance becomes a `keras.layers.Layer` subclass with concrete sizes (one class per distinct
body), chained repeats (`Block * n`, `for` loops) become a list of layers and a loop, and layers
of `layers.py` are copied into the module with `ast`, so it imports only keras, tensorflow and
math. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import ast
import builtins
import json
import keyword
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from archdsl.diagnostics import Diagnostic, SpecError
from archdsl.graph import GanGraph, Graph, Layer, Node, Scope
from archdsl.symbolic import Dim, Sym, format_dim

LINE = 88  # generated code is laid out as `ruff format` would, at its default width
BODY = 8  # indentation of a method body

Args = dict[str, Any]


def _lit(v: Any) -> str:
    """A Python literal as `ruff format` writes it (double quotes)."""
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # ensure_ascii splits astral characters
    if isinstance(v, tuple):
        return f"({_lit(v[0])},)" if len(v) == 1 else f"({', '.join(map(_lit, v))})"
    if isinstance(v, list):
        return f"[{', '.join(map(_lit, v))}]"
    return repr(v)


# ---- layers: op -> (class, constructor arguments) ----------------------------------------
def _compact(values: list) -> Any:
    """[3, 3] -> 3; [[1, 1], [1, 1]] -> 1; [[1, 1], [2, 2]] -> (1, 2); else a tuple."""
    if all(isinstance(v, list) and v[0] == v[1] for v in values):
        values = [v[0] for v in values]
    if all(not isinstance(v, list) for v in values) and len(set(values)) == 1:
        return values[0]
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)


def _kw(args: Args, defaults: dict[str, Any]) -> list[str]:
    """Keyword arguments that differ from the layer class's defaults."""
    out = []
    for name, default in defaults.items():
        value = args[name]
        value = _compact(value) if isinstance(value, list) else value
        if value != default:
            out.append(f"{name}={_lit(value)}")
    return out


def _conv(a: Args) -> list[str]:
    return [str(a["in"]), str(a["out"]), _lit(_compact(a["kernel"])),
            *_kw(a, {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True})]


def _recurrent(a: Args) -> list[str]:
    return [str(a["input_size"]), str(a["hidden"]),
            *_kw(a, {"layers": 1, "bidirectional": False, "return_sequences": True,
                     "dropout": 0.0})]


def _mha(a: Args) -> list[str]:
    e = a["embed_dim"]
    out = [str(e), str(a["heads"])]
    if (a["kdim"], a["vdim"]) != (e, e):
        out += [f"kdim={a['kdim']}", f"vdim={a['vdim']}"]
    return out + _kw(a, {"causal": False, "dropout": 0.0, "bias": True})


def _pool(a: Args) -> list[str]:
    out = [_lit(_compact(a["kernel"]))]
    if a["stride"] != a["kernel"]:
        out.append(f"stride={_lit(_compact(a['stride']))}")
    return out + _kw(a, {"padding": 0})


LAYERS: dict[str, Callable[[Args], list[str]]] = {
    "Linear": lambda a: [str(a["in"]), str(a["out"]), *_kw(a, {"bias": True})],
    "Conv1d": _conv,
    "Conv2d": _conv,
    "ConvTranspose2d": lambda a: [
        str(a["in"]), str(a["out"]), _lit(_compact(a["kernel"])),
        *_kw(a, {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True})],
    "MaxPool1d": _pool, "MaxPool2d": _pool, "AvgPool1d": _pool, "AvgPool2d": _pool,
    "AdaptiveAvgPool2d": lambda a: [_lit(_compact(a["size"]))],
    # eps and momentum always shown: Keras's own defaults differ (1e-3, 0.99)
    "BatchNorm1d": lambda a: [str(a["num_features"]), f"eps={_lit(a['eps'])}",
                              f"momentum={_lit(a['momentum'])}", *_kw(a, {"affine": True})],
    "LayerNorm": lambda a: [str(a["dim"]), f"eps={_lit(a['eps'])}"],
    "Embedding": lambda a: [str(a["num"]), str(a["dim"])],
    "RNN": _recurrent, "LSTM": _recurrent, "GRU": _recurrent,
    "MultiHeadAttention": _mha,
    "AdditiveAttention": lambda a: [str(a["query_dim"]), str(a["value_dim"]), str(a["units"])],
    "PositionalEncoding": lambda a: [str(a["dim"]), *_kw(a, {"max_len": 5000})],
    "PositionalEmbedding": lambda a: [str(a["dim"]), f"max_len={a['max_len']}"],
    "Parameter": lambda a: [_lit(tuple(a["shape"])), *_kw(a, {"init": "normal"})],
    "Dropout": lambda a: [_lit(a["p"])],
}
LAYERS["BatchNorm2d"] = LAYERS["BatchNorm1d"]
CLASSES = {"Dropout": "keras.layers.Dropout"}  # every other layer is the class of its op's name
TRAINING = {"BatchNorm1d", "BatchNorm2d", "Dropout", "MultiHeadAttention", "RNN", "LSTM", "GRU"}


# ---- functions and parameter-free layers: op -> expression -------------------------------
@dataclass
class Ctx:
    """What an expression rule may ask of the class being written."""

    node: Node
    args: list[str]  # the variables holding the node's inputs
    shape: Callable[..., str]  # a shape as code, symbols read at run time (`infer`: one -1)
    rank: Callable[[int], int]  # rank of the node's i-th input
    in_dtype: Callable[[int], str]  # dtype of the node's i-th input
    attr: str = ""  # the attribute of the node's layer, if it has one


def _activation(fn: str) -> Callable[[Ctx], str]:
    return lambda c: f"{fn}({c.args[0]})"


def _binary(op: str) -> Callable[[Ctx], str]:
    def rule(c: Ctx) -> str:
        scalar = c.node.args.get("scalar")
        if len(c.args) == 2:
            return f"{c.args[0]} {op} {c.args[1]}"
        if c.node.args.get("scalar_first"):
            return f"{_lit(scalar)} {op} {c.args[0]}"
        return f"{c.args[0]} {op} {_lit(scalar)}"
    return rule


def _getitem(c: Ctx) -> str:
    parts = []
    for item in c.node.args["index"]:
        if isinstance(item, int):
            parts.append(str(item))
            continue
        start, stop, step = ("" if v is None else str(v) for v in item)
        parts.append(f"{start}:{stop}" + (f":{step}" if step else ""))
    return f"{c.args[0]}[{', '.join(parts)}]"


def _reduce(fn: str) -> Callable[[Ctx], str]:
    def rule(c: Ctx) -> str:
        dims = c.node.args["dim"]
        out = [c.args[0]]
        if c.node.type.dtype == "i64" and c.in_dtype(0) != "i64":  # torch.sum of int32, bool
            out = [f"tf.cast({c.args[0]}, tf.int64)"]
        if dims is not None:
            out.append(f"axis={dims[0] if len(dims) == 1 else dims}")
        if c.node.args["keepdim"]:
            out.append("keepdims=True")
        return f"{fn}({', '.join(out)})"
    return rule


def _matmul(c: Ctx) -> str:
    """torch.matmul: 1-d operands gain a unit dimension, which is dropped again."""
    a, b = c.args
    ra, rb = c.rank(0), c.rank(1)
    if ra == rb == 1:
        return f"tf.reduce_sum({a} * {b})"
    if ra == 1:
        return f"tf.matmul({a}[None], {b})[..., 0, :]"
    if rb == 1:
        return f"tf.matmul({a}, {b}[:, None])[..., 0]"
    return f"tf.matmul({a}, {b})"


def _transpose(c: Ctx) -> str:
    perm = list(range(c.rank(0)))
    d0, d1 = c.node.args["dim0"], c.node.args["dim1"]
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return f"tf.transpose({c.args[0]}, {perm})"


def _gelu(c: Ctx) -> str:
    return f"tf.nn.gelu({c.args[0]}, approximate={c.node.args['approximate'] == 'tanh'})"


def _parameter_read(c: Ctx) -> str:
    name = c.node.args["name"]
    return f'self.{c.attr}.canonical()["{name}"]'  # the parameter in PyTorch's layout


def _reshape(c: Ctx) -> str:
    return f"tf.reshape({c.args[0]}, {c.shape(c.node.type.shape)})"


EXPRESSIONS: dict[str, Callable[[Ctx], str]] = {
    "ReLU": _activation("tf.nn.relu"), "relu": _activation("tf.nn.relu"),
    "Tanh": _activation("tf.tanh"), "tanh": _activation("tf.tanh"),
    "Sigmoid": _activation("tf.sigmoid"), "sigmoid": _activation("tf.sigmoid"),
    "SiLU": _activation("tf.nn.silu"), "silu": _activation("tf.nn.silu"),
    "GELU": _gelu, "gelu": _gelu,
    "LeakyReLU": lambda c: f"tf.nn.leaky_relu({c.args[0]}, alpha={_lit(c.node.args['slope'])})",
    "Softmax": lambda c: f"tf.nn.softmax({c.args[0]}, axis={c.node.args['dim']})",
    "softmax": lambda c: f"tf.nn.softmax({c.args[0]}, axis={c.node.args['dim']})",
    "Flatten": _reshape,  # channels first, so row-major order over (C, H, W) as in PyTorch
    "Reshape": _reshape, "reshape": _reshape,
    "GlobalAvgPool": lambda c: f"tf.reduce_mean({c.args[0]}, axis={list(range(2, c.rank(0)))})",
    "transpose": _transpose,
    "permute": lambda c: f"tf.transpose({c.args[0]}, {c.node.args['dims']})",
    "expand": lambda c: f"tf.broadcast_to({c.args[0]}, {c.shape(c.node.type.shape, False)})",
    "concat": lambda c: f"tf.concat([{', '.join(c.args)}], axis={c.node.args['dim']})",
    "mean": _reduce("tf.reduce_mean"), "sum": _reduce("tf.reduce_sum"),
    "getitem": _getitem,
    "add": _binary("+"), "sub": _binary("-"), "mul": _binary("*"), "div": _binary("/"),
    "neg": lambda c: f"-{c.args[0]}",
    "matmul": _matmul,
    "param": _parameter_read,
    "Parameter": lambda c: f"tf.convert_to_tensor(self.{c.attr}.weight)",
}
ALIASES = {"Identity"}  # no statement: the output is the input
ARITH = {"add", "sub", "mul", "div", "matmul"}  # inputs cast to the result's dtype
TF_DTYPES = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64",
             "i32": "int32", "i64": "int64", "bool": "bool"}

# Names a layer attribute must not take: Keras's (a test keeps them complete) and ours.
KERAS_ATTRIBUTES = frozenset("""
activity_regularizer add_loss add_metric add_variable add_weight autocast build
build_from_config built call call_signature_parameters compile compile_from_config
compiled compiled_loss compiled_metrics compute_dtype compute_loss compute_mask
compute_metrics compute_output_shape compute_output_spec count_params
distribute_reduction_method distribute_strategy dtype dtype_policy evaluate export fit
from_config get_build_config get_compile_config get_config get_layer get_metrics_result
get_quantization_layer_structure get_state_tree get_weights input input_dtype input_spec
jit_compile layers load_own_variables load_weights loss losses make_predict_function
make_test_function make_train_function metrics metrics_names metrics_variables name
non_trainable_variables non_trainable_weights optimizer output path predict
predict_function predict_on_batch predict_step quantization_mode quantize
quantized_build quantized_call rematerialized_call reset_metrics run_eagerly save
save_own_variables save_weights set_state_tree set_weights stateless_call
stateless_compute_loss steps_per_execution stop_training summary supports_jit
supports_masking symbolic_call test_function test_on_batch test_step to_json
train_function train_on_batch train_step trainable trainable_variables trainable_weights
unrolled_steps_per_execution variable_dtype variables weights
canonical load_canonical
""".split())
RESERVED = frozenset(dir(builtins)) | {"self", "tf", "keras", "math", "training", "kwargs",
                                        "block"}


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    if not name or name[0].isdigit():
        name = f"_{name}"
    return f"{name}_" if keyword.iskeyword(name) or name in ("l", "O", "I") else name


# ---- the classes of one module -----------------------------------------------------------
@dataclass
class ClassCode:
    name: str
    base: str
    doc: str
    init_params: list[str]
    init: list[str]
    call_params: str
    call: list[str]
    extra: list[str] = field(default_factory=list)
    needs_training: bool = False
    sizes: list[str] = field(default_factory=list)  # symbols passed after the tensors

    @property
    def doc_lines(self) -> list[str]:
        return _docstring([self.doc], 4)

    @property
    def init_def(self) -> list[str]:
        """The `def __init__(...)` line(s), indented as a method of the class."""
        return _call_lines("def __init__(", ["self", *self.init_params, "**kwargs"], "):", 4)

    def body(self) -> tuple:
        return (self.base, tuple(self.init_params), tuple(self.init), self.call_params,
                tuple(self.call), tuple(self.extra))


@dataclass
class Item:
    """One statement of a `call`: a node, or a call of a child block (or a chain of them)."""

    reads: list[int]
    writes: list[int]
    node: Node | None = None
    scopes: list[Scope] = field(default_factory=list)


class ModuleWriter:
    """Writes the classes of one or more graphs, sharing identical block classes."""

    def __init__(self, graphs: list[Graph]) -> None:
        self.classes: list[ClassCode] = []
        self.by_body: dict[tuple, ClassCode] = {}
        self.helpers: set[str] = set()
        self.errors: list[Diagnostic] = []
        self.owners: dict[tuple[str, str], str] = {}  # (model, layer path) -> class scope
        self.class_of: dict[tuple[str, str], str] = {}  # (model, scope path) -> class name
        self.first_call: dict[tuple[str, str], Scope] = {}  # the call that wrote that class
        seen: dict[str, list[Args]] = {}
        for g in graphs:
            for s in g.scopes:
                if s.args not in seen.setdefault(s.definition, []):
                    seen[s.definition].append(s.args)
        # the arguments that tell a block's specialisations apart name their classes
        self.varying = {d: [k for k in combos[0] if len({repr(c[k]) for c in combos}) > 1]
                        for d, combos in seen.items()}

    def add_model(self, graph: Graph) -> str:
        if graph.name in helper_sources():
            ClassWriter(self, graph, None).unsupported(
                None, f"a model named `{graph.name}` would hide the layer class of that name")
        return ClassWriter(self, graph, None).write()

    def add_class(self, code: ClassCode, definition: str, args: Args) -> ClassCode:
        """The class with this body, written once and named by the arguments that vary."""
        known = self.by_body.get(code.body())
        if known:
            return known
        taken = {c.name for c in self.classes} | set(helper_sources())
        name = "_".join([definition, *(f"{k}{_arg_tag(args[k])}"
                                       for k in self.varying[definition])])
        stem, k = name, 2
        while name in taken:
            name, k = f"{stem}_{k}", k + 1
        code.name = name
        self.classes.append(code)
        self.by_body[code.body()] = code
        return code


def _init_params(params: Args) -> list[str]:
    return [f"{k}: {type(v).__name__} = {_lit(v)}" for k, v in params.items()]


def _compiled_check(name: str, params: Args) -> list[str]:
    """Refuse spec parameters other than the compiled ones: sizes are baked into the layers."""
    if not params:
        return []
    return _call_lines("require_compiled(", [json.dumps(name), *(
        f"{k}=({k}, {_lit(v)})" for k, v in params.items())], ")")


def _setting(v: Any) -> str:
    return format_dim(v) if isinstance(v, Sym) else _lit(v)  # _lit: no `"""` in a docstring


def _child_calls(g: Graph, scope: Scope | None) -> list[Scope]:
    """The calls made directly by one call (None: the model), in order. Scopes come in call
    order, so a call's parent is the latest earlier call that encloses it (path and span)."""
    out = []
    for k, s in enumerate(g.scopes):
        parent = next((p for p in reversed(g.scopes[:k]) if s.path.startswith(p.path + ".")
                       and p.span[0] <= s.span[0] and s.span[1] <= p.span[1]), None)
        if parent is scope:
            out.append(s)
    return out


def _call_code(g: Graph, scope: Scope) -> list[tuple]:
    """What a call computes, up to node ids: two calls of one class must agree on it."""
    start, end = scope.span

    def ref(i: int) -> Any:
        return i - start if start <= i < end else f"input {scope.inputs.index(i)}"
    return [(n.op, repr(n.args), n.layer, n.scope, [ref(i) for i in n.inputs])
            for n in g.nodes[start:end]]


def _arg_tag(v: Any) -> str:
    return re.sub(r"\W", "", str(v).replace(".", "p").replace("-", "m"))


class ClassWriter:
    """The class of one scope: the model itself (`scope is None`) or one block instance."""

    def __init__(self, module: ModuleWriter, graph: Graph, scope: Scope | None):
        self.m, self.g, self.scope = module, graph, scope
        self.path = scope.path if scope else ""
        self.scopes = {s.path: s for s in graph.scopes}
        self.attrs: dict[str, str] = {}  # layer path or child scope path -> attribute
        self.init: list[str] = []
        self.call: list[str] = []
        self.symbols_needed: set[str] = set()
        self.sizes: list[str] = []  # symbols no input of this block has: the caller passes them
        self.needs_training = False
        self.var: dict[int, str] = {}  # node id -> variable holding it
        self.holder: dict[str, int] = {}  # variable -> node id it holds
        self.fixed: set[int] = set()  # outputs of this class: they keep their names

    # -- structure ------------------------------------------------------------------------
    def parent(self, path: str) -> str:
        parts = path.split(".")
        for i in range(len(parts) - 1, 0, -1):
            if ".".join(parts[:i]) in self.scopes:
                return ".".join(parts[:i])
        return ""

    def child_of(self, scope_path: str) -> str | None:
        """The direct child scope of this class that contains `scope_path`, if any."""
        while scope_path and scope_path != self.path:
            up = self.parent(scope_path)
            if up == self.path:
                return scope_path
            scope_path = up
        return None

    def relative(self, path: str) -> str:
        return path[len(self.path) + 1:] if self.path else path

    def items(self) -> list[Item]:
        """This call's own nodes and the calls it makes, in order (a call at its first node)."""
        start, end = self.scope.span if self.scope else (0, len(self.g.nodes))
        calls = _child_calls(self.g, self.scope)
        out: list[Item] = []
        k = 0
        for node in self.g.nodes[start:end]:
            while k < len(calls) and calls[k].span[0] <= node.id:
                out.append(Item(reads=list(calls[k].inputs), writes=list(calls[k].outputs),
                                scopes=[calls[k]]))
                k += 1
            if node.op != "input" and node.scope == self.path:
                out.append(Item(reads=list(node.inputs), writes=[node.id], node=node))
        out += [Item(reads=list(c.inputs), writes=list(c.outputs), scopes=[c]) for c in calls[k:]]
        return out

    # -- the class ------------------------------------------------------------------------
    def write(self) -> str:
        g, scope = self.g, self.scope
        input_ids = scope.inputs if scope else g.inputs
        input_names = scope.input_names if scope else g.input_names
        output_ids = scope.outputs if scope else g.outputs
        output_names = scope.output_names if scope else g.output_names
        params = []
        for i, name in zip(input_ids, input_names, strict=True):
            previous = self.var.get(i)  # the same tensor passed twice keeps its first name
            params.append(self.bind(i, name, -1, {}))
            self.var[i] = previous or params[-1]
        self.fixed = set(output_ids)
        items = self.items()
        for item in items:  # child classes first, in the order of their first use
            for s in item.scopes:
                self.sub_class(s)
        items = self.chains(items)
        last = self.last_uses(items, output_ids)
        desired = self.desired_names(items, output_ids, output_names)
        for index, item in enumerate(items):
            self.statement(item, index, last, desired)
        results = [self.var[i] for i in output_ids]
        self.call.append(f"return {', '.join(results)}")
        self.call[:0] = self.symbol_lines(input_ids)
        training = ", training=None" if self.needs_training else ""
        types = [g.node(i).type for i in input_ids]
        signature = ", ".join(f"{n} {t}" for n, t in zip(params, types, strict=True))
        outputs = ", ".join(f"{n} {g.node(i).type}" for n, i in
                            zip(output_names, output_ids, strict=True))
        if scope is None:
            return self.model_class(params, training, signature, outputs)
        settings = ", ".join(f"{k}={_setting(v)}" for k, v in scope.args.items())
        doc = f"{scope.definition}({settings}): {signature} -> {outputs}."
        code = ClassCode(name="", base="keras.layers.Layer", doc=doc, init_params=[],
                         init=self.init,
                         call_params=", ".join([*params, *self.sizes]) + training,
                         call=self.call, needs_training=self.needs_training,
                         sizes=self.sizes)
        return self.m.add_class(code, scope.definition, scope.args).name

    def model_class(self, params: list[str], training: str, signature: str, outputs: str) -> str:
        g = self.g
        extra = []
        if len(params) > 1:
            extra = ["def __call__(self, *inputs, **kwargs):",
                     '    """`model(a, b)`, or `model((a, b))` as `fit` passes them."""',
                     "    if len(inputs) == 1 and isinstance(inputs[0], (tuple, list)):",
                     "        inputs = tuple(inputs[0])",
                     "    return super().__call__(*inputs, **kwargs)"]
        source = f" from {Path(g.file).name}" if g.file else ""
        code = ClassCode(name=g.name, base="keras.Model", doc=f"{g.name}{source}: {signature}"
                         f" -> {outputs}.", init_params=_init_params(g.params),
                         init=_compiled_check(g.name, g.params) + self.init,
                         call_params=", ".join(params) + training, call=self.call, extra=extra,
                         needs_training=self.needs_training)
        self.m.classes.append(code)
        return code.name

    # -- statements -----------------------------------------------------------------------
    def statement(self, item: Item, index: int, last: dict[int, int],
                  desired: dict[int, str]) -> None:
        if item.node is None:
            self.block_call(item, index, last, desired)
            return
        node = item.node
        if node.op in ALIASES:
            self.var[node.id] = self.var[node.inputs[0]]
            return
        args = [self.var[i] for i in node.inputs]
        if node.op in ARITH:
            args = [self.cast(a, i, node) for a, i in zip(args, node.inputs, strict=True)]
        attr = self.layer_attr(node) if node.layer else ""
        if node.op in LAYERS and node.op != "Parameter":
            expr = f"self.{attr}({', '.join(args)})"
            if node.op in TRAINING:
                expr = expr[:-1] + ", training=training)"
                self.needs_training = True
        elif node.op in EXPRESSIONS:
            ctx = Ctx(node=node, args=args, shape=self.shape_code,
                      rank=lambda i: self.g.node(node.inputs[i]).type.rank,
                      in_dtype=lambda i: self.g.node(node.inputs[i]).type.dtype, attr=attr)
            expr = EXPRESSIONS[node.op](ctx)
        else:
            self.unsupported(node, f"`{node.op}` has no TensorFlow lowering")
            expr = "None"
        first = node.inputs[0] if node.inputs else None  # a side branch: its input's name, if free
        fallback = self.var[first] if first is not None and last.get(first) == index else "h"
        target = self.bind(node.id, desired.get(node.id, fallback), index, last)
        self.emit(f"{target} = {expr}", _shape_comment(node.type.shape))

    def block_call(self, item: Item, index: int, last: dict[int, int],
                   desired: dict[int, str]) -> None:
        first = item.scopes[0]
        class_name = self.sub_class(first)
        needs_training = any(c.needs_training for c in self.m.classes if c.name == class_name)
        sizes = next(c.sizes for c in self.m.classes if c.name == class_name)
        self.symbols_needed |= set(sizes)
        self.needs_training |= needs_training
        training = ", training=training" if needs_training else ""
        args = [*(self.var[i] for i in first.inputs), *sizes]
        out_ids = item.writes
        if (len(out_ids) == 1 and last.get(first.inputs[0]) == index
                and item.scopes[-1].caller_names[0] is None
                and not (self.scope is None and first.inputs[0] in self.g.inputs)
                and out_ids[0] not in self.fixed):
            desired = {**desired, out_ids[0]: args[0]}  # `x = x |> Block` keeps the name
        if len(item.scopes) == 1:
            attr = self.attrs.get(first.path)  # set if a shared block was called before
            if attr is None:
                attr = self.attribute(first.path, self.relative(first.path))
                self.init.append(
                    f'self.{attr} = {class_name}(name="{self.relative(first.path)}")')
            targets = [self.bind(i, desired.get(i, "h"), index, last) for i in out_ids]
            self.emit(f"{', '.join(targets)} = self.{attr}({', '.join(args)}{training})",
                      _shape_comment(self.g.node(out_ids[0]).type.shape)
                      if len(out_ids) == 1 else "")
            return
        stem = self.relative(first.path).rsplit(".", 1)[0]
        attr = self.attribute(first.path, stem)
        n = len(item.scopes)
        self.init.extend(_call_lines(
            f"self.{attr} = [", [f'{class_name}(name=f"{stem}.{{i}}") for i in range({n})'], "]"))
        keep = {self.var[i] for i in first.inputs[1:]}  # read again by every step of the loop
        (out,) = out_ids
        target = self.bind(out, desired.get(out, "h"), index, last, avoid=keep)
        if target != args[0]:
            self.emit(f"{target} = {args[0]}")
        self.emit(f"for block in self.{attr}:")
        self.emit(f"    {target} = block({', '.join([target, *args[1:]])}{training})",
                  _shape_comment(self.g.node(out).type.shape))

    def chains(self, items: list[Item]) -> list[Item]:
        """Merge runs of child blocks `p.0, p.1, ...` of one class, each fed by the last."""
        uses: dict[int, int] = {}
        for item in items:
            for i in item.reads:
                uses[i] = uses.get(i, 0) + 1
        for i in (self.scope.outputs if self.scope else self.g.outputs):
            uses[i] = uses.get(i, 0) + 1
        out: list[Item] = []
        for item in items:
            prev = out[-1] if out else None
            if prev and self.extends(prev, item, uses):
                prev.scopes.append(item.scopes[0])
                prev.writes = item.writes
                continue
            out.append(Item(reads=list(item.reads), writes=list(item.writes), node=item.node,
                            scopes=list(item.scopes)))
        return out

    def extends(self, prev: Item, item: Item, uses: dict[int, int]) -> bool:
        if prev.node is not None or item.node is not None:
            return False
        first, last, new = prev.scopes[0], prev.scopes[-1], item.scopes[0]
        stem = self.relative(first.path).rsplit(".", 1)[0]
        return (len(last.outputs) == 1 and len(new.outputs) == 1
                and first.path.endswith(".0")
                and self.relative(new.path) == f"{stem}.{len(prev.scopes)}"
                and new.inputs[0] == last.outputs[0] and new.inputs[1:] == first.inputs[1:]
                and uses.get(last.outputs[0]) == 1
                and self.sub_class(new) == self.sub_class(first))

    def sub_class(self, scope: Scope) -> str:
        key = (self.g.name, scope.path)
        if key not in self.m.class_of:
            self.m.class_of[key] = ClassWriter(self.m, self.g, scope).write()
            self.m.first_call[key] = scope
        elif _call_code(self.g, scope) != _call_code(self.g, self.m.first_call[key]):
            diag = Diagnostic(code="E0901", message="tensorflow: a shared block is applied to "
                              "inputs its code does not fit", loc=scope.loc,
                              label="Keras runs one layer for every call; give each call its "
                                    "own block")
            if diag not in self.m.errors:  # asked once per call site and statement
                self.m.errors.append(diag)
        return self.m.class_of[key]

    # -- names ----------------------------------------------------------------------------
    @staticmethod
    def last_uses(items: list[Item], outputs: list[int]) -> dict[int, int]:
        last: dict[int, int] = {}
        for index, item in enumerate(items):
            for i in item.reads:
                last[i] = index
        for i in outputs:
            last[i] = len(items)
        return last

    def desired_names(self, items: list[Item], output_ids: list[int],
                      output_names: list[str]) -> dict[int, str]:
        """A node takes its spec name, else the name of the one statement it flows into."""
        names = dict(zip(output_ids, output_names, strict=True))
        consumers: dict[int, list[Item]] = {}
        for item in items:
            for i in item.reads:
                consumers.setdefault(i, []).append(item)
        for item in reversed(items):
            if item.node is None:
                scope = item.scopes[-1]
                for i, name, bound in zip(item.writes, scope.output_names, scope.caller_names,
                                          strict=True):
                    if self.child_of(self.g.node(i).scope):  # not an input passed through
                        names.setdefault(i, bound or name)
                continue
            node = item.node
            if node.id in names:
                continue
            if node.name:
                names[node.id] = node.name
                continue
            users = consumers.get(node.id, [])
            if node.op == "param":
                names[node.id] = f"{self.g.layers[node.layer].path}_{node.args['name']}"
            elif len(users) == 1 and users[0].node is not None:
                if users[0].reads[0] == node.id:  # the main line of a pipeline
                    names[node.id] = names.get(users[0].node.id, "h")
            elif len(users) == 1:
                scope = users[0].scopes[0]
                names[node.id] = scope.input_names[scope.inputs.index(node.id)]
        return names

    def bind(self, node_id: int, desired: str, index: int, last: dict[int, int],
             avoid: set[str] | None = None) -> str:
        """A variable for `node_id` at statement `index`: `desired` unless it still holds a
        value read later (or is reserved)."""
        base = _identifier(desired)
        name, k = base, 1
        while (name in RESERVED or name in self.g.symbols or name in (avoid or set())
               or (name in self.holder and last.get(self.holder[name], -1) > index)):
            name, k = f"{base}_{k}", k + 1
        self.var[node_id] = name
        self.holder[name] = node_id
        return name

    def attribute(self, path: str, relative: str) -> str:
        attr = _identifier(relative)
        if attr in KERAS_ATTRIBUTES or attr.startswith("_"):
            attr = f"{attr}_"
        while attr in self.attrs.values():
            attr = f"{attr}_"
        self.attrs[path] = attr
        return attr

    def layer_attr(self, node: Node) -> str:
        layer: Layer = self.g.layers[node.layer]
        if layer.path in self.attrs:
            return self.attrs[layer.path]
        if layer.op not in LAYERS:
            return ""
        owner = self.m.owners.setdefault((self.g.name, layer.path), self.path)
        if owner != self.path:
            self.unsupported(node, f"layer `{layer.path}` is used outside the block that owns it")
            return "None"
        relative = self.relative(layer.path)
        attr = self.attribute(layer.path, relative)
        klass = CLASSES.get(layer.op, layer.op)
        if klass == layer.op:
            self.m.helpers.add(klass)
        args = [*LAYERS[layer.op](layer.args), f'name="{relative}"']
        self.init.extend(_call_lines(f"self.{attr} = {klass}(", args, ")"))
        return attr

    # -- symbols, casts and errors --------------------------------------------------------
    def shape_code(self, shape: tuple[Dim, ...], infer: bool = True) -> str:
        """A shape as code: a single unknown size may be -1, others read symbols at run time."""
        unknown = [d for d in shape if isinstance(d, Sym)]
        if infer and len(unknown) == 1:
            return str([-1 if isinstance(d, Sym) else d for d in shape])
        for d in unknown:
            self.symbols_needed |= d.symbols()
        # spaced as `ruff format` writes the expression: `4 * T`, `(H + 1) // 2`
        return "[" + ", ".join(re.sub(r"\s*(//|\*)\s*", r" \1 ", format_dim(d))
                               for d in shape) + "]"

    def symbol_lines(self, input_ids: list[int]) -> list[str]:
        lines = []
        for sym in sorted(self.symbols_needed):
            where = next(((self.var[i], axis) for i in input_ids
                          for axis, d in enumerate(self.g.node(i).type.shape)
                          if d == Sym.symbol(sym)), None)
            if where is None and self.scope is not None:  # a size given as a block argument
                self.sizes.append(sym)
                continue
            if where is None:
                self.unsupported(None, f"the size `{sym}` is not a dimension of an input")
                continue
            lines.append(f"{sym} = tf.shape({where[0]})[{where[1]}]")
        return lines

    def cast(self, var: str, node_id: int, node: Node) -> str:
        if self.g.node(node_id).type.dtype == node.type.dtype:
            return var
        if node.type.dtype == "f32":  # the default float: the layers' dtype (Keras's policy)
            return f"tf.cast({var}, self.compute_dtype)"
        return f"tf.cast({var}, tf.{TF_DTYPES[node.type.dtype]})"

    def unsupported(self, node: Node | None, message: str) -> None:
        self.m.errors.append(Diagnostic(code="E0901", message=f"tensorflow: {message}",
                                        loc=node.loc if node else self.g.loc))

    def emit(self, statement: str, comment: str = "") -> None:
        """A statement with its shape comment: beside it if the line fits, else above."""
        lead = statement[: len(statement) - len(statement.lstrip())]
        if comment and BODY + len(statement) + len(comment) + 2 <= LINE:
            self.call.append(f"{statement}  {comment}")
            return
        if comment:
            self.call.append(lead + comment)
        if BODY + len(statement) <= LINE or not statement.endswith(")"):
            self.call.append(statement)
            return
        head, args = _split_call(statement.lstrip())
        self.call += [lead + line for line in
                      _call_lines(head, args, ")", BODY + len(lead))]


def _docstring(paragraphs: list[str], indent: int) -> list[str]:
    """Docstring lines wrapped to the line width, never inside a shape such as [B, 8, 8]."""
    lines: list[str] = []
    for para in paragraphs:
        if lines:
            lines.append("")
        glued = re.sub(r"\[[^\[\]]*\]", lambda m: m.group().replace(" ", "\0"), para)
        wrapped = textwrap.wrap(glued, LINE - indent - 3,  # room for the closing quotes
                                initial_indent='"""' if not lines else "",
                                break_on_hyphens=False)
        lines += [line.replace("\0", " ") for line in wrapped]
    return [lines[0] + '"""'] if len(lines) == 1 else [*lines, '"""']


def _split_call(statement: str) -> tuple[str, list[str]]:
    """`y = f(a, g(b))` -> ("y = f(", ["a", "g(b)"]): the last call, its top-level arguments."""
    depth, start = 0, 0
    for i in range(len(statement) - 1, -1, -1):
        depth += {")": 1, "]": 1, "(": -1, "[": -1}.get(statement[i], 0)
        if depth == 0:
            start = i
            break
    args, depth, piece = [], 0, ""
    for ch in statement[start + 1 : -1]:
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            args.append(piece.strip())
            piece = ""
        else:
            piece += ch
    return statement[: start + 1], [*args, piece.strip()]


def _shape_comment(shape: tuple[Dim, ...]) -> str:
    dims = [format_dim(d) for d in shape]
    return f"# ({dims[0]},)" if len(dims) == 1 else f"# ({', '.join(dims)})"


def _call_lines(head: str, args: list[str], tail: str, indent: int = BODY) -> list[str]:
    """`head(args)` on one line if it fits the width, else one argument per line."""
    one = head + ", ".join(args) + tail
    if indent + len(one) <= LINE:
        return [one]
    middle = "    " + ", ".join(args)
    if indent + len(middle) <= LINE:
        return [head, middle, tail]
    return [head, *(f"    {a}," for a in args), tail]


# ---- helpers copied from layers.py --------------------------------------------------------
@cache
def helper_sources() -> dict[str, tuple[str, frozenset[str]]]:
    """Top-level definitions of layers.py: name -> (source, names of the others it uses)."""
    text = (Path(__file__).parent / "layers.py").read_text()
    tree = ast.parse(text)
    defs = {n.name: n for n in tree.body
            if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    out = {}
    for name, node in defs.items():
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        out[name] = (ast.get_source_segment(text, node), frozenset(used & (set(defs) | {"math"})))
    return out


def _closure(names: set[str]) -> set[str]:
    """The layers.py definitions that `names` need, themselves included."""
    sources = helper_sources()
    todo, out = list(names), set()
    while todo:
        name = todo.pop()
        if name not in out and name in sources:
            out.add(name)
            todo.extend(sources[name][1])
    return out


# ---- entry point --------------------------------------------------------------------------
@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("archdsl.backends.tensorflow"),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


def generate(graph: Graph | GanGraph) -> str:
    """The module's source: one keras.Model per model (two for a gan), ruff-clean."""
    graphs = [graph.generator, graph.discriminator] if isinstance(graph, GanGraph) else [graph]
    module = ModuleWriter(graphs)
    for g in graphs:
        module.add_model(g)
    if isinstance(graph, GanGraph):
        module.classes.append(ClassCode(
            name=graph.name, base="keras.Model", doc=f"The {graph.name} gan: `generator` and "
            f"`discriminator`, trained with the {graph.loss} loss.",
            init_params=_init_params(graph.params),
            init=[*_compiled_check(graph.name, graph.params),
                  *(f'self.{attr} = {g.name}(name="{attr}")'
                    for attr, g in zip(("generator", "discriminator"), graphs, strict=True))],
            call_params="", call=[]))
    if module.errors:
        raise SpecError(module.errors)
    if any(c.init[:1] and c.init[0].startswith("require_compiled(") for c in module.classes):
        module.helpers.add("require_compiled")
    needed = _closure(module.helpers)
    sources = helper_sources()
    source = Path(graph.file).name if graph.file else "a spec"
    doc = _docstring([
        f"`{graph.name}` of {source}: Keras 3 models on TensorFlow, generated by archdsl.",
        "Change the spec and recompile rather than editing this file. Tensors are channels "
        "first, as in the spec; the comment on a line is the shape it produces (B is the "
        "batch)."], 0)
    return _environment().get_template("module.py.j2").render(
        doc=doc, classes=module.classes,
        uses_math=any("math" in sources[n][1] for n in needed),
        helpers=[src for n, (src, _) in sources.items() if n in needed])
