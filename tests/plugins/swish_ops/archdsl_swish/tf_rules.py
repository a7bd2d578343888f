"""Swish in a generated Keras module: an elementwise op over the input `X[0]`, in whichever
layout it comes (archdsl/backends/tensorflow/target.py's contract)."""

from archdsl.backends.core.pycode import binop, call
from archdsl.backends.tensorflow.steps import X
from archdsl.backends.tensorflow.target import elementwise


def swish(site):
    beta = site.args["beta"]
    inner = X[0] if beta == 1.0 else binop("*", site.arg("beta"), X[0])
    return elementwise(site, binop("*", X[0], call("keras.ops.sigmoid", inner)))
