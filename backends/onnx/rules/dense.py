"""Linear layers, embeddings, position tables and parameters."""

from __future__ import annotations

import numpy as np

from archdsl.backends.numpy.kernels.dense import sinusoid_table

from ..site import Site


def project(s: Site, x: str, rank: int, weight: str, bias: str | None, hint: str) -> str:
    """`x W^T + b` with W in PyTorch's [out, in] layout (`nn.Linear`)."""
    if rank == 2:
        return s.op("Gemm", x, weight, *([bias] if bias else []), transB=1, hint=hint)
    y = s.op("MatMul", x, s.op("Transpose", weight, perm=[1, 0], hint=f"{hint}_t"), hint=hint)
    return s.op("Add", y, bias, hint=f"{hint}_bias") if bias else y


def linear(s: Site) -> str:
    bias = s.param("bias") if s.args["bias"] else None
    return project(s, s.x, s.ins[0].rank, s.param("weight"), bias, "MatMul")


def embedding(s: Site) -> str:
    """The forward pass reads the `padding_idx` row like any other."""
    return s.op("Gather", s.param("weight"), s.x, axis=0)


def _first_rows(s: Site, table: str) -> str:
    """Rows [0, T) of a table, T the sequence length (dim 1 of the input)."""
    t = s.ins[0].shape[1]
    return s.op("Slice", table, s.const([0], "start"), s.dim(t), s.const([0], "axis"),
                hint="rows")


def positional_encoding(s: Site) -> str:
    t, d = s.ins[0].shape[1], s.args["dim"]
    if isinstance(t, int):  # only the rows the model reads
        return s.op("Add", s.x, s.const(sinusoid_table(t, d), "table", np.float32))
    table = s.const(sinusoid_table(s.args["max_len"], d), "table", np.float32)
    return s.op("Add", s.x, _first_rows(s, table))


def positional_embedding(s: Site) -> str:
    return s.op("Add", s.x, _first_rows(s, s.param("weight")))


RULES = {
    "Linear": linear,
    "Embedding": embedding,
    "PositionalEncoding": positional_encoding,
    "PositionalEmbedding": positional_embedding,
    "Parameter": lambda s: s.param(""),
    "param": lambda s: s.param(s.args["name"]),
}
