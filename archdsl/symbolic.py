"""Symbolic dimensions: integer polynomials over named symbols and floor divisions.

A dimension is a plain `int` when it is known and a `Sym` otherwise. `Sym` overloads the
integer operators, so one shape rule serves both: `(h + 2 * p - k) // s + 1` is an `int` for
`h = 28` and a `Sym` for `h = Sym.symbol("H")`. Results are kept in a canonical form (sorted
terms, constants folded into `int`), so two dimensions are equal exactly when their forms are.

Every `Sym` stays small enough to compare, hash and print at once: at most `MAX_TERMS` terms of
degree at most `MAX_DEGREE`, coefficients below `MAX_COEFFICIENT` in magnitude and floor
divisions nested at most `MAX_NESTING` deep. An operation whose result would exceed one raises
`SymbolicLimit` (docs/limits.md); no real shape comes near these bounds.
"""

from __future__ import annotations

import re
from functools import total_ordering
from typing import Union

Dim = Union[int, "Sym"]

# An atom is ("sym", name) or ("fdiv", Sym, divisor); a monomial is a sorted tuple of atoms.
Atom = tuple
Monomial = tuple[Atom, ...]

MAX_TERMS = 256
MAX_DEGREE = 16
MAX_COEFFICIENT = 2**128
MAX_NESTING = 32


def _atom_key(atom: Atom) -> str:
    return atom[1] if atom[0] == "sym" else f"~({atom[1]})//{atom[2]}"


@total_ordering
class Sym:
    """An integer expression over symbols; build with `Sym.symbol` and arithmetic."""

    __slots__ = ("terms", "_hash", "nesting")

    def __init__(self, terms: dict[Monomial, int]):
        self.terms: tuple[tuple[Monomial, int], ...] = tuple(
            sorted(((m, c) for m, c in terms.items() if c != 0), key=lambda t: _mono_key(t[0]))
        )
        self._hash = hash(self.terms)
        # floor divisions nested inside this expression (0 for a polynomial of symbols)
        self.nesting: int = max((a[1].nesting + 1 for m, _ in self.terms for a in m
                                 if a[0] == "fdiv"), default=0)

    @staticmethod
    def symbol(name: str) -> Sym:
        return Sym({((("sym", name),)): 1})

    # -- construction helpers -------------------------------------------------------------
    @staticmethod
    def _terms_of(x: Dim) -> dict[Monomial, int]:
        if isinstance(x, Sym):
            return dict(x.terms)
        return {(): int(x)} if x else {}

    @staticmethod
    def _make(terms: dict[Monomial, int]) -> Dim:
        terms = {m: c for m, c in terms.items() if c != 0}
        if not terms:
            return 0
        if list(terms) == [()]:
            return terms[()]
        _check_bounds(terms)
        return Sym(terms)

    # -- arithmetic ---------------------------------------------------------------------
    def __add__(self, other: Dim) -> Dim:
        if not isinstance(other, (int, Sym)) or isinstance(other, bool):
            return NotImplemented
        terms = self._terms_of(self)
        for m, c in self._terms_of(other).items():
            terms[m] = terms.get(m, 0) + c
        return self._make(terms)

    __radd__ = __add__

    def __neg__(self) -> Dim:
        return self._make({m: -c for m, c in self.terms})

    def __sub__(self, other: Dim) -> Dim:
        if not isinstance(other, (int, Sym)) or isinstance(other, bool):
            return NotImplemented
        return self + (-other)

    def __rsub__(self, other: Dim) -> Dim:
        return (-self) + other

    def __mul__(self, other: Dim) -> Dim:
        if not isinstance(other, (int, Sym)) or isinstance(other, bool):
            return NotImplemented
        out: dict[Monomial, int] = {}
        for m1, c1 in self._terms_of(self).items():
            for m2, c2 in self._terms_of(other).items():
                m = tuple(sorted(m1 + m2, key=_atom_key))
                out[m] = out.get(m, 0) + c1 * c2
        return self._make(out)

    __rmul__ = __mul__

    def __floordiv__(self, n: Dim) -> Dim:
        if isinstance(n, Sym):
            q = exact_div(self, n)
            if q is None:
                raise SymbolicError(f"cannot divide {self} by the symbolic {n}")
            return q
        return floordiv(self, n)

    def __rfloordiv__(self, other: Dim) -> Dim:
        q = exact_div(other, self)
        if q is None:
            raise SymbolicError(f"cannot divide {other} by the symbolic {self}")
        return q

    def __mod__(self, n: Dim) -> Dim:
        if isinstance(n, Sym):
            raise SymbolicError(f"cannot take {self} modulo the symbolic {n}")
        return self - n * floordiv(self, n)

    def __rmod__(self, other: Dim) -> Dim:
        raise SymbolicError(f"cannot take {other} modulo the symbolic {self}")

    # -- comparison ---------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sym):
            return self.terms == other.terms
        return False  # a canonical Sym is never a constant

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: Dim) -> bool:
        return str(self) < str(other)

    def __bool__(self) -> bool:
        return True

    def symbols(self) -> set[str]:
        out: set[str] = set()
        for m, _ in self.terms:
            for atom in m:
                if atom[0] == "sym":
                    out.add(atom[1])
                else:
                    out |= atom[1].symbols()
        return out

    def substitute(self, values: dict[str, Dim]) -> Dim:
        total: Dim = 0
        for m, c in self.terms:
            term: Dim = c
            for atom in m:
                if atom[0] == "sym":
                    term = term * values.get(atom[1], Sym.symbol(atom[1]))
                else:
                    inner = atom[1].substitute(values)
                    term = term * (inner // atom[2])
            total = total + term
        return total

    def __str__(self) -> str:
        return format_dim(self)

    def __repr__(self) -> str:
        return f"Sym({format_dim(self)!r})"


class SymbolicError(ValueError):
    """An operation that has no exact symbolic result."""


class SymbolicLimit(SymbolicError):
    """A symbolic size beyond the bounds of the module docstring."""


def _check_bounds(terms: dict[Monomial, int]) -> None:
    if len(terms) > MAX_TERMS:
        raise SymbolicLimit(f"a symbolic size with more than {MAX_TERMS} terms")
    for m, c in terms.items():
        if len(m) > MAX_DEGREE:
            raise SymbolicLimit(f"a symbolic size of degree more than {MAX_DEGREE}")
        if abs(c) >= MAX_COEFFICIENT:
            raise SymbolicLimit("a symbolic size with a coefficient of 2**128 or more")


def _mono_key(m: Monomial) -> tuple:
    return (-len(m), [_atom_key(a) for a in m])


def floordiv(x: Dim, n: int) -> Dim:
    """`x // n` for a positive integer `n`, pulling exact multiples out of the division."""
    if n <= 0:
        raise SymbolicError(f"division by {n}")
    if isinstance(x, int):
        return x // n
    outside: dict[Monomial, int] = {}
    inside: dict[Monomial, int] = {}
    for m, c in x.terms:
        q, r = divmod(c, n)
        if q:
            outside[m] = q
        if r:
            inside[m] = r
    rest = Sym._make(inside)
    if isinstance(rest, int):
        out = Sym._make(outside)
        return out + rest // n
    if n == 1:
        return x
    if rest.nesting >= MAX_NESTING:
        raise SymbolicLimit(f"floor divisions nested more than {MAX_NESTING} deep")
    outside[(("fdiv", rest, n),)] = outside.get((("fdiv", rest, n),), 0) + 1
    return Sym._make(outside)


def exact_div(x: Dim, y: Dim) -> Dim | None:
    """`x / y` when it divides exactly (as polynomials), else None."""
    if isinstance(y, int):
        if y == 0:
            return None
        if isinstance(x, int):
            return x // y if x % y == 0 else None
        if all(c % y == 0 for _, c in x.terms):
            return Sym._make({m: c // y for m, c in x.terms})
        return None
    if len(y.terms) != 1:
        return 1 if x == y else None
    (ym, yc), = y.terms
    out: dict[Monomial, int] = {}
    for m, c in Sym._terms_of(x).items():
        rest = list(m)
        for atom in ym:
            if atom not in rest:
                return None
            rest.remove(atom)
        if c % yc:
            return None
        out[tuple(rest)] = c // yc
    return Sym._make(out)


def is_known(d: Dim) -> bool:
    return isinstance(d, int)


def format_dim(d: Dim) -> str:
    if isinstance(d, int):
        return str(d)
    parts: list[str] = []
    for m, c in d.terms:
        factors = [_fmt_atom(a, len(m) > 1 or abs(c) != 1) for a in m]
        body = "*".join(factors)
        mag = abs(c)
        if not m:
            text = str(mag)
        elif mag == 1:
            text = body
        else:
            text = f"{mag}*{body}"
        if not parts:
            parts.append(text if c > 0 else f"-{text}")
        else:
            parts.append(f"+ {text}" if c > 0 else f"- {text}")
    return " ".join(parts)


def _fmt_atom(a: Atom, in_product: bool) -> str:
    if a[0] == "sym":
        return a[1]
    inner = format_dim(a[1])
    inner = f"({inner})" if not _is_simple(a[1]) else inner
    text = f"{inner}//{a[2]}"
    return f"({text})" if in_product else text


def symbol_name(d: Dim) -> str | None:
    """The name if `d` is a bare symbol (`T`), else None."""
    if isinstance(d, Sym) and len(d.terms) == 1:
        mono, coeff = d.terms[0]
        if coeff == 1 and len(mono) == 1 and mono[0][0] == "sym":
            return mono[0][1]
    return None


def _is_simple(d: Dim) -> bool:
    return isinstance(d, int) or symbol_name(d) is not None


def format_shape(shape: list[Dim] | tuple[Dim, ...]) -> str:
    return "[" + ", ".join(format_dim(d) for d in shape) + "]"


_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(//|[-+*()]))")


def parse_dim(text: str) -> Dim:
    """Parse the output of `format_dim` back (used by the JSON form of the graph)."""
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"bad dimension expression {text!r}")
        tokens.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
    toks = iter(tokens + [""])
    cur = [next(toks)]

    def take() -> str:
        t = cur[0]
        cur[0] = next(toks)
        return t

    def expr() -> Dim:
        val = term()
        while cur[0] in ("+", "-"):
            op = take()
            rhs = term()
            val = val + rhs if op == "+" else val - rhs
        return val

    def term() -> Dim:
        val = unary()
        while cur[0] in ("*", "//"):
            op = take()
            rhs = unary()
            if op == "*":
                val = val * rhs
            else:
                if not isinstance(rhs, int):
                    raise ValueError(f"bad dimension expression {text!r}")
                val = floordiv(val, rhs)
        return val

    def unary() -> Dim:
        if cur[0] == "-":
            take()
            return -unary()
        t = take()
        if t == "(":
            v = expr()
            if take() != ")":
                raise ValueError(f"bad dimension expression {text!r}")
            return v
        if t.isdigit():
            return int(t)
        if t and (t[0].isalpha() or t[0] == "_"):
            return Sym.symbol(t)
        raise ValueError(f"bad dimension expression {text!r}")

    out = expr()
    if cur[0] != "":
        raise ValueError(f"bad dimension expression {text!r}")
    return out


def evaluate(d: Dim, values: dict[str, int]) -> int:
    """The integer value of `d` once every symbol in it has a value."""
    if isinstance(d, int):
        return d
    out = d.substitute(values)
    if not isinstance(out, int):
        raise KeyError(sorted(out.symbols()))
    return out


def resolve_dims(v: object, values: dict[str, int]) -> object:
    """`v` (an op's arguments: nested dicts, lists and tuples) with every `Sym` evaluated."""
    if isinstance(v, Sym):
        return evaluate(v, values)
    if isinstance(v, dict):
        return {k: resolve_dims(x, values) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(resolve_dims(x, values) for x in v)
    return v


def ceildiv(x: Dim, n: int) -> Dim:
    return floordiv(x + (n - 1), n)
