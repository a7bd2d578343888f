"""Names a spec may bind. Spec names become Python identifiers in generated code (classes,
constructor arguments, attributes, locals), so the few that Python or the generated code
itself reserve are refused where they are written."""

from __future__ import annotations

import builtins
import keyword

from archdsl.diagnostics import Loc, Problem

_PYTHON_RESERVED = frozenset(keyword.kwlist) | {"self"}

# What generated modules import or define at module level, and their constructors' `**kwargs`:
# a class or a constructor argument by one of these names would shadow it.
_GENERATED = frozenset({"torch", "nn", "F", "math", "np", "numpy", "keras", "tf", "tensorflow",
                        "args", "kwargs", "require_compiled"})
_MODULE_LEVEL = (frozenset(dir(builtins)) | _GENERATED) - _PYTHON_RESERVED


def check_name(name: str, loc: Loc | None, what: str = "name") -> None:
    if name in _PYTHON_RESERVED:
        raise Problem("E0205", f"`{name}` cannot be used as a {what}", loc=loc,
                      label="it is reserved in the generated Python code",
                      hint=f"rename it, e.g. `{name}_`")
    if name.startswith("__"):
        raise Problem("E0205", f"`{name}` cannot be used as a {what}", loc=loc,
                      label="names starting with `__` are reserved",
                      hint=f"rename it, e.g. `{name.lstrip('_') or 'x'}`")


def check_class_name(name: str, loc: Loc | None, what: str) -> None:
    """Definition and parameter names become class names and constructor arguments, where a
    Python builtin or a name of the generated module would be shadowed for the whole class."""
    check_name(name, loc, what)
    if name in _MODULE_LEVEL:
        raise Problem("E0205", f"`{name}` cannot be used as a {what}", loc=loc,
                      label="a Python builtin or a name the generated code uses",
                      hint=f"rename it, e.g. `{name}_`")
