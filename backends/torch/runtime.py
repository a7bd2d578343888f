"""Build a model from its generated source, and move its weights in and out as NumPy arrays.

`build` executes exactly the text `generate` returns, so what a user reads is what runs; its
hooks only count and supply `randn_like`'s draws under `archdsl.noise`.
torch is imported inside the functions: importing the backend does not import it.
"""

from __future__ import annotations

import contextlib
import linecache
import types
from functools import cache
from typing import TYPE_CHECKING, Any

from archdsl import draws
from archdsl.graph import GanGraph, Graph

from .generator import render

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn


def build(graph: Graph | GanGraph, device: str | torch.device | None = None) -> nn.Module:
    """The model as an nn.Module, constructed on `device` (`"meta"` allocates nothing)."""
    import torch

    source, name = render(graph)
    module = types.ModuleType(f"archdsl_generated.{graph.name}")
    filename = f"<archdsl {graph.name}>"
    # Tracebacks and debuggers show the generated lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        model = getattr(module, name)()
    if "torch.randn_like(" in source:
        models = [model.generator, model.discriminator] if isinstance(graph, GanGraph) \
            else [model]
        for m in models:
            m.register_forward_pre_hook(_noise_on)
            m.register_forward_hook(_noise_off, always_call=True)
    return model


# archdsl.noise(draws): during a forward pass under the context, torch.randn_like returns the
# draws (a torch function mode, pushed by a pre-hook and popped after the pass, even a failed
# one); outside it the model runs untouched. The generated code stays plain torch.randn_like.
_MODES: list[Any] = []


def _noise_on(module: nn.Module, args: Any) -> None:
    draws.begin()
    mode = _draws_mode()() if draws.active() else None
    if mode is not None:
        mode.__enter__()
    _MODES.append(mode)


def _noise_off(module: nn.Module, args: Any, output: Any) -> None:
    mode = _MODES.pop()
    if mode is not None:
        mode.__exit__(None, None, None)


@cache
def _draws_mode() -> type:
    import torch
    from torch.overrides import TorchFunctionMode

    class Draws(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            if func is torch.randn_like:
                x = args[0]
                drawn = draws.draw(tuple(x.shape))
                return torch.as_tensor(drawn, device=x.device).to(x.dtype)
            return func(*args, **(kwargs or {}))

    return Draws


def state_dict(model: nn.Module) -> dict[str, np.ndarray]:
    """Every parameter and buffer (BatchNorm's `num_batches_tracked` too) as a NumPy array."""
    out = {}
    for key, value in model.state_dict().items():
        if value.is_meta:
            raise ValueError(f"`{key}` is on the meta device and has no values to export")
        out[key] = array(value)
    return out


def array(value: torch.Tensor) -> np.ndarray:
    """A tensor's values as a NumPy array of their own (bfloat16 widened to float32)."""
    import torch

    t = value.detach().cpu()
    # a copy: `.numpy()` alone shares memory, and later training would change the export
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy().copy()


def load_state_dict(model: nn.Module, state: dict[str, Any]) -> None:
    """Load `{key: array}` after checking that names and shapes match the model exactly.

    A model built on the meta device receives the arrays as its tensors.
    """
    import numpy as np
    import torch

    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s): {', '.join(unexpected)}")
    for key, value in state.items():
        if key in own:
            shape = tuple(np.shape(value))
            if shape != tuple(own[key].shape):
                problems.append(f"`{key}` has shape {shape}, the model expects "
                                f"{tuple(own[key].shape)}")
    if problems:
        raise ValueError(f"cannot load these weights into {type(model).__name__}: "
                         + "; ".join(problems))
    tensors = {k: torch.as_tensor(np.asarray(state[k])).to(own[k].dtype) for k in own}
    meta = any(t.is_meta for t in own.values())
    model.load_state_dict(tensors, strict=True, assign=meta)
    if meta:  # tables that are not saved (PositionalEncoding) are computed anew
        for module in model.modules():
            reset = getattr(module, "reset_buffers", None)
            if callable(reset) and any(b.is_meta for b in module.buffers(recurse=False)):
                reset()
