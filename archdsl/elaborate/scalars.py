"""Arithmetic on the values a spec computes with: numbers, strings and symbolic sizes,
bounded to what a backend can hold; and a definition's typed parameters."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from archdsl import syntax as ast
from archdsl.diagnostics import Loc, Problem
from archdsl.symbolic import (
    Sym,
    format_dim,
)
from archdsl.values import (
    a_kind,
    with_article,
)

MAX_INT = 2**63


def scalar_binop(op: str, a: Any, b: Any) -> Any:
    """Arithmetic and comparisons on numbers, strings and symbolic sizes. Results stay within
    64-bit integers and finite floats: what a backend's size or argument can hold."""
    if op in ("==", "!="):
        eq = _equal(a, b)
        return eq if op == "==" else not eq
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, float, Sym)):
            if op == "+" and isinstance(a, str) and isinstance(b, str):
                return a + b
            raise Problem("E0402", f"`{op}` needs numbers, got {a_kind(v)}")
    if isinstance(a, Sym) or isinstance(b, Sym):
        return _symbolic_binop(op, a, b)
    if op in ("<", "<=", ">", ">="):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op in ("/", "//", "%") and b == 0:
        raise Problem("E0406", "division by zero", label=f"{_show(a)} {op} {_show(b)}")
    if op == "**":
        return _power(a, b)
    if op == "@":
        raise Problem("E0402", "`@` needs two tensors")
    try:
        result = _ARITHMETIC[op](a, b)
    except OverflowError:
        result = math.inf
    if isinstance(result, float) and not math.isfinite(result):
        raise Problem("E0406", "a number out of range",
                      label=f"{_show(a)} {op} {_show(b)} does not fit a 64-bit float")
    return bounded(result)


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "//": lambda a, b: a // b, "%": lambda a, b: a % b,
}


def _symbolic_binop(op: str, a: Any, b: Any) -> Any:
    """Sizes are integers: a symbolic one meets only integers, and only in `+ - * // %` (by a
    number) and in comparisons whose answer does not depend on the symbols."""
    if isinstance(a, float) or isinstance(b, float):
        sym, num = (a, b) if isinstance(a, Sym) else (b, a)
        raise Problem("E0405", f"`{op}` between the symbolic size `{format_dim(sym)}` and "
                      f"the float {num!r}", label="a size is a whole number",
                      hint="use `//` to divide a size, e.g. `T // 2` for half of `T`")
    if op in ("<", "<=", ">", ">="):
        diff = a - b
        if isinstance(diff, Sym):
            raise Problem("E0405", f"cannot decide `{op}` between symbolic sizes",
                          label=f"{_show(a)} {op} {_show(b)}")
        return {"<": diff < 0, "<=": diff <= 0, ">": diff > 0, ">=": diff >= 0}[op]
    if op in ("//", "%"):
        if b == 0:
            raise Problem("E0406", "division by zero", label=f"{_show(a)} {op} 0")
        if isinstance(b, Sym) and op == "%":
            raise Problem("E0405", "modulo a symbolic size cannot be decided")
        return a // b if op == "//" else a % b
    if op == "/":
        raise Problem("E0405", "`/` of symbolic sizes", hint="use `//` for sizes")
    if op == "**":
        raise Problem("E0405", "`**` of symbolic sizes")
    if op == "@":
        raise Problem("E0402", "`@` needs two tensors")
    return _ARITHMETIC[op](a, b)


def _power(a: int | float, b: int | float) -> int | float:
    if isinstance(b, int) and isinstance(a, int):
        if b < 0:
            return float(a) ** b if a != 0 else _raise_zero()
        if a not in (0, 1, -1) and b * math.log2(abs(a)) > 64:
            raise Problem("E0406", "an integer too large", label=f"{a} ** {b}")
        return bounded(a**b)
    try:
        result = float(a) ** float(b)
    except OverflowError:
        raise Problem("E0406", "a number out of range", label=f"{a} ** {b}") from None
    except ZeroDivisionError:
        raise Problem("E0406", "zero to a negative power", label=f"{a} ** {b}") from None
    if not isinstance(result, float) or not math.isfinite(result):
        raise Problem("E0406", "`**` has no real result", label=f"{a} ** {b}")
    return result


def _raise_zero() -> Any:
    raise Problem("E0406", "division by zero")


def bounded(v: Any) -> Any:
    if isinstance(v, int) and abs(v) >= MAX_INT:
        raise Problem("E0406", "an integer too large",
                      label=f"{'-' if v < 0 else ''}{abs(v):.3e} is beyond 64-bit integers")
    return v


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, Sym) or isinstance(b, Sym):
        if isinstance(a, (int, Sym)) and isinstance(b, (int, Sym)) and \
                not isinstance(a, bool) and not isinstance(b, bool):
            if a == b:
                return True
            if isinstance(a - b, int):
                return False
            raise Problem("E0405", "cannot decide whether two symbolic sizes are equal",
                          label=f"{_show(a)} vs {_show(b)}")
        return False
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _show(v: Any) -> str:
    return format_dim(v) if isinstance(v, Sym) else repr(v)


PARAM_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def check_param_type(defn: ast.Definition, p: ast.Param, v: Any, loc: Loc | None) -> Any:
    want = PARAM_TYPES.get(p.type)
    if want is None:
        raise Problem("E0402", f"unknown parameter type `{p.type}`", loc=p.type_loc,
                      label="one of int, float, bool, str")
    ok = (isinstance(v, bool) if want is bool else
          (isinstance(v, (int, Sym)) and not isinstance(v, bool)) if want is int else
          (isinstance(v, (int, float)) and not isinstance(v, bool)) if want is float else
          isinstance(v, str))
    if not ok:
        raise Problem("E0402", f"parameter `{p.name}` of `{defn.name}` is "
                      f"{with_article(p.type)}", loc=loc, label=f"got {a_kind(v)}")
    if want is float:
        try:
            v = float(v)
        except OverflowError:
            v = math.inf
        if not math.isfinite(v):
            raise Problem("E0403", f"parameter `{p.name}` of `{defn.name}` must be a finite "
                          "number", loc=loc, label=f"got {v}")
    elif want is int:
        v = bounded(v)
    elif want is str and not _is_unicode(v):
        raise Problem("E0402", f"parameter `{p.name}` of `{defn.name}` is not valid text",
                      loc=loc, label="it holds bytes that are not UTF-8",
                      hint="pass the value as UTF-8 text")
    return v


def _is_unicode(text: str) -> bool:
    """False for the lone surrogates that stand for undecodable bytes (as in `sys.argv`)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def min_max(name: str, args: list[Any], kwargs: dict[str, Any], loc: Loc) -> Any:
    """`min(a, b, ...)` or `max(...)` of numbers; of symbolic sizes only when all are equal."""
    if kwargs or len(args) < 2:
        raise Problem("E0401", f"`{name}` takes two or more numbers", loc=loc)
    for a in args:
        if isinstance(a, bool) or not isinstance(a, (int, float, Sym)):
            raise Problem("E0402", f"`{name}` takes numbers, not {a_kind(a)}", loc=loc)
    if any(isinstance(a, Sym) for a in args):
        if all(a == args[0] for a in args):
            return args[0]
        raise Problem("E0405", f"`{name}` of symbolic sizes cannot be decided", loc=loc)
    return min(args) if name == "min" else max(args)
