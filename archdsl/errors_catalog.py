"""Every diagnostic code archdsl emits, with its one-line meaning.

docs/errors.md is checked against this table by the tests, so the two never drift.
"""

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
    # internal
    "E9999": "an internal error in archdsl (please report it)",
}
