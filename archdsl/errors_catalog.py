"""Every diagnostic code archdsl emits: its one-line meaning (`CODES`), and what
`archdsl explain CODE` prints (`EXPLANATIONS`): why it happens, a spec that gets it, and the
same spec fixed.

docs/errors.md is checked against `CODES` by the tests, and every example is loaded by them to
prove it gets its code (and its fix loads clean), so none of the three drifts.
"""

from __future__ import annotations

from dataclasses import dataclass

CODES: dict[str, str] = {
    # lexical and encoding
    "E0001": "the file cannot be read as UTF-8 text",
    "E0002": "a character that is not allowed in a spec (NUL, bidi control, stray symbol)",
    "E0003": "a number literal that is malformed, too long or out of range",
    "E0004": "a string literal that is not closed on its line",
    # syntax
    "E0101": "unexpected token",
    "E0102": "unexpected end of file",
    "E0103": "a keyword used where a name is expected",
    "E0104": "an unclosed delimiter: a `(`, `[` or `{` that is never closed",
    # names and definitions
    "E0201": "undefined name",
    "E0202": "a name defined twice in one scope",
    "E0203": "unknown layer or function",
    "E0204": "a value of the wrong kind (a tensor where a layer is expected, and so on)",
    "E0205": "a name that cannot be used (a Python keyword, builtin or reserved word)",
    "E0206": "a destructuring `a, b = ...` whose names do not fit the value's parts (their "
             "count, `_`, a type annotation)",
    # shapes and types
    "E0301": "a tensor's shape differs from the declared one",
    "E0302": "shapes do not match for an elementwise operation",
    "E0303": "a layer or function received a tensor of the wrong rank or size",
    "E0304": "a reshape changes the number of elements",
    "E0305": "matrix product with mismatched inner dimensions",
    "E0306": "tensors to concatenate differ outside the concatenation axis",
    "E0307": "an index or dimension out of range",
    "E0308": "a tensor of the wrong dtype",
    "E0309": "a layer's output would have a size below 1",
    "E0310": "a parameter's shape would depend on a symbolic dimension",
    # arguments and scalars
    "E0401": "unknown, missing or repeated argument",
    "E0402": "an argument of the wrong type",
    "E0403": "an argument outside its valid range",
    "E0404": "an assertion that is false",
    "E0405": "a condition or size that cannot be decided at compile time",
    "E0406": "invalid scalar arithmetic (division by zero, overflow)",
    # imports and files
    "E0501": "an imported file does not exist",
    "E0502": "an import cycle",
    "E0503": "an import outside the allowed folders",
    "E0504": "a file name generated code cannot quote (a quote, backslash or control character)",
    # programs, models and gans
    "E0601": "no model to compile, or several without --model",
    "E0602": "the named model does not exist",
    "E0603": "a generator and a discriminator that do not fit together",
    "E0604": "a model or block without an output",
    "E0605": "a statement not allowed here",
    "E0606": "an input declared but never used",
    "E0607": "a block or model that uses itself",
    # train sections
    "E0701": "an invalid `train` setting",
    # limits
    "E0801": "a resource limit was exceeded",
    # backends
    "E0901": "a backend cannot express this construct exactly",
    # warnings: the spec is valid, but probably does not say what its author meant
    "W0001": "`|>` after `if ... then ... else` applies to both branches",
    # internal
    "E9999": "an internal error in archdsl (please report it)",
}


@dataclass(frozen=True)
class Explanation:
    """`text`: why the code is reported and what to do. `example`: a spec that gets the code,
    written to `example.arch` in `encoding` (E0001 needs bytes that are not UTF-8) and given
    to `command` (`check`, or `compile` with `--model` and `--backend`); `fix`: the same
    spec, which the same command accepts."""

    text: str
    example: str = ""
    fix: str = ""
    command: str = "archdsl check example.arch"
    encoding: str = "utf-8"


def _spec(body: str, header: str = "model Net") -> str:
    return f"{header} {{\n{body}}}\n"


EXPLANATIONS: dict[str, Explanation] = {
    "E0001": Explanation(
        "A spec is UTF-8 text. This file holds a byte that cannot start or continue a UTF-8 "
        "character, often because an editor saved it as Latin-1 or Windows-1252. The error "
        "points at the first such byte, even inside a comment.\n\nSave the file as UTF-8.",
        example="# Net, by Jos\u00e9\n" + _spec("    input x: [B, 4]\n    output y = x\n"),
        fix="# Net, by Jos\u00e9\n" + _spec("    input x: [B, 4]\n    output y = x\n"),
        encoding="latin-1"),
    "E0002": Explanation(
        "A character that is not part of the language: a stray symbol (`$`, `;`, `\\`), a "
        "control character, or a bidirectional control, which can make the text a reader "
        "sees differ from the text archdsl reads. Control and bidirectional characters are "
        "refused everywhere, even in comments and strings.",
        example=_spec("    input x: [B, 4]\n    output y = x |> Linear(4);\n"),
        fix=_spec("    input x: [B, 4]\n    output y = x |> Linear(4)\n")),
    "E0003": Explanation(
        "A number that cannot be read: digits and underscores in the wrong places, more "
        "digits than the limit (30), or a float beyond the 64-bit range.",
        example=_spec("    input x: [B, 4]\n    output y = x |> Dropout(1e999)\n"),
        fix=_spec("    input x: [B, 4]\n    output y = x |> Dropout(0.1)\n")),
    "E0004": Explanation(
        "A string starts with `\"` and must end with `\"` on the same line; inside it only "
        "the escapes `\\n`, `\\t`, `\\\"` and `\\\\` are allowed. The error points at "
        "the opening quote.",
        example=_spec('    input x: [B, 3, 8, 8]\n'
                      '    output y = x |> Conv2d(4, 3, padding="same)\n'),
        fix=_spec('    input x: [B, 3, 8, 8]\n'
                  '    output y = x |> Conv2d(4, 3, padding="same")\n')),
    "E0101": Explanation(
        "The parser met a token that cannot come next; the label lists what could. A closing "
        "bracket of the wrong kind is reported here too, with the bracket it should close as "
        "a note. Statements need no separator, but each starts on its own: a name and `=`, "
        "or a keyword.",
        example=_spec("    input x: [B, 4]\n    output y = x |> |> Linear(2)\n"),
        fix=_spec("    input x: [B, 4]\n    output y = x |> Linear(2)\n")),
    "E0102": Explanation(
        "The file ends before the definition or statement it was in is finished. (When a "
        "bracket is left open, E0104 points at it instead.)",
        example="const WIDTH =\n",
        fix="const WIDTH = 64\n"),
    "E0103": Explanation(
        "A keyword of the language (`model block gan train input output assert const import "
        "for in range if then else and or not true false`) where a name is expected. Keywords "
        "are reserved everywhere.",
        example=_spec("    input model: [B, 4]\n    output y = model |> Linear(2)\n"),
        fix=_spec("    input x: [B, 4]\n    output y = x |> Linear(2)\n")),
    "E0104": Explanation(
        "A `(`, `[` or `{` that is never closed. The parser notices only later, where the next "
        "statement or the end of the file cannot fit inside the bracket, so the error points "
        "at the opening bracket and gives the place the parser stopped as a note. A `}` alone "
        "on its line is taken to close the `{` of the line with its indentation.",
        example=_spec("    input x: [B, 4]\n    h = x |> Linear(8\n    output y = h\n"),
        fix=_spec("    input x: [B, 4]\n    h = x |> Linear(8)\n    output y = h\n")),
    "E0201": Explanation(
        "A name that nothing defines where it is used: a tensor, parameter, constant, loop "
        "variable or definition. Names are visible after the statement that binds them; a "
        "dimension symbol is bound by the `input` that declares it. The hint suggests a "
        "close name when there is one.",
        example=_spec("    input image: [B, 4]\n    output y = imag |> Linear(2)\n"),
        fix=_spec("    input image: [B, 4]\n    output y = image |> Linear(2)\n")),
    "E0202": Explanation(
        "One scope defines a name twice: two definitions or constants in a file (or one of "
        "them imported), two parameters, inputs or outputs of one definition. Rebinding a "
        "tensor with `x = x |> ...` is allowed; declaring it twice is not. The note shows the "
        "first definition.",
        example=_spec("    input x: [B, 4]\n    input x: [B, 8]\n    output y = x\n"),
        fix=_spec("    input x: [B, 4]\n    output y = x\n")),
    "E0203": Explanation(
        "A call of a layer or function the language does not have, and no block or model of "
        "that name is in scope. Layers are capitalised (`Conv2d`, `ReLU`), functions are not "
        "(`relu`, `concat`); the hint suggests the closest name.",
        example=_spec("    input x: [B, 3, 32, 32]\n    output y = x |> Conv2D(16, 3)\n"),
        fix=_spec("    input x: [B, 3, 32, 32]\n    output y = x |> Conv2d(16, 3)\n")),
    "E0204": Explanation(
        "A value of the wrong kind: a number where a tensor is needed (an output, an operand "
        "of `@`), a tensor where a layer is needed (after `|>`), a layer where a setting is "
        "needed. The label says what the value is.",
        example=_spec("    input x: [B, 4]\n    output y = 8 * 2\n",
                      "model Net(width: int = 8)"),
        fix=_spec("    input x: [B, 4]\n    output y = x |> Linear(width * 2)\n",
                  "model Net(width: int = 8)")),
    "E0205": Explanation(
        "A name the generated Python cannot use: a Python keyword or `self`, a name starting "
        "with `__`, or, for a definition or parameter (which become classes and constructor "
        "arguments), a Python builtin, a name the generated module imports, or a layer of "
        "the language.",
        example="block Linear(n: int) {\n    input x: [B, F]\n    output y = x\n}\n\n"
                + _spec("    input x: [B, 4]\n    output y = x |> Linear(2)\n"),
        fix="block Passthrough(n: int) {\n    input x: [B, F]\n    output y = x\n}\n\n"
            + _spec("    input x: [B, 4]\n    output y = x |> Passthrough(2)\n")),
    "E0206": Explanation(
        "`a, b = value` binds one name to each part of a multi-output value, in order: the "
        "outputs of a block or model with several, the parts of `split` or `chunk`, "
        "`LSTMCell`'s `(h, c)`, a recurrent layer's `(output, h_n)` or `(output, h_n, c_n)` "
        "with `return_state=true`. There must be exactly one name per part (the label lists "
        "the parts; `chunk` may give fewer parts than asked), each name once, and no `_`: "
        "every part is named. The statement takes no type annotation; check a part with "
        "`assert` once it is bound. To use one part of a value, index it: `p[0]`.",
        example=_spec("    input x: [B, T, 96]\n    q, k, v = split(x, 48, dim=2)\n"
                      "    output y = q + k + v\n"),
        fix=_spec("    input x: [B, T, 96]\n    q, k, v = split(x, 32, dim=2)\n"
                  "    output y = q + k + v\n")),
    "E0301": Explanation(
        "A shape written in the spec (`assert x: [...]`, `output y: [...] = ...`, "
        "`name: [...] = ...`) that the checker proves false. Both shapes are shown; the "
        "label names the first dimension that differs.",
        example=_spec("    input image: [B, 1, 28, 28]\n"
                      "    x = image |> Conv2d(6, kernel=5) |> MaxPool2d(2)\n"
                      "    assert x: [B, 6, 14, 14]\n    output y = x\n"),
        fix=_spec("    input image: [B, 1, 28, 28]\n"
                  "    x = image |> Conv2d(6, kernel=5, padding=2) |> MaxPool2d(2)\n"
                  "    assert x: [B, 6, 14, 14]\n    output y = x\n")),
    "E0302": Explanation(
        "An elementwise operation (`+ - * /`, `maximum`, `where`, ...) of tensors whose shapes "
        "do not broadcast: compared from the last dimension, each pair must be equal or one "
        "of them 1. A residual block whose stride or width changes needs a projection on "
        "its shortcut.",
        example="block Residual(width: int, stride: int = 1) {\n"
                "    input x: [B, C, H, W]\n"
                "    h = x |> Conv2d(width, 3, stride=stride, padding=1)\n"
                "    output y = relu(h + x)\n}\n\n"
                + _spec("    input image: [B, 64, 56, 56]\n"
                        "    output y = image |> Residual(128, stride=2)\n"),
        fix="block Residual(width: int, stride: int = 1) {\n"
            "    input x: [B, C, H, W]\n"
            "    h = x |> Conv2d(width, 3, stride=stride, padding=1)\n"
            "    shortcut = x |> Conv2d(width, 1, stride=stride)\n"
            "    output y = relu(h + shortcut)\n}\n\n"
            + _spec("    input image: [B, 64, 56, 56]\n"
                    "    output y = image |> Residual(128, stride=2)\n")),
    "E0303": Explanation(
        "A layer or function received a tensor of a rank or size it cannot take: `LSTM` "
        "wants `[B, T, F]`, `Conv2d` `[B, C, H, W]`, `Linear` a last dimension equal to its "
        "input width. The label shows the tensor received; the hint often names the missing "
        "step (`Flatten`, `Reshape`).",
        example=_spec("    input x: [B, 16]\n    output y = x |> LSTM(32)\n"),
        fix=_spec("    input x: [B, T, 16]\n    output y = x |> LSTM(32)\n")),
    "E0304": Explanation(
        "A reshape whose target holds another number of elements than its input (the batch "
        "dimension is kept by `Reshape`).",
        example=_spec("    input x: [B, 12]\n    output y = x |> Reshape(5, 2)\n"),
        fix=_spec("    input x: [B, 12]\n    output y = x |> Reshape(3, 4)\n")),
    "E0305": Explanation(
        "`a @ b` needs the last dimension of `a` to equal the second-to-last of `b`, and "
        "batch dimensions that broadcast.",
        example=_spec("    input a: [B, 3, 4]\n    input b: [B, 5, 6]\n    output y = a @ b\n"),
        fix=_spec("    input a: [B, 3, 4]\n    input b: [B, 4, 6]\n    output y = a @ b\n")),
    "E0306": Explanation(
        "`concat` joins tensors along one dimension; every other dimension must be the same "
        "in all of them.",
        example=_spec("    input a: [B, 3, 8]\n    input b: [B, 4, 9]\n"
                      "    output y = concat([a, b], dim=1)\n"),
        fix=_spec("    input a: [B, 3, 8]\n    input b: [B, 4, 8]\n"
                  "    output y = concat([a, b], dim=1)\n")),
    "E0307": Explanation(
        "An index, slice bound or `dim` argument outside the tensor: a dimension of size n "
        "takes indices from -n to n - 1, and a tensor of rank r takes `dim` from -r to r - 1.",
        example=_spec("    input x: [B, 5, 8]\n    output y = x[:, 5]\n"),
        fix=_spec("    input x: [B, 5, 8]\n    output y = x[:, -1]\n")),
    "E0308": Explanation(
        "A tensor of a dtype the operation does not take: `Embedding` reads integer ids "
        "(`i64`), convolutions and norms read floats, and a layer's input has the dtype of its "
        "f32 parameters. An input without a dtype is `f32`.",
        example=_spec("    input tokens: [B, T]\n    output y = tokens |> Embedding(1000, 64)\n"),
        fix=_spec("    input tokens: i64[B, T]\n    output y = tokens |> Embedding(1000, 64)\n")),
    "E0309": Explanation(
        "A convolution or pooling whose window does not fit its input: the output would have "
        "a size below 1. Pad the input, use a smaller kernel or stride, or check the input "
        "size.",
        example=_spec("    input x: [B, 3, 4, 4]\n    output y = x |> Conv2d(8, kernel=5)\n"),
        fix=_spec("    input x: [B, 3, 4, 4]\n    output y = x |> Conv2d(8, kernel=3)\n")),
    "E0310": Explanation(
        "A layer's parameters are sized by its input (`Linear` by the last dimension, "
        "`Conv2d` by the channels), so that dimension must be a number, not a symbol such as "
        "`F` that each call could give another value.",
        example=_spec("    input x: [B, F]\n    output y = x |> Linear(10)\n"),
        fix=_spec("    input x: [B, 32]\n    output y = x |> Linear(10)\n")),
    "E0401": Explanation(
        "A call with an argument the layer, function or definition does not have, without one "
        "it needs, or with one given twice. The hint shows the signature.",
        example=_spec("    input x: [B, 3, 32, 32]\n    output y = x |> Conv2d(16)\n"),
        fix=_spec("    input x: [B, 3, 32, 32]\n    output y = x |> Conv2d(16, kernel=3)\n")),
    "E0402": Explanation(
        "An argument or parameter of the wrong type: a string where an integer goes, a float "
        "for an `int` parameter, a number where `true` or `false` goes.",
        example=_spec('    input x: [B, 4]\n    output y = x |> Linear("ten")\n'),
        fix=_spec("    input x: [B, 4]\n    output y = x |> Linear(10)\n")),
    "E0403": Explanation(
        "An argument outside its valid range or choices: a probability above 1, a negative "
        "size, a padding mode that does not exist, `groups` or `heads` that do not divide "
        "the width.",
        example=_spec("    input x: [B, 4]\n    output y = x |> Dropout(1.5)\n"),
        fix=_spec("    input x: [B, 4]\n    output y = x |> Dropout(0.5)\n")),
    "E0404": Explanation(
        "An `assert cond, \"message\"` whose condition is false for the values it was "
        "checked with; the label shows the names in the condition and their values. Blocks "
        "use it to refuse parameters that would not work.",
        example="block HeadProjection(d: int, heads: int) {\n"
                "    assert d % heads == 0, \"heads must divide d\"\n"
                "    input x: [B, T, d]\n    output y = x |> Linear(d)\n}\n\n"
                + _spec("    input x: [B, T, 100]\n"
                        "    output y = x |> HeadProjection(100, 3)\n"),
        fix="block HeadProjection(d: int, heads: int) {\n"
            "    assert d % heads == 0, \"heads must divide d\"\n"
            "    input x: [B, T, d]\n    output y = x |> Linear(d)\n}\n\n"
            + _spec("    input x: [B, T, 100]\n    output y = x |> HeadProjection(100, 4)\n")),
    "E0405": Explanation(
        "Something that must be known when the spec is checked depends on a symbolic "
        "dimension or is left undecided: a loop count, the condition of an `if`, a size "
        "argument, `padding=\"same\"` with a stride over a symbolic size, or a `--bind` "
        "missing for `analyze`.",
        example=_spec("    input x: [B, T, 16]\n    for i in range(T) {\n"
                      "        x = x |> Linear(16)\n    }\n    output y = x\n"),
        fix=_spec("    input x: [B, T, 16]\n    for i in range(4) {\n"
                  "        x = x |> Linear(16)\n    }\n    output y = x\n")),
    "E0406": Explanation(
        "Arithmetic on compile-time numbers that has no value: a division or remainder by "
        "zero, or an integer beyond 64 bits.",
        example=_spec("    input x: [B, 64]\n    output y = x |> Linear(64 // groups)\n",
                      "model Net(groups: int = 0)"),
        fix=_spec("    input x: [B, 64]\n    output y = x |> Linear(64 // groups)\n",
                  "model Net(groups: int = 2)")),
    "E0501": Explanation(
        "An `import` of a file that does not exist, or cannot be read. Imports are relative "
        "to the importing file.",
        example='import "layers.arch"\n\n' + _spec("    input x: [B, 4]\n    output y = x\n"),
        fix=_spec("    input x: [B, 4]\n    output y = x\n")),
    "E0502": Explanation(
        "Files that import each other, directly or through others. The label shows the "
        "cycle; move what both need into a third file.",
        example='import "example.arch"\n\n' + _spec("    input x: [B, 4]\n    output y = x\n"),
        fix=_spec("    input x: [B, 4]\n    output y = x\n")),
    "E0503": Explanation(
        "An `import` that leads outside the root spec's folder (an absolute path, `..`, or a "
        "symlink that leaves it). Specs may come from others; pass more search paths "
        "(`--path`, `search_paths=`) to allow another folder.",
        example='import "../shared/layers.arch"\n\n'
                + _spec("    input x: [B, 4]\n    output y = x\n"),
        fix=_spec("    input x: [B, 4]\n    output y = x\n")),
    "E0504": Explanation(
        "Generated modules name their spec's files in docstrings and comments, so a file "
        "name with a quote, a backslash or an unprintable character is refused.",
        example='import "my\\"layers.arch"\n\n' + _spec("    input x: [B, 4]\n    output y = x\n"),
        fix=_spec("    input x: [B, 4]\n    output y = x\n")),
    "E0601": Explanation(
        "`compile`, `train` and the other commands build one model or gan of the file: the "
        "only one that no other definition of the file uses. The file has none, or several; "
        "the label lists them. Choose one with `--model NAME`.",
        example=_spec("    input x: [B, 4]\n    output y = x |> Linear(2)\n", "model Small")
        + "\n" + _spec("    input x: [B, 4]\n    output y = x |> Linear(64)\n", "model Large"),
        fix=_spec("    input x: [B, 4]\n    output y = x |> Linear(2)\n", "model Small"),
        command="archdsl compile example.arch"),
    "E0602": Explanation(
        "`--model NAME` names no model or gan of the file; the label lists those it has and "
        "the hint a close name.",
        example=_spec("    input x: [B, 4]\n    output y = x |> Linear(2)\n", "model Small"),
        fix=_spec("    input x: [B, 4]\n    output y = x |> Linear(2)\n", "model Smal"),
        command="archdsl compile --model Smal example.arch"),
    "E0603": Explanation(
        "A gan's two models do not fit: the generator's output must have the type of the "
        "discriminator's input, the discriminator must yield `[B, 1]` or `[B]`, and the "
        "conditions of a conditional gan must match. The notes point at both models.",
        example="model G {\n    input z: [B, 16]\n    output x = z |> Linear(8)\n}\n\n"
                "model D {\n    input x: [B, 8]\n    output score = x |> Linear(2)\n}\n\n"
                "gan Pair {\n    generator = G()\n    discriminator = D()\n}\n",
        fix="model G {\n    input z: [B, 16]\n    output x = z |> Linear(8)\n}\n\n"
            "model D {\n    input x: [B, 8]\n    output score = x |> Linear(1)\n}\n\n"
            "gan Pair {\n    generator = G()\n    discriminator = D()\n}\n"),
    "E0604": Explanation(
        "A model or block must declare at least one `output`; a tensor bound with `=` alone "
        "is not one.",
        example=_spec("    input x: [B, 4]\n    y = x |> Linear(2)\n"),
        fix=_spec("    input x: [B, 4]\n    output y = x |> Linear(2)\n")),
    "E0605": Explanation(
        "A statement in a place that does not take it: `input` or `output` inside a `for` "
        "loop, `train` in a block, anything but generator, discriminator, loss and train in "
        "a gan.",
        example=_spec("    input x: [B, 4]\n    for i in range(2) {\n"
                      "        output y = x |> Linear(4)\n    }\n"),
        fix=_spec("    input x: [B, 4]\n    for i in range(2) {\n"
                  "        x = x |> Linear(4)\n    }\n    output y = x\n")),
    "E0606": Explanation(
        "An input that no output depends on. Every input must be fed to the model, so an "
        "unused one is almost always a mistake; remove it or use it.",
        example=_spec("    input x: [B, 4]\n    input mask: [B, 4]\n"
                      "    output y = x |> Linear(2)\n"),
        fix=_spec("    input x: [B, 4]\n    input mask: [B, 4]\n"
                  "    output y = (x * mask) |> Linear(2)\n")),
    "E0607": Explanation(
        "A block or model that uses itself, directly or through others, or a constant "
        "defined through itself: a network must be finite, so recursion is refused (unroll "
        "it with a `for` loop or `* n`).",
        example="block Tower(depth: int) {\n    input x: [B, F]\n"
                "    output y = x |> Tower(depth - 1)\n}\n\n"
                + _spec("    input x: [B, 4]\n    output y = x |> Tower(3)\n"),
        fix="block Layer {\n    input x: [B, 4]\n    output y = x |> Linear(4) |> ReLU\n}\n\n"
            + _spec("    input x: [B, 4]\n    output y = x |> Layer * 3\n")),
    "E0701": Explanation(
        "A `train` setting that does not exist or has a wrong value: an unknown loss or "
        "optimizer, a batch or epoch count below 1, an optimizer argument out of range.",
        example=_spec('    input x: [B, 4]\n    output y = x |> Linear(2)\n'
                      '    train {\n        loss = "crossentropy"\n    }\n'),
        fix=_spec('    input x: [B, 4]\n    output y = x |> Linear(2)\n'
                  '    train {\n        loss = "cross_entropy"\n    }\n')),
    "E0801": Explanation(
        "A resource limit: the file's size, bracket nesting, a loop or `* n` repeat count, "
        "the number of operations, a tensor's rank or size. The limits keep a hostile or "
        "mistaken spec from exhausting memory or time; raise them through "
        "`archdsl.Limits` when the spec is meant (docs/limits.md).",
        example=_spec("    input x: [B, 4]\n    for i in range(1_000_000) {\n"
                      "        x = x |> Linear(4)\n    }\n    output y = x\n"),
        fix=_spec("    input x: [B, 4]\n    for i in range(10) {\n"
                  "        x = x |> Linear(4)\n    }\n    output y = x\n")),
    "E0901": Explanation(
        "The spec is valid, but the chosen backend cannot express one of its constructs "
        "exactly, and archdsl never substitutes something close. Here `to` would be a "
        "submodule name of the PyTorch module, where `nn.Module` has a method of that name. "
        "The backend's README lists what it refuses; another backend may take the spec.",
        example=_spec("    input x: [B, 4]\n    to = Linear(4)\n    output y = x |> to\n"),
        fix=_spec("    input x: [B, 4]\n    proj = Linear(4)\n    output y = x |> proj\n"),
        command="archdsl compile --backend torch example.arch"),
    "W0001": Explanation(
        "`|>` binds loosest of all operators, so a stage after `if c then a else b` gets the "
        "result of the whole `if`: both branches go through it. Writing a post-norm block, "
        "it is easy to read it as applying to the `else` branch alone. Bracket the `if` to "
        "say that both branches are meant (`archdsl fmt` does), or bracket the branch.",
        example=_spec("    input x: [B, T, 8]\n    a = x |> Linear(8)\n"
                      "    output y = if pre then x + a else x + a |> LayerNorm\n",
                      "model Net(pre: bool = true)"),
        fix=_spec("    input x: [B, T, 8]\n    a = x |> Linear(8)\n"
                  "    output y = if pre then x + a else (x + a |> LayerNorm)\n",
                  "model Net(pre: bool = true)")),
    "E9999": Explanation(
        "archdsl itself failed on this spec: a bug, whatever the spec says. Please report the "
        "spec (or the smallest part of it that still fails) with the output of the command "
        "run with `--debug`."),
}
