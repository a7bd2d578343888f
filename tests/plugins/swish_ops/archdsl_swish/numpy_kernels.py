"""The ops' NumPy forward and backward passes, side by side (archdsl's kernel contract:
backends/numpy/kernels/base.py)."""

from archdsl.backends.numpy.kernels.base import Kernel, sigmoid


def _swish_forward(args, params, xs, ctx):
    (x,) = xs
    s = sigmoid(args["beta"] * x)
    return x * s, (x, s, args["beta"])


def _swish_backward(dy, cache):
    x, s, beta = cache
    return [dy * (s + beta * x * s * (1 - s))], {}


def _scale_forward(args, params, xs, ctx):
    (x,) = xs
    return x * params["weight"], (x, params["weight"])


def _scale_backward(dy, cache):
    x, w = cache
    return [dy * w], {"weight": (dy * x).reshape(-1, w.shape[0]).sum(axis=0)}


SWISH = Kernel(_swish_forward, _swish_backward)
SCALE = Kernel(_scale_forward, _scale_backward)
