"""What the emitter asks of a definition's syntax tree: the names its statements read, where
loops are, and the values of expressions in one elaborated instance."""

from __future__ import annotations

from typing import Any

from archdsl import syntax as ast
from archdsl.expr import E, Traced, evaluate
from archdsl.staging import InstanceLog

from .values import Loop


def given_args(decls: Any, values: list[E], kwargs: dict[str, E]) -> dict[str, E]:
    """Positional `values` named by the declared arguments, then the keywords."""
    names = [a.name for a in decls]
    return {**dict(zip(names, values, strict=False)), **kwargs}


def value_in(e: E, log: InstanceLog, loops: list[Loop]) -> Any:
    """`e`'s value in one instance, or None where it reads a name the instance does not
    hold (a local of the spec)."""
    env = {k: (int(v) if isinstance(v, Traced) else v) for k, v in log.params.items()}
    env.update({lp.var: lp.value for lp in loops})
    try:
        return evaluate(e, env)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


def has_loop(body: tuple[ast.Node, ...]) -> bool:
    return any(isinstance(s, ast.For) for s in body)


def fail_message(defn: ast.Definition, e: ast.IfElse) -> str:
    where = f"{e.loc.file}:{e.loc.line}" if e.loc else defn.name
    return (f"{defn.name} was generated without this branch ({where}): no elaboration could "
            "build it; recompile the spec with values that take it")


def read_later(body: tuple[ast.Node, ...], after: set[str]) -> dict[int, set[str]]:
    """For each statement, the names some later statement reads (in a loop, the whole body
    counts as later: the next iteration reads it)."""
    out: dict[int, set[str]] = {}
    acc = set(after)
    for stmt in reversed(body):
        if isinstance(stmt, ast.For):
            inner = acc | reads(stmt)
            out.update(read_later(stmt.body, inner))
            acc |= inner
        out[id(stmt)] = set(acc)
        acc |= reads(stmt)
    return out


def reads(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            found.add(n.id)
        elif isinstance(n, ast.Node):
            for attr in getattr(n, "__slots__", ()):
                child = getattr(n, attr, None)
                if isinstance(child, ast.Node):
                    stack.append(child)
                elif isinstance(child, tuple):
                    stack.extend(c for c in child if isinstance(c, ast.Node))
    return found
