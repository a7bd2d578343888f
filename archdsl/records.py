"""The base of archdsl's pydantic models.

Pydantic builds a model's validator and serializer when the class is created, about 1 ms of
CPU a model; a front-end command uses few of them (the typed graph is made without
validation, `archdsl.graph.construct`), so each is built on its first use instead."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    model_config = ConfigDict(defer_build=True)
