"""Broadcasting `+ - * /` and comparisons (tensor-tensor or with a scalar), unary minus, `**`
by a number and torch.matmul."""

from __future__ import annotations

import numpy as np

from .base import Kernel, matmul_rows, unbroadcast

# op -> (forward, (dL/da, dL/db) from (dy, a, b))
_BINARY = {
    "add": (np.add, lambda dy, x, y: (dy, dy)),
    "sub": (np.subtract, lambda dy, x, y: (dy, -dy)),
    "mul": (np.multiply, lambda dy, x, y: (dy * y, dy * x)),
    "div": (np.true_divide, lambda dy, x, y: (dy / y, -dy * x / (y * y))),
    **{op: (f, lambda dy, x, y: (None, None)) for op, f in (
        ("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
        ("gt", np.greater), ("ge", np.greater_equal))},
}


def _grad_of(x) -> bool:
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


def _binary(op: str) -> Kernel:
    f, df = _BINARY[op]

    def forward(a, p, xs, ctx):
        if len(xs) == 2:
            (x, y), slots = xs, (0, 1)
        elif a["scalar_first"]:
            (x, y), slots = (a["scalar"], xs[0]), (1,)
        else:
            (x, y), slots = (xs[0], a["scalar"]), (0,)
        return f(x, y), (x, y, slots)

    def backward(dy, cache):
        x, y, slots = cache
        grads = [unbroadcast(g, v.shape) if g is not None and _grad_of(v) else None
                 for g, v in zip(df(dy, x, y), (x, y), strict=True)]
        return [grads[i] for i in slots], {}

    return Kernel(forward, backward)


def _rows(x: np.ndarray, y: np.ndarray) -> bool:
    """(..., n, k) @ (k, m): one product on x's rows (`matmul_rows`)."""
    return x.ndim > 2 and y.ndim == 2


def _matmul_fwd(a, p, xs, ctx):
    x, y = xs
    return (matmul_rows(x, y) if _rows(x, y) else x @ y), (x, y)


def _matmul_back(dy, cache):
    """Promote 1-d operands as torch.matmul does, then sum out broadcast batch dims."""
    x, y = cache
    if _rows(x, y):
        return [matmul_rows(dy, y.T), x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, y.shape[1])
                ], {}
    x2 = x[None] if x.ndim == 1 else x
    y2 = y[:, None] if y.ndim == 1 else y
    dy = dy.reshape(np.broadcast_shapes(x2.shape[:-2], y2.shape[:-2]) + (x2.shape[-2],
                                                                          y2.shape[-1]))
    dx = unbroadcast(dy @ y2.swapaxes(-1, -2), x2.shape).reshape(x.shape)
    dyy = unbroadcast(x2.swapaxes(-1, -2) @ dy, y2.shape).reshape(y.shape)
    return [dx, dyy], {}


def _pow_fwd(a, p, xs, ctx):
    (x,) = xs
    return np.power(x, a["exponent"]), (x, a["exponent"])


def _pow_back(dy, cache):
    """torch.pow's gradient p * x^(p-1), zero for the exponent 0 (even at x = 0)."""
    x, e = cache
    if e == 0:
        return [np.zeros_like(dy)], {}
    with np.errstate(divide="ignore"):  # x^(p-1) at 0 for p < 1 is inf, as in PyTorch
        return [dy * (e * np.power(x, e - 1))], {}


KERNELS: dict[str, Kernel] = {
    **{op: _binary(op) for op in _BINARY},
    "pow": Kernel(_pow_fwd, _pow_back),
    "neg": Kernel(lambda a, p, xs, ctx: (-xs[0], None), lambda dy, c: ([-dy], {})),
    "matmul": Kernel(_matmul_fwd, _matmul_back),
}
