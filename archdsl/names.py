"""Names a spec may bind. Spec names become Python identifiers in generated code (classes,
constructor arguments, attributes, locals), so the few that Python or the generated code
itself reserve are refused where they are written."""

from __future__ import annotations

import keyword

from archdsl.diagnostics import Loc, Problem

_PYTHON_RESERVED = frozenset(keyword.kwlist) | {"self"}


def check_name(name: str, loc: Loc | None, what: str = "name") -> None:
    if name in _PYTHON_RESERVED:
        raise Problem("E0205", f"`{name}` cannot be used as a {what}", loc=loc,
                      label="it is reserved in the generated Python code",
                      hint=f"rename it, e.g. `{name}_`")
    if name.startswith("__"):
        raise Problem("E0205", f"`{name}` cannot be used as a {what}", loc=loc,
                      label="names starting with `__` are reserved",
                      hint=f"rename it, e.g. `{name.lstrip('_') or 'x'}`")
