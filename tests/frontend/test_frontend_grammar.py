"""Grammar coverage: a small valid spec for every construct of LANGUAGE.md sections 2-8 and 10.1.

Each case states, worked out by hand, what its graph must be: output types, the number of
learned parameters, the node ops in order, and where it matters the arguments a layer or node
received. A parse that silently groups an expression the wrong way changes one of these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import archdsl
from archdsl.graph import GanGraph, Graph


@dataclass(frozen=True)
class Case:
    name: str
    spec: str
    outputs: dict[str, str]  # output name -> "dtype[shape]"; a gan's as "generator.<name>"
    params: int | None = None  # learned parameters, shared ones counted once
    ops: tuple[str, ...] | None = None  # node ops in order, inputs left out
    files: dict[str, str] = field(default_factory=dict)  # other files next to main.arch
    model: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    graph_params: dict[str, Any] | None = None  # the model parameters the graph records
    layer_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> args subset
    node_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # node name -> subset
    param_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # key -> shape
    train: dict[str, Any] | None = None  # TrainConfig without its unset fields
    gan_loss: str | None = None


CASES = [
    Case(
        "comments_and_free_layout",
        """# A spec may start with a comment.
model Net {  # comments may follow any token
    input x: [B, 4]
    # a whole-line comment may hold anything: ; $ ` \\ 'quotes' { ( [ "
    output y =
        x
        |> Linear(
            8,          # one argument per line, a trailing comma
            bias=false,
        )
        |> ReLU
}
""",
        outputs={"y": "f32[B, 8]"}, params=32, ops=("Linear", "ReLU"),
    ),
    Case(
        "integer_with_underscores",
        "model Net {\n    input x: [B, 2]\n    output y = x |> Linear(1_000)\n}\n",
        outputs={"y": "f32[B, 1000]"}, params=3000,
    ),
    Case(
        "float_literals",
        """model Net {
    input x: [B, 4]
    output y = x |> Dropout(0.1) |> LayerNorm(eps=1e-3) |> Dropout(p=.25)
                 |> LeakyReLU(2.5E-1) |> Dropout(5e-1)
    output z = x * 2.
}
""",
        outputs={"y": "f32[B, 4]", "z": "f32[B, 4]"}, params=8,
        layer_args={"drop1": {"p": 0.1}, "ln": {"eps": 0.001},
                    "drop2": {"p": 0.25}, "leakyrelu": {"slope": 0.25},
                    "drop3": {"p": 0.5}},
        node_args={"z": {"scalar": 2.0}},
    ),
    Case(
        "strings_escapes_and_padding_modes",
        """block Act(kind: str = "relu") {
    assert kind == "re" + "lu" or kind == "tanh", "kind is \\"relu\\" or \\"tanh\\"\\t(\\\\n)\\n"
    input x: [B, F]
    output y = if kind == "relu" then relu(x) else tanh(x)
}

model Net {
    input x: [B, 3, 8, 8]
    h = x |> Conv2d(4, 3, padding="same") |> Conv2d(4, 3, padding="valid")
    output y = h |> Flatten |> Act |> Act("tanh") |> Act(kind="relu")
}
""",
        outputs={"y": "f32[B, 144]"}, params=112 + 148,
        ops=("Conv2d", "Conv2d", "Flatten", "relu", "tanh", "relu"),
        layer_args={"conv1": {"padding": [[1, 1], [1, 1]]},
                    "conv2": {"padding": [[0, 0], [0, 0]]}},
    ),
    Case(
        "booleans",
        """model Net(use_bias: bool = false) {
    input x: [B, 4]
    flag = true
    output y = x |> Linear(3, bias=use_bias) |> Linear(2, bias=not use_bias and flag)
}
""",
        outputs={"y": "f32[B, 2]"}, params=12 + 6 + 2,
        layer_args={"fc1": {"bias": False}, "fc2": {"bias": True}},
    ),
    Case(
        "tuples_and_lists",
        """model Net {
    input x: [B, 1, 9, 9]
    input s: [B, 6, 4]
    k = (3, 5)
    sizes = [2, 7]
    output a = x |> Conv2d(sizes[0], kernel=k, stride=(1, 2), padding=(1, k[0] - 1))
    output b = s |> Conv1d(sizes[1], kernel=(3,))
    output c = permute(s, [0, 2, 1])
}
""",
        outputs={"a": "f32[B, 2, 9, 5]", "b": "f32[B, 7, 2]", "c": "f32[B, 4, 6]"},
        params=(2 * 1 * 3 * 5 + 2) + (7 * 6 * 3 + 7),
        param_shapes={"conv1.weight": (2, 1, 3, 5), "conv2.weight": (7, 6, 3)},
    ),
    Case(
        "every_dtype",
        """model Net {
    input a: f16[B, 4]
    input b: bf16[B, 4]
    input c: f32[B, 4]
    input d: f64[B, 4]
    input e: i32[B, 4]
    input f: i64[B, 4]
    input g: bool[B, 4]
    input h: [B, 4]
    output oa = a |> Tanh
    output ob = b |> ReLU
    output oc = c + h
    output od = d * 2
    output oe = e |> Embedding(10, 3)
    output of = f |> Embedding(10, 3)
    output og = g
}
""",
        outputs={"oa": "f16[B, 4]", "ob": "bf16[B, 4]", "oc": "f32[B, 4]", "od": "f64[B, 4]",
                 "oe": "f32[B, 4, 3]", "of": "f32[B, 4, 3]", "og": "bool[B, 4]"},
        params=30 + 30,
    ),
    Case(
        "imports_and_constants",
        """import "lib/blocks.arch"
const D = WIDTH * 2

model Net {
    input x: [B, 4]
    output y = x |> Linear(D) |> Head(3)
}
""",
        files={
            "lib/blocks.arch": 'import "acts.arch"\nconst WIDTH = 6\n\n'
                               "block Head(n: int) {\n    input x: [B, F]\n"
                               "    output y = x |> Linear(n) |> Act\n}\n",
            "lib/acts.arch": "block Act {\n    input x: [B, F]\n    output y = x |> GELU\n}\n",
        },
        outputs={"y": "f32[B, 3]"}, params=(4 * 12 + 12) + (12 * 3 + 3),
        ops=("Linear", "Linear", "GELU"),
    ),
    Case(
        "parameters_with_defaults_from_earlier_ones",
        """model Net(d_model: int = 8, d_ff: int = 4 * d_model, p: float = 0.1, act: str = "gelu",
          pre: bool = false,) {
    input x: [B, T, d_model]
    output y = x |> Linear(d_ff) |> Dropout(p)
}
""",
        outputs={"y": "f32[B, T, 32]"}, params=8 * 32 + 32,
        graph_params={"d_model": 8, "d_ff": 32, "p": 0.1, "act": "gelu", "pre": False},
    ),
    Case(
        "parameters_overridden",
        """model Net(d_model: int = 8, d_ff: int = 4 * d_model, scale: float = 1) {
    input x: [B, T, d_model]
    output y = x |> Linear(d_ff)
}
""",
        overrides={"d_model": 4},
        outputs={"y": "f32[B, T, 16]"}, params=4 * 16 + 16,
        graph_params={"d_model": 4, "d_ff": 16, "scale": 1.0},
    ),
    Case(
        "model_with_empty_parameter_list_used_as_a_layer",
        """model Encoder(d: int = 4) {
    input x: [B, 8]
    output h = x |> Linear(d) |> Tanh
    train { epochs = 2 }
}

model Net() {
    input x: [B, 8]
    output y = x |> Encoder(6) |> Linear(1)
}
""",
        model="Net",
        outputs={"y": "f32[B, 1]"}, params=(8 * 6 + 6) + (6 + 1),
        param_shapes={"encoder.fc.weight": (6, 8), "fc.weight": (1, 6)},
    ),
    Case(
        "statements",
        """block Both {
    input a: [B, F]
    output first = a |> ReLU
    output second: [B, F] = a |> Tanh
}

model Net(width: int = 8) {
    assert width % 2 == 0, "width must be even"
    input x: [B, 4]
    h = x |> Linear(width)
    g: [B, width] = h |> ReLU
    assert g: [B, 8]
    assert g: f32[B, width]
    pair = g |> Both
    output y: [B, 8] = pair[0] + pair[1]
    output z = pair[1]
}
""",
        outputs={"y": "f32[B, 8]", "z": "f32[B, 8]"}, params=4 * 8 + 8,
        ops=("Linear", "ReLU", "ReLU", "Tanh", "add"),
    ),
    Case(
        "for_loops",
        """model Net {
    input x: [B, 4]
    for i in range(3) {
        x = x |> Linear(4 + i)
    }
    for i in range(1, 3) {
        for j in range(0, 4, 2) {
            x = x |> Linear(i * 10 + j)
        }
    }
    output y = x
}
""",
        outputs={"y": "f32[B, 22]"},
        params=20 + 25 + 36 + 70 + 132 + 260 + 462, ops=("Linear",) * 7,
    ),
    Case(
        "train_section",
        """model Net {
    input x: [B, 4]
    output y = x |> Linear(3)
    train {
        loss = "cross_entropy"
        optimizer = SGD(lr=0.1, momentum=0.9)
        batch = 32
        epochs = 5
        data = "digits"
    }
}
""",
        outputs={"y": "f32[B, 3]"},
        train={"loss": "cross_entropy",
               "optimizer": {"name": "SGD", "args": {"lr": 0.1, "momentum": 0.9,
                                                     "weight_decay": 0.0, "dampening": 0.0,
                                                     "nesterov": False}},
               "batch": 32, "epochs": 5, "data": "digits"},
    ),
    Case(
        "train_optimizers_bare_and_positional",
        """model Net {
    input x: [B, 4]
    output y = x |> Linear(1)
    train {
        loss = "mse"
        optimizer = Adam(3e-4)
    }
}
""",
        outputs={"y": "f32[B, 1]"},
        train={"loss": "mse", "optimizer": {"name": "Adam", "args": {
            "lr": 3e-4, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}}},
    ),
    Case(
        "gan_with_train",
        """model Gen(nz: int = 8) {
    input z: [B, nz]
    output sample = z |> Linear(16) |> Tanh
}

model Disc {
    input sample: [B, 16]
    output score = sample |> Linear(1)
}

gan Pair(nz: int = 4) {
    generator = Gen(nz=nz)
    discriminator = Disc
    loss = "wasserstein"
    train {
        g_optimizer = Adam(lr=1e-4, betas=(0.5, 0.9))
        d_optimizer = AdamW
        n_critic = 5
        clip = 0.01
        batch = 16
        epochs = 1
    }
}
""",
        outputs={"generator.sample": "f32[B, 16]", "discriminator.score": "f32[B, 1]"},
        params=(4 * 16 + 16) + (16 + 1), gan_loss="wasserstein",
        train={"g_optimizer": {"name": "Adam", "args": {"lr": 1e-4, "betas": [0.5, 0.9],
                                                        "eps": 1e-8, "weight_decay": 0.0}},
               "d_optimizer": {"name": "AdamW", "args": {"lr": 1e-3, "betas": [0.9, 0.999],
                                                         "eps": 1e-8, "weight_decay": 1e-2}},
               "n_critic": 5, "clip": 0.01, "batch": 16, "epochs": 1},
    ),
    Case(
        "pipeline_with_repeats",
        """block Res(d: int) {
    input x: [B, d]
    output y = x + (x |> Linear(d) |> ReLU)
}

model Net {
    input x: [B, 4]
    a = x |> Linear(4) * 3
    b = a |> 2 * Res(4)
    output y = b |> Res(4)
}
""",
        outputs={"y": "f32[B, 4]"}, params=6 * 20,
        ops=("Linear",) * 3 + ("Linear", "ReLU", "add") * 3,
        param_shapes={"fc.0.weight": (4, 4), "fc.2.weight": (4, 4),
                      "res1.0.fc.weight": (4, 4), "res1.1.fc.weight": (4, 4),
                      "res2.fc.weight": (4, 4)},
    ),
    Case(
        "apply_to_several_inputs_positionally_and_by_name",
        """block Mix(w: int) {
    input a: [B, F]
    input b: [B, G]
    output y = (a |> Linear(w)) + (b |> Linear(w))
}

model Net {
    input four: [B, 4]
    input six: [B, 6]
    p = Mix(3)(four, six)
    q = Mix(3)(b=four, a=six)
    r = Mix(3)(four, b=six)
    output y = p + q + r
}
""",
        outputs={"y": "f32[B, 3]"}, params=3 * (12 + 3 + 18 + 3),
        param_shapes={"mix1.fc1.weight": (3, 4), "mix1.fc2.weight": (3, 6),
                      "mix2.fc1.weight": (3, 6), "mix2.fc2.weight": (3, 4),
                      "mix3.fc1.weight": (3, 4), "mix3.fc2.weight": (3, 6)},
    ),
    Case(
        "tensor_operators",
        """model Net {
    input a: [B, 3, 4]
    input b: [4, 5]
    input c: [5]
    m = a @ b
    output y = -m * 0.5 + c - 1 / (m + 2)
    output z = b @ c
}
""",
        outputs={"y": "f32[B, 3, 5]", "z": "f32[4]"}, params=0,
        ops=("matmul", "neg", "mul", "add", "add", "div", "sub", "matmul"),
    ),
    Case(
        "if_on_tensors_and_scalars",
        """block Down(stride: int) {
    input x: [B, C, H, W]
    proj = Conv2d(8, 1, stride=stride)
    output y = if stride != 1 then proj(x) else x
}

model Net {
    input x: [B, 8, 8, 8]
    a = x |> Down(1)
    output y = a |> Down(2)
    output z = x |> Linear(if 2 > 1 then 3 else 1 // 0)
}
""",
        outputs={"y": "f32[B, 8, 4, 4]", "z": "f32[B, 8, 8, 3]"}, params=72 + 27,
        ops=("Conv2d", "Linear"),
    ),
    Case(
        "pipe_is_looser_than_if",
        """model Net(big: bool = false) {
    input x: [B, 4]
    output y = if big then x |> Linear(8) else x |> Linear(2)
    output z = if big then x |> Linear(8) else (x |> Linear(2))
}
""",
        # y is `(if big then x |> Linear(8) else x) |> Linear(2)`
        outputs={"y": "f32[B, 2]", "z": "f32[B, 2]"}, params=2 * (4 * 2 + 2),
        ops=("Linear", "Linear"),
    ),
    Case(
        "indexing_and_slices",
        """model Net {
    input x: [B, T, 8]
    input y: [B, 16, 8]
    output last = x[:, -1]
    output first4 = y[:, 0:4]
    output tail = x[:, 1:]
    output inner = x[:, 1:-1, 2]
    output every2 = x[:, ::2]
    output stepped = x[:, :, 1:7:3]
    output one = x[0]
    output trailing = y[:, -3:, :]
}
""",
        outputs={"last": "f32[B, 8]", "first4": "f32[B, 4, 8]", "tail": "f32[B, T - 1, 8]",
                 "inner": "f32[B, T - 2]", "every2": "f32[B, (T + 1)//2, 8]",
                 "stepped": "f32[B, T, 2]", "one": "f32[T, 8]", "trailing": "f32[B, 3, 8]"},
        params=0, ops=("getitem",) * 8,
    ),
    Case(
        "attributes_read_parameters",
        """model Net {
    input t: i64[B, T]
    wte = Embedding(100, 16)
    attn = MultiHeadAttention(2)
    h = t |> wte |> LayerNorm
    a = h |> attn
    output logits = h @ transpose(wte.weight, 0, 1)
    output mixed = a @ attn.out_proj.weight
}
""",
        outputs={"logits": "f32[B, T, 100]", "mixed": "f32[B, T, 16]"},
        params=1600 + 32 + (3 * 16 * 16 + 48 + 256 + 16),
        ops=("Embedding", "LayerNorm", "MultiHeadAttention", "param", "transpose", "matmul",
             "param", "matmul"),
    ),
    Case(
        "functions",
        """model Net {
    input x: [B, T, 6]
    input v: [B, 6]
    output a = relu(x) + tanh(x) + sigmoid(x) + gelu(x, approximate="tanh") + silu(x)
    output b = softmax(x, dim=1)
    output c = softmax(x)
    output d = concat([x, x, x], dim=2)
    output e = reshape(x, [B, T, 2, 3])
    output f = transpose(x, 1, 2)
    output g = permute(x, [2, 0, 1])
    output h = mean(x, 1)
    output i = sum(x, dim=2, keepdim=true)
    output j = expand(reshape(v, [B, 1, 6]), [B, 5, 6])
    output k = mean(x, [1, 2])
}
""",
        outputs={"a": "f32[B, T, 6]", "b": "f32[B, T, 6]", "c": "f32[B, T, 6]",
                 "d": "f32[B, T, 18]", "e": "f32[B, T, 2, 3]", "f": "f32[B, 6, T]",
                 "g": "f32[6, B, T]", "h": "f32[B, 6]", "i": "f32[B, T, 1]",
                 "j": "f32[B, 5, 6]", "k": "f32[B]"},
        params=0,
        ops=("relu", "tanh", "add", "sigmoid", "add", "gelu", "add", "silu", "add", "softmax",
             "softmax", "concat", "reshape", "transpose", "permute", "mean", "sum", "reshape",
             "expand", "mean"),
        node_args={"b": {"dim": 1}, "c": {"dim": 2}},
    ),
    # ---- LANGUAGE.md section 10.1 -----------------------------------------------------------
    Case(
        "destructuring_multi_output_values",
        """block Two(d: int) {
    input x: [B, d]
    output low = x * 2.0
    output high = x + 1.0
}

model Net {
    input x: [B, 10]
    a, b = x |> Two(10)
    p, q, r = split(x, 4, dim=1)
    u, v = chunk(a, 2, dim=1)
    parts = split(b, [3, 7], dim=1)
    first = parts[0]
    last = parts[-1]
    output y = concat([p, q, r], dim=1) - concat([u, v], dim=1) |> Linear(10)
    output z = concat([first, last, v], dim=1)
    output w = (u, v) |> maximum
}
""",
        outputs={"y": "f32[B, 10]", "z": "f32[B, 15]", "w": "f32[B, 5]"}, params=110,
        # a block's outputs are its nodes; a multi-output op is one node and a part per output
        ops=("mul", "add", "split", "part", "part", "part", "chunk", "part", "part", "split",
             "part", "part", "concat", "concat", "sub", "Linear", "concat", "maximum"),
        node_args={"p": {"index": 0}, "r": {"index": 2}, "first": {"index": 0},
                   "last": {"index": 1}},
    ),
    Case(
        "destructuring_rebinds_state_in_a_loop",
        """model Net {
    input x: [B, 5, 4]
    cell = LSTMCell(8)
    h, c = cell(x[:, 0])
    for t in range(1, 5, 2) {
        h, c = cell(x[:, t], h, c)
        c, h = (h, c)
    }
    output y = h
    output s = c
}
""",
        # one cell shared by three calls; inside the loop the states swap (t = 1, 3)
        outputs={"y": "f32[B, 8]", "s": "f32[B, 8]"}, params=4 * 8 * (4 + 8) + 2 * 4 * 8,
        ops=("getitem", "LSTMCell", "part", "part") * 3,
    ),
    Case(
        "recurrent_state_in_and_out",
        """model Net {
    input x: [B, T, 4]
    input h0: [2, B, 6]
    out, h = GRU(6, layers=2, return_state=true)(x, h0)
    output y = out
    output last = h[-1]
}
""",
        outputs={"y": "f32[B, T, 6]", "last": "f32[B, 6]"},
        params=3 * 6 * (4 + 6) + 2 * 18 + 3 * 6 * (6 + 6) + 2 * 18,
        ops=("GRU", "part", "part", "getitem"),
    ),
    Case(
        "tensor_comparisons_powers_and_promotion",
        """model Net {
    input x: [B, 4]
    input t: i64[B, 4]
    mask = x * 2 > x + 1
    keep = t != 0
    output a = where(mask, x ** 2 * 3, -x ** 2)
    output b = t / t
    output c = keep * 1
    output d = keep + keep
    output e = 2 * x ** 0.5 >= 1.5
}
""",
        # `**` binds tighter than unary minus and `*`; comparisons looser than arithmetic
        outputs={"a": "f32[B, 4]", "b": "f32[B, 4]", "c": "i64[B, 4]", "d": "bool[B, 4]",
                 "e": "bool[B, 4]"}, params=0,
        ops=("mul", "add", "gt", "ne", "pow", "mul", "pow", "neg", "where", "div", "mul", "add",
             "pow", "mul", "ge"),
        node_args={"keep": {"scalar": 0}, "c": {"scalar": 1}},
    ),
]

# Scalar expressions, each read back through a layer: ints as a Linear width, floats as a
# Dropout probability, booleans through `if ... then 1 else 2`. Python gives the same values.
SCALARS: list[tuple[str, Any]] = [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 4 - 3", 3),
    ("2 ** 3 ** 2", 512),
    ("-2 ** 2 + 8", 4),
    ("-(-3)", 3),
    ("7 % 4 * 3", 9),
    ("20 // 3 % 4", 2),
    ("11 // -2 * -1", 6),
    ("-7 % 3", 2),
    ("2 * 3 // 4", 1),
    ("min(4, 5) + max(1, 2, 3)", 7),
    ("max(2, min(9, 3))", 3),
    ("1_0 * 1_0", 100),
    ("1 / 4", 0.25),
    ("1e-1 * 2", 0.2),
    ("2 ** -1", 0.5),
    ("3 / 2 - 1", 0.5),
    ("true or false and false", True),
    ("(true or false) and false", False),
    ("not 1 == 2", True),
    ("not true or true", True),
    ("not (true or true)", False),
    ("1 + 1 == 2", True),
    ("3 >= 3 and 2 <= 2 and 1 < 2 and 2 > 1 and 1 != 2", True),
    ("2 * 3 > 5", True),
    ('"a" + "b" == "ab"', True),
    ("1 == 1.0", True),
    ("true == 1", False),
    ("if 1 > 2 then false else true", True),
    ("if true then 1 else 2 == 2", 1),
]


def _load(case: Case, tmp_path: Path) -> Graph | GanGraph:
    for rel, text in {**case.files, "main.arch": case.spec}.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    program = archdsl.load(tmp_path / "main.arch")
    return program.graph(case.model, case.overrides or None)


def _outputs(g: Graph, prefix: str = "") -> dict[str, str]:
    out = {}
    for name, node in zip(g.output_names, g.outputs, strict=True):
        t = g.nodes[node].type
        out[prefix + name] = f"{t.dtype}{t}"
    return out


def _graphs(g: Graph | GanGraph) -> list[tuple[str, Graph]]:
    if isinstance(g, GanGraph):
        return [("generator.", g.generator), ("discriminator.", g.discriminator)]
    return [("", g)]


def _n_params(g: Graph) -> int:
    return sum(math.prod(p.shape) for p in g.parameters().values())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_construct(case: Case, tmp_path: Path) -> None:
    g = _load(case, tmp_path)
    parts = _graphs(g)
    outputs: dict[str, str] = {}
    for prefix, part in parts:
        outputs.update(_outputs(part, prefix))
    assert outputs == case.outputs
    assert list(outputs) == list(case.outputs)  # declared order
    if case.params is not None:
        assert sum(_n_params(part) for _, part in parts) == case.params
    if case.ops is not None:
        ops = [n.op for _, part in parts for n in part.nodes if n.op != "input"]
        assert tuple(ops) == case.ops
    if case.graph_params is not None:
        assert g.params == case.graph_params
    main = parts[0][1]
    for path, subset in case.layer_args.items():
        args = main.layers[path].args
        assert {k: args[k] for k in subset} == subset, path
    named = {n.name: n for n in main.nodes if n.name}
    for name, subset in case.node_args.items():
        args = named[name].args
        assert {k: args.get(k) for k in subset} == subset, name
    params = {k: p.shape for _, part in parts for k, p in part.parameters().items()}
    for key, shape in case.param_shapes.items():
        assert params[key] == shape, key
    if case.train is not None:
        assert g.train is not None
        assert g.train.model_dump(exclude_none=True) == case.train
    if case.gan_loss is not None:
        assert isinstance(g, GanGraph) and g.loss == case.gan_loss


def _read_back(expr: str, value: Any) -> tuple[str, str, str]:
    """A spec that turns the value of `expr` into something the graph shows."""
    if isinstance(value, bool):
        return f"x |> Linear(if {expr} then 1 else 2)", "fc", "out"
    if isinstance(value, float):
        return f"x |> Dropout({expr})", "drop", "p"
    return f"x |> Linear({expr})", "fc", "out"


@pytest.mark.parametrize(("expr", "value"), SCALARS, ids=[e for e, _ in SCALARS])
def test_scalar_expression(expr: str, value: Any) -> None:
    stage, layer, arg = _read_back(expr, value)
    g = archdsl.load(f"model Net {{\n    input x: [B, 4]\n    output y = {stage}\n}}\n").graph()
    got = g.layers[layer].args[arg]
    if isinstance(value, bool):
        got = got == 1
    assert got == pytest.approx(value)
