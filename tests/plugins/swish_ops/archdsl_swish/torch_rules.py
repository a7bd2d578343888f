"""How the ops are written in a generated PyTorch module. A rule gets the op's site
(`site.x`: the input as code, `site.arg(name)`: an argument as the spec wrote it,
`site.module`: the layer's attribute) and returns code, built with `call` and `binop` so
that brackets come out right."""

from archdsl.backends.core.pycode import Call, binop, call

# Copied into every generated module that uses `Scale`, which stays standalone.
HELPERS = '''
class Scale(nn.Module):
    """x * weight over the last dimension (the archdsl_swish plugin)."""

    def __init__(self, dim: int, init: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight
'''


def swish(site):
    beta = site.args["beta"]
    inner = site.x if beta == 1.0 else binop("*", site.arg("beta"), site.x)
    return binop("*", site.x, call("torch.sigmoid", inner))


def scale_module(site):
    init = [] if site.args["init"] == 1.0 else [f"init={site.arg('init')}"]
    return call("Scale", site.arg("dim"), *init)


def call_module(site):
    return Call(site.module, tuple(site.xs))
