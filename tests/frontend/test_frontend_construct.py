"""`archdsl.graph.construct`, elaboration's lean `model_construct`, makes the same objects."""

from __future__ import annotations

import pytest

from archdsl.diagnostics import Loc
from archdsl.graph import Graph, Layer, Node, Scope, TensorType, construct

LOC = Loc(file="a.arch", line=1, col=2, end_line=1, end_col=5)
T = TensorType(shape=(1, 4))
CASES = [
    (Node, {"id": 3, "op": "linear", "type": T}),
    (Node, {"id": 0, "op": "input", "type": T, "inputs": [1], "args": {"k": 2}, "loc": LOC}),
    (Layer, {"path": "fc", "op": "Linear"}),
    (Scope, {"path": "b", "definition": "Block", "inputs": [0], "loc": LOC}),
    (TensorType, {"dtype": "i64", "shape": (2,)}),
    (Graph, {"name": "Net", "file": "a.arch"}),
]


@pytest.mark.parametrize(("cls", "values"), CASES, ids=lambda x: getattr(x, "__name__", ""))
def test_construct_matches_model_construct(cls, values) -> None:
    ours, theirs = construct(cls, **values), cls.model_construct(**values)
    assert type(ours) is cls
    assert ours.__dict__ == theirs.__dict__
    assert list(ours.__dict__) == list(theirs.__dict__)  # field order, as repr and dumps show
    assert ours.model_fields_set == theirs.model_fields_set
    assert ours.model_dump_json() == theirs.model_dump_json()
    assert ours.__pydantic_private__ == theirs.__pydantic_private__


def test_defaults_are_not_shared() -> None:
    a = construct(Node, id=0, op="x", type=T)
    b = construct(Node, id=1, op="x", type=T)
    a.inputs.append(5)
    a.args["k"] = 1
    assert b.inputs == [] and b.args == {} and Node.model_fields["inputs"].default == []
