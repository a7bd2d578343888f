"""Swish as ONNX nodes: Mul(x, Sigmoid(beta * x)) (backends/onnx/lowering.py's contract)."""


def swish(site):
    inner = site.x
    if site.args["beta"] != 1.0:
        inner = site.op("Mul", site.x, site.scalar(site.args["beta"], site.ins[0].dtype),
                        hint="beta_x")
    return site.op("Mul", site.x, site.op("Sigmoid", inner, hint="gate"))
