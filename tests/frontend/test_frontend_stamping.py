"""Block calls stamped out from a first elaboration (`archdsl.elaborate.calls`) make the very
graph, and the very diagnostics, that elaborating every call does."""

from __future__ import annotations

import pytest

import archdsl
from archdsl.diagnostics import SpecError
from archdsl.elaborate import calls
from archdsl.limits import Limits

RESIDUAL = """
block Residual(d: int, p: float = 0.1) {
    input x: [B, T, d]
    h = x |> LayerNorm |> Linear(2 * d) |> GELU |> Dropout(p) |> Linear(d)
    output y = x + h
}
"""
SPLIT = """
block Halves(d: int) {
    input x: [B, d]
    a, b = chunk(x |> Linear(2 * d), 2, dim=1)
    output lo = a
    output hi = b |> ReLU
}
"""
PAIR = """
block Pair(d: int) {
    input a: [B, d]
    input b: [B, d]
    output y = (a |> Linear(d)) + b
}
"""
PASS = """
block Pass(d: int) {
    input x: [B, d]
    w = Parameter([d])
    output y = x
    output z = x * w
}
"""
NESTED = RESIDUAL + """
block Stage(d: int) {
    input x: [B, T, d]
    output y = x |> Residual(d) |> Residual(d) |> Residual(d, p=0.2)
}
"""

SPECS = {
    "chain": RESIDUAL + """model M {
    input x: [B, T, 8]
    x = x |> Residual(8)
    x = x |> Residual(8)
    h = x |> Linear(16)
    h = h |> Residual(16) |> Residual(16)
    x = x |> Residual(8, p=0.3) |> Residual(8)
    output y = x
    output z = h
}""",
    "loops and nesting": NESTED + """model M {
    input x: [B, T, 4]
    for i in range(3) {
        x = x |> Stage(4)
    }
    shared = Stage(4)
    x = x |> shared
    x = x |> shared
    output y = x |> Stage(4)
}""",
    "several outputs": SPLIT + """model M {
    input x: [B, 6]
    a, b = x |> Halves(6)
    c, d = x |> Halves(6)
    e, f = b |> Halves(6)
    output y = a + c + e
    output z = f
}""",
    "aliased inputs": PAIR + """model M {
    input x: [B, 5]
    input u: [B, 5]
    y1 = Pair(5)(x, x)
    y2 = Pair(5)(x, u)
    y3 = Pair(5)(u, u)
    y4 = Pair(5)(u, x)
    output y = y1 + y2 + y3 + y4
}""",
    "outputs that are inputs": PASS + """model M {
    input x: [B, 3]
    a, b = x |> Pass(3)
    c, d = a |> Pass(3)
    e, f = c |> Pass(3)
    output y = b + d + f + e
}""",
}
ERRORS = {
    "a name taken by a later call": RESIDUAL + """model M {
    input x: [B, T, 8]
    residual2 = Linear(8)
    x = x |> Residual(8)
    x = x |> residual2
    x = x |> Residual(8)
    output y = x
}""",
    "a bad call after good ones": RESIDUAL + """model M {
    input x: [B, T, 8]
    x = x |> Residual(8) |> Residual(8) |> Residual(4) |> Residual(8)
    output y = x
}""",
}


def _graph(text: str, stamp: bool, monkeypatch, **kw):
    with monkeypatch.context() as m:
        if not stamp:
            m.setattr(calls, "call_key", lambda *a: None)
        return archdsl.load(text, **kw).graph(None, None)


def _stamped(monkeypatch) -> list[int]:
    """Counts the calls stamped from then on."""
    count = [0]
    stamp = calls.RecordedCall.stamp

    def counting(self, *a, **kw):
        out = stamp(self, *a, **kw)
        count[0] += out is not None
        return out

    monkeypatch.setattr(calls.RecordedCall, "stamp", counting)
    return count


@pytest.mark.parametrize("name", SPECS)
def test_stamped_calls_make_the_same_graph(name, monkeypatch):
    stamped = _stamped(monkeypatch)
    fast = _graph(SPECS[name], True, monkeypatch)
    assert stamped[0] > 0  # the case exercises stamping
    slow = _graph(SPECS[name], False, monkeypatch)
    assert fast == slow
    assert fast.model_dump_json() == slow.model_dump_json()
    # the fields each record says were set, which `exclude_unset` dumps show
    assert fast.model_dump(exclude_unset=True) == slow.model_dump(exclude_unset=True)
    assert list(fast.layers) == list(slow.layers)  # the state dict's order


def _outcome(text: str, stamp: bool, monkeypatch, **kw) -> tuple[str, object]:
    try:
        return "graph", _graph(text, stamp, monkeypatch, **kw).model_dump(exclude_unset=True)
    except SpecError as err:
        return "errors", [d.model_dump() for d in err.diagnostics]


@pytest.mark.parametrize("name", ERRORS)
def test_stamped_calls_report_the_same_errors(name, monkeypatch):
    fast = _outcome(ERRORS[name], True, monkeypatch)
    assert fast == _outcome(ERRORS[name], False, monkeypatch)


@pytest.mark.parametrize("max_nodes", [40, 41, 47, 60, 200])
def test_a_stamped_call_stops_at_the_node_limit_where_elaboration_does(max_nodes, monkeypatch):
    text = RESIDUAL + "model M {\n input x: [B, T, 8]\n" + " x = x |> Residual(8)\n" * 12 + \
        " output y = x\n}"
    limits = Limits(max_nodes=max_nodes)
    fast = _outcome(text, True, monkeypatch, limits=limits)
    assert fast == _outcome(text, False, monkeypatch, limits=limits)
    assert fast[0] == ("graph" if max_nodes == 200 else "errors")
