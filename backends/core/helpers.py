"""Code a generated module carries: the classes and functions of a target's helper file
that the module uses, copied as source (the file is read, never imported), so the module
imports nothing but its framework and the standard library."""

from __future__ import annotations

import ast
import re
from functools import cache
from importlib import resources


@cache
def sources(package: str, filename: str) -> dict[str, str]:
    """Top-level classes and functions of `package/filename` (with their decorators), by
    name, in file order."""
    return definitions(resources.files(package).joinpath(filename).read_text(encoding="utf-8"))


def definitions(text: str) -> dict[str, str]:
    """Top-level classes and functions of Python source `text` (with their decorators), by
    name, in order."""
    lines = text.splitlines()
    return {n.name: "\n".join(lines[min([n.lineno, *(d.lineno for d in n.decorator_list)]) - 1:
                                     n.end_lineno])
            for n in ast.parse(text).body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}


def needed(code: str, package: str, filename: str, extra: dict[str, str] | None = None
           ) -> list[str]:
    """The helpers `code` uses, with the ones they use, in file order (`extra`, from
    plugins, after the file's)."""
    available = {**sources(package, filename), **(extra or {})}
    found: set[str] = set()
    todo = [code]
    while todo:
        text = todo.pop()
        for name, source in available.items():
            if name not in found and re.search(rf"\b{re.escape(name)}\b", text):
                found.add(name)
                todo.append(source)
    return [available[n] for n in available if n in found]
