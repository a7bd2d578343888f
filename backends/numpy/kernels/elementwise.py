"""Elementwise functions of LANGUAGE.md 10.2: `exp log sqrt rsqrt abs`, `clamp`, `maximum`,
`minimum`, `where`, `masked_fill` and the tensors made like another (`zeros_like`,
`ones_like`, `randn_like`). Gradients are PyTorch's, including at ties and bounds."""

from __future__ import annotations

import numpy as np

from .base import Ctx, Kernel, unbroadcast


def _floating(x) -> bool:
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


def promoted(*operands) -> np.dtype:
    """torch.result_type of arrays and Python numbers: the highest kind among them wins
    (bool < integer < floating) and an array's dtype beats a number's, so a float32 tensor
    with an int64 one stays float32 where NumPy would widen it to float64."""
    arrays = [x.dtype for x in operands if isinstance(x, np.ndarray)]
    numbers = [x for x in operands if not isinstance(x, np.ndarray)]
    for kind, default in (("f", np.float32), ("iu", np.int64)):
        of_kind = [d for d in arrays if d.kind in kind]
        if of_kind:
            return np.result_type(*of_kind)
        wanted = float if kind == "f" else int
        if any(isinstance(n, wanted) and not isinstance(n, bool) for n in numbers):
            return np.dtype(default)
    return np.dtype(bool)


def _unary(f, df) -> Kernel:
    """y = f(x) with dL/dx = dy * df(x, y)."""
    def forward(a, p, xs, ctx):
        (x,) = xs
        y = f(x)
        return y, (x, y)

    return Kernel(forward, lambda dy, c: ([dy * df(*c)], {}))


def _clamp_fwd(a, p, xs, ctx):
    (x,) = xs
    lo, hi = a["min"], a["max"]
    y = np.clip(x, lo, hi).astype(promoted(x, *(b for b in (lo, hi) if b is not None)))
    return y, (x, lo, hi)


def _clamp_back(dy, cache):
    """PyTorch passes the gradient where lo <= x <= hi, bounds included."""
    x, lo, hi = cache
    if not _floating(x):
        return [None], {}
    inside = np.ones(x.shape, bool)
    if lo is not None:
        inside &= x >= lo
    if hi is not None:
        inside &= x <= hi
    return [dy * inside], {}


def _extremum(pick, wins) -> Kernel:
    """torch.maximum / torch.minimum: a tie gives each side half the gradient."""
    def forward(a, p, xs, ctx):
        x, y = xs
        dtype = promoted(x, y)
        return pick(x.astype(dtype, copy=False), y.astype(dtype, copy=False)), (x, y)

    def backward(dy, cache):
        x, y = cache
        share = np.where(x == y, 0.5, wins(x, y)).astype(dy.dtype)
        return [unbroadcast(dy * share, x.shape) if _floating(x) else None,
                unbroadcast(dy * (1 - share), y.shape) if _floating(y) else None], {}

    return Kernel(forward, backward)


def _where_fwd(a, p, xs, ctx):
    """Inputs: the condition, then `a` and `b` where they are tensors (a number is in args)."""
    cond, *tensors = xs
    it = iter(tensors)
    ab = [next(it) if a[k] is None else a[k] for k in ("a", "b")]
    tensors_given = any(isinstance(v, np.ndarray) for v in ab)
    dtype = promoted(*ab) if tensors_given else np.dtype(np.float32)  # LANGUAGE.md 10.2
    y = np.where(cond, *(np.asarray(v, dtype) if not isinstance(v, np.ndarray) else
                         v.astype(dtype, copy=False) for v in ab))
    return y, (cond, ab)


def _where_back(dy, cache):
    cond, ab = cache
    grads: list[np.ndarray | None] = [None]
    for v, side in zip(ab, (cond, ~cond), strict=True):
        if isinstance(v, np.ndarray):
            grads.append(unbroadcast(dy * side, v.shape) if _floating(v) else None)
    return grads, {}


def _masked_fill_fwd(a, p, xs, ctx):
    x, mask = xs  # mask broadcasts to x's shape
    return np.where(mask, np.asarray(a["value"]).astype(x.dtype), x), (mask, _floating(x))


def _masked_fill_back(dy, cache):
    mask, floating = cache
    return [np.where(mask, 0, dy).astype(dy.dtype) if floating else None, None], {}


def _like(value: float) -> Kernel:
    return Kernel(lambda a, p, xs, ctx: (np.full_like(xs[0], value), None),
                  lambda dy, cache: ([None], {}))


def normal_like(x: np.ndarray, ctx: Ctx) -> np.ndarray:
    """Standard normal noise of x's shape and dtype: `ctx.noise` while `archdsl.noise` is
    active, otherwise fresh draws from the context's generator."""
    if ctx.noise is not None:
        return np.asarray(ctx.noise(x.shape)).astype(x.dtype)
    if x.dtype in (np.float32, np.float64):
        return ctx.rng.standard_normal(x.shape, dtype=x.dtype)
    return ctx.rng.standard_normal(x.shape).astype(x.dtype)


def _rsqrt(x):
    with np.errstate(divide="ignore"):  # rsqrt(0) is inf, as in PyTorch
        return 1 / np.sqrt(x)


def _sqrt_grad(x, y):
    with np.errstate(divide="ignore"):  # sqrt'(0) is inf, as in PyTorch
        return 0.5 / y


def _log_grad(x, y):
    with np.errstate(divide="ignore"):
        return 1 / x


KERNELS: dict[str, Kernel] = {
    "exp": _unary(np.exp, lambda x, y: y),
    "log": _unary(np.log, _log_grad),
    "sqrt": _unary(np.sqrt, _sqrt_grad),
    "rsqrt": _unary(_rsqrt, lambda x, y: -0.5 * y * y * y),
    "abs": _unary(np.abs, lambda x, y: np.sign(x)),
    "clamp": Kernel(_clamp_fwd, _clamp_back),
    "maximum": _extremum(np.maximum, np.greater),
    "minimum": _extremum(np.minimum, np.less),
    "where": Kernel(_where_fwd, _where_back),
    "masked_fill": Kernel(_masked_fill_fwd, _masked_fill_back),
    "zeros_like": _like(0),
    "ones_like": _like(1),
    "randn_like": Kernel(lambda a, p, xs, ctx: (normal_like(xs[0], ctx), None),
                         lambda dy, cache: ([None], {})),
}
