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


# What a torch.nn.Module (or the NumPy backend's Module) already has: a submodule by one of
# these names would shadow it.
MODULE_ATTRIBUTES = frozenset("""
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda
    double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
    get_submodule half ipu load_state_dict modules mtia named_buffers named_children
    named_modules named_parameters parameters register_backward_hook register_buffer
    register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
""".split()) | {
    # and what the NumPy backend's nn.Module adds (backends/numpy/nn.py)
    "archdsl_backend", "backward", "dtype", "expect_inputs", "grads", "perturb", "rng",
}


def attribute_ok(name: str) -> bool:
    """Whether generated code can keep a layer as an attribute of this name."""
    return name.isidentifier() and not keyword.iskeyword(name) and \
        not keyword.issoftkeyword(name) and name not in MODULE_ATTRIBUTES and \
        not name.startswith("_")


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
