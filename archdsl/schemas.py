"""`archdsl schema`: JSON Schemas (draft 2020-12) of what archdsl writes, for other people's
tooling: the typed graph (`check --emit-ir json`, docs/ir.md) and the analysis report
(`analyze --format json`, docs/analyze.md). Both come from the pydantic models that write
those files, so they cannot drift from them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from archdsl.cost import Report
from archdsl.graph import GanGraph, Graph

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def ir() -> dict[str, Any]:
    """A model's graph or a gan's pair, as written (`kind` tells them apart)."""
    adapter = TypeAdapter(Annotated[Graph | GanGraph, Field(discriminator="kind")])
    schema = adapter.json_schema(mode="serialization")
    return {"$schema": DIALECT, "title": "archdsl typed graph",
            "description": "The output of `archdsl check --emit-ir json` (docs/ir.md): a "
                           "model's graph, or a gan's generator and discriminator.", **schema}


def analysis() -> dict[str, Any]:
    # The report's serializer leaves `train` out when there is none; the validation schema
    # says the same (an optional property), where the serialization one would say nothing.
    schema = Report.model_json_schema(mode="validation")
    return {"$schema": DIALECT, "title": "archdsl analysis report",
            "description": "The output of `archdsl analyze --format json` (docs/analyze.md).",
            **{k: v for k, v in schema.items() if k != "title"}}


SCHEMAS = {"ir": ir, "analysis": analysis}
