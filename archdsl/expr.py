"""Scalar expressions over a definition's names, for generated code.

A generated class is written for any value of its parameters, so the sizes and settings it
computes are expressions (`channels * 4`, `(H - 1) // stride + 1`), not the numbers one
elaboration found. `E` is that expression: `Var`, `Lit` or `Op`, built by `add`, `mul`, ...
which fold constants and collect sums, and printed by `render` as `ruff format` prints
Python. `Traced` is an int that carries its expression through the shape rules: elaborating
with traced parameters gives every inferred size (a convolution's input channels) as an
expression of the definition's parameters and input sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

E = Union["Var", "Lit", "Op"]


@dataclass(frozen=True, slots=True)
class Var:
    name: str


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any  # int, float, str, bool, None, or a tuple/list of literals


@dataclass(frozen=True, slots=True)
class Op:
    """`op` is a Python operator (`+`, `//`, `==`, `and`, `not`, `neg`), `if` (then, cond,
    else), `call` (function name first), `tuple` or `list`."""

    op: str
    args: tuple[Any, ...]


# ---- construction with simplification -------------------------------------------------------
def lit(v: Any) -> E:
    return v if isinstance(v, (Var, Lit, Op)) else Lit(v)


def expr_of(v: Any) -> E:
    """The expression of a value: its trace, or the value itself as a literal."""
    if isinstance(v, Traced):
        return v.expr
    if isinstance(v, (list, tuple)):
        return Op("list" if isinstance(v, list) else "tuple", tuple(expr_of(x) for x in v))
    return lit(v)


def _int(e: E) -> int | None:
    if isinstance(e, Lit) and isinstance(e.value, int) and not isinstance(e.value, bool):
        return e.value
    return None


def _terms(e: E, scale: int, out: dict[E, int]) -> int:
    """Add `scale * e` to the linear combination `out`; return the constant part."""
    k = _int(e)
    if k is not None:
        return scale * k
    if isinstance(e, Op) and e.op in ("+", "-"):
        a, b = e.args
        return _terms(a, scale, out) + _terms(b, -scale if e.op == "-" else scale, out)
    if isinstance(e, Op) and e.op == "neg":
        return _terms(e.args[0], -scale, out)
    if isinstance(e, Op) and e.op == "*":
        a, b = e.args
        if _int(a) is not None:
            return _terms(b, scale * _int(a), out)
        if _int(b) is not None:
            return _terms(a, scale * _int(b), out)
    out[e] = out.get(e, 0) + scale
    return 0


def _linear(e: E) -> E:
    """A sum in the canonical order of its first terms, constants last: `H - 1`."""
    terms: dict[E, int] = {}
    const = _terms(e, 1, terms)
    parts = [(t, c) for t, c in terms.items() if c]
    out: E | None = None
    for t, c in sorted(parts, key=lambda tc: tc[1] < 0):  # positive terms first, stable
        term = t if abs(c) == 1 else Op("*", (Lit(abs(c)), t))
        if out is None:
            out = term if c > 0 else Op("neg", (term,))
        else:
            out = Op("+" if c > 0 else "-", (out, term))
    if out is None:
        return Lit(const)
    if const:
        out = Op("+" if const > 0 else "-", (out, Lit(abs(const))))
    return out


_FOLD: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "//": lambda a, b: a // b, "%": lambda a, b: a % b, "/": lambda a, b: a / b,
    "**": lambda a, b: a**b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def binary(op: str, a: Any, b: Any) -> E:
    a, b = lit(a), lit(b)
    if isinstance(a, Lit) and isinstance(b, Lit) and op in _FOLD and \
            not isinstance(a.value, (str, tuple, list)) and \
            not isinstance(b.value, (str, tuple, list)):
        try:
            return Lit(_FOLD[op](a.value, b.value))
        except (ArithmeticError, TypeError, ValueError):
            pass
    if op in ("+", "-") or (op == "*" and (_int(a) is not None or _int(b) is not None)):
        if _all_int_like(a) and _all_int_like(b):
            return _linear(Op(op, (a, b)))
    if op in ("//", "*") and _int(b) == 1:
        return a
    if op == "//" and isinstance(a, Op) and a.op == "//" and _int(a.args[1]) and _int(b) \
            and _int(a.args[1]) > 0 and _int(b) > 0:  # x // m // n == x // (m * n)
        return Op("//", (a.args[0], Lit(_int(a.args[1]) * _int(b))))
    if op == "*" and _int(a) == 1:
        return b
    return Op(op, (a, b))


def _all_int_like(e: E) -> bool:
    """Whether `e` is built from names, integers and + - * (so sums may be collected)."""
    if isinstance(e, Lit):
        return isinstance(e.value, int) and not isinstance(e.value, bool)
    if isinstance(e, Var):
        return True
    return e.op in ("+", "-", "*", "neg", "//", "%", "call")


def neg(a: Any) -> E:
    a = lit(a)
    if isinstance(a, Lit) and isinstance(a.value, (int, float)) and not isinstance(a.value, bool):
        return Lit(-a.value)
    if _all_int_like(a):
        return _linear(Op("neg", (a,)))
    return Op("neg", (a,))


_OPPOSITE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


def negate(e: E) -> E:
    """`not e`, written as a person would: `a != b` for `a == b`."""
    if isinstance(e, Op) and e.op in _OPPOSITE:
        return Op(_OPPOSITE[e.op], e.args)
    if isinstance(e, Op) and e.op == "not":
        return e.args[0]
    if isinstance(e, Lit) and isinstance(e.value, bool):
        return Lit(not e.value)
    return Op("not", (e,))


def call(func: str, *args: Any) -> E:
    return Op("call", (func, *(lit(a) for a in args)))


def substitute(e: E, names: Mapping[str, E]) -> E:
    """`e` with each `Var` in `names` replaced, re-simplified."""
    if isinstance(e, Var):
        return names.get(e.name, e)
    if isinstance(e, Lit):
        return e
    if e.op == "call":
        return call(e.args[0], *(substitute(a, names) for a in e.args[1:]))
    args = tuple(substitute(a, names) for a in e.args)
    if e.op == "neg":
        return neg(args[0])
    if e.op in _FOLD or e.op in ("@",):
        return binary(e.op, *args)
    return Op(e.op, args)


def names(e: E) -> set[str]:
    if isinstance(e, Var):
        return {e.name}
    if isinstance(e, Lit):
        return set()
    args = e.args[1:] if e.op == "call" else e.args
    return set().union(*(names(a) for a in args)) if args else set()


def evaluate(e: E, env: Mapping[str, Any]) -> Any:
    """The value of `e` with `env` giving its names (for checking a generated expression)."""
    if isinstance(e, Var):
        return env[e.name]
    if isinstance(e, Lit):
        return e.value
    if e.op == "call":
        fn = {"min": min, "max": max, "abs": abs, "int": int, "float": float,
              "len": len}[e.args[0]]
        return fn(*(evaluate(a, env) for a in e.args[1:]))
    if e.op == "neg":
        return -evaluate(e.args[0], env)
    if e.op == "not":
        return not evaluate(e.args[0], env)
    if e.op == "and":
        return evaluate(e.args[0], env) and evaluate(e.args[1], env)
    if e.op == "or":
        return evaluate(e.args[0], env) or evaluate(e.args[1], env)
    if e.op == "if":
        then, cond, orelse = e.args
        return evaluate(then, env) if evaluate(cond, env) else evaluate(orelse, env)
    if e.op in ("tuple", "list"):
        items = [evaluate(a, env) for a in e.args]
        return tuple(items) if e.op == "tuple" else items
    return _FOLD[e.op](evaluate(e.args[0], env), evaluate(e.args[1], env))


# ---- printing as ruff format prints Python -----------------------------------------------------
_PRECEDENCE = {
    "if": 1, "or": 2, "and": 3, "not": 4,
    "==": 5, "!=": 5, "<": 5, "<=": 5, ">": 5, ">=": 5,
    "+": 7, "-": 7, "*": 8, "/": 8, "//": 8, "%": 8, "@": 8, "neg": 9, "**": 10,
}
_ATOM = 11


def render(e: E, rename: Callable[[str], str] = lambda s: s) -> str:
    return _render(e, rename)[0]


def _literal(v: Any) -> str:
    if isinstance(v, str):  # repr escapes line breaks; double quotes as the formatter writes
        text = repr(v)
        if text[0] == "'":
            text = '"' + text[1:-1].replace("\\'", "'").replace('"', '\\"') + '"'
        return text
    if isinstance(v, float) and v != v:
        return 'float("nan")'
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return 'float("inf")' if v > 0 else '-float("inf")'
    if isinstance(v, (tuple, list)):
        inner = ", ".join(_literal(x) for x in v)
        if isinstance(v, tuple):
            return f"({inner},)" if len(v) == 1 else f"({inner})"
        return f"[{inner}]"
    return repr(v)


def _render(e: E, rename: Callable[[str], str]) -> tuple[str, int]:
    if isinstance(e, Var):
        return rename(e.name), _ATOM
    if isinstance(e, Lit):
        text = _literal(e.value)
        negative = isinstance(e.value, (int, float)) and not isinstance(e.value, bool) \
            and e.value < 0
        return text, (_PRECEDENCE["neg"] if negative or text.startswith("-") else _ATOM)
    op = e.op
    if op == "call":
        return f"{e.args[0]}({', '.join(render(a, rename) for a in e.args[1:])})", _ATOM
    if op in ("tuple", "list"):
        inner = ", ".join(render(a, rename) for a in e.args)
        if op == "tuple":
            return (f"({inner},)" if len(e.args) == 1 else f"({inner})"), _ATOM
        return f"[{inner}]", _ATOM
    mine = _PRECEDENCE[op]
    if op == "neg":
        text, p = _render(e.args[0], rename)
        return "-" + (text if p >= mine else f"({text})"), mine
    if op == "not":
        text, p = _render(e.args[0], rename)
        return "not " + (text if p >= mine else f"({text})"), mine
    if op == "if":
        then, cond, orelse = (_wrap(_render(a, rename), mine + 1) for a in e.args)
        return f"{then} if {cond} else {orelse}", mine
    left, right = e.args
    if op == "**":  # right-associative; operands hug `**` when both are simple
        lt, rt = _wrap(_render(left, rename), mine + 1), _wrap(_render(right, rename), mine)
        simple = all(_simple(x) for x in (left, right))
        return (f"{lt}**{rt}" if simple else f"{lt} ** {rt}"), mine
    comparison = mine == _PRECEDENCE["=="]
    lt = _wrap(_render(left, rename), mine + 1 if comparison else mine)
    rt = _wrap(_render(right, rename), mine + 1)
    return f"{lt} {op} {rt}", mine


def _wrap(rendered: tuple[str, int], need: int) -> str:
    text, p = rendered
    return text if p >= need else f"({text})"


def _simple(e: E) -> bool:
    """Operands `ruff format` writes against `**`: names, numbers and unary minus of them."""
    if isinstance(e, Var):
        return True
    if isinstance(e, Lit):
        return isinstance(e.value, (int, float)) and not isinstance(e.value, bool)
    return e.op == "neg" and _simple(e.args[0])


# ---- integers that remember where they came from ----------------------------------------------
class Traced(int):
    """An int with the expression that computed it. Arithmetic with ints and other traced
    ints keeps the expression; anything else (a symbolic size, a float) drops it."""

    expr: E

    def __new__(cls, value: int, expr: E) -> Traced:
        obj = super().__new__(cls, value)
        obj.expr = expr
        return obj

    def __reduce__(self) -> tuple[Any, ...]:  # copies and pickles see a plain int
        return (int, (int(self),))

    def _op(self, other: Any, op: str, fn: Callable[[int, int], int], swap: bool = False) -> Any:
        if isinstance(other, bool) or not isinstance(other, int):
            return NotImplemented
        value = fn(other, int(self)) if swap else fn(int(self), other)
        a, b = (expr_of(other), self.expr) if swap else (self.expr, expr_of(other))
        return trace(value, binary(op, a, b))

    def __add__(self, o: Any) -> Any:
        return self._op(o, "+", int.__add__)

    def __radd__(self, o: Any) -> Any:
        return self._op(o, "+", int.__add__, swap=True)

    def __sub__(self, o: Any) -> Any:
        return self._op(o, "-", int.__sub__)

    def __rsub__(self, o: Any) -> Any:
        return self._op(o, "-", int.__sub__, swap=True)

    def __mul__(self, o: Any) -> Any:
        return self._op(o, "*", int.__mul__)

    def __rmul__(self, o: Any) -> Any:
        return self._op(o, "*", int.__mul__, swap=True)

    def __floordiv__(self, o: Any) -> Any:
        return self._op(o, "//", int.__floordiv__)

    def __rfloordiv__(self, o: Any) -> Any:
        return self._op(o, "//", int.__floordiv__, swap=True)

    def __mod__(self, o: Any) -> Any:
        return self._op(o, "%", int.__mod__)

    def __rmod__(self, o: Any) -> Any:
        return self._op(o, "%", int.__mod__, swap=True)

    def __neg__(self) -> Any:
        return trace(-int(self), neg(self.expr))

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Any:
        return trace(abs(int(self)), call("abs", self.expr))


def trace(value: int, expr: E) -> int:
    """`value` carrying `expr`, or the plain int when the expression is that literal."""
    if isinstance(expr, Lit) and expr.value == value and type(expr.value) is int:
        return int(value)
    return Traced(value, expr)


def retrace(v: Any, names: Mapping[str, E]) -> Any:
    """`v` (a size, or nested lists, tuples and dicts of them) with its expressions rewritten
    by `names`: how a value computed inside a block reads in its caller."""
    if isinstance(v, Traced):
        return trace(int(v), substitute(v.expr, names))
    if isinstance(v, list):
        return [retrace(x, names) for x in v]
    if isinstance(v, tuple):
        return tuple(retrace(x, names) for x in v)
    if isinstance(v, dict):
        return {k: retrace(x, names) for k, x in v.items()}
    return v


def untrace(v: Any) -> Any:
    """`v` with every traced int made plain."""
    if isinstance(v, Traced):
        return int(v)
    if isinstance(v, list):
        return [untrace(x) for x in v]
    if isinstance(v, tuple):
        return tuple(untrace(x) for x in v)
    if isinstance(v, dict):
        return {k: untrace(x) for k, x in v.items()}
    return v
