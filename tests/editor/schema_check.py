"""A JSON Schema check for the part of draft 2020-12 that pydantic writes (`type`,
`properties`, `required`, `additionalProperties`, `items`, `prefixItems`, `anyOf`, `oneOf`,
`allOf`, `$ref` into `$defs`, `enum`, `const`, `discriminator` with a `mapping`): `jsonschema`
is not a dependency of archdsl. Returns the places where `value` breaks `schema`. Stricter than the
standard in one way: an object schema with `properties` and no `additionalProperties` refuses
other keys, so an output cannot hold a field its schema does not describe."""

from __future__ import annotations

from typing import Any

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _type_ok(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[name])


def errors(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None,
           where: str = "$") -> list[str]:
    root = root or schema
    out: list[str] = []
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        out += errors(value, root["$defs"][name], root, where)
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, n) for n in names):
            return out + [f"{where}: {value!r} is not of type {schema['type']}"]
    if "const" in schema and value != schema["const"]:
        out.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} is not one of {schema['enum']}")
    tag = schema.get("discriminator")
    if tag and isinstance(value, dict) and value.get(tag["propertyName"]) in tag["mapping"]:
        return out + errors(value, {"$ref": tag["mapping"][value[tag["propertyName"]]]}, root,
                            where)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            fits = [not errors(value, s, root, where) for s in schema[key]]
            if (key == "anyOf" and not any(fits)) or (key == "oneOf" and sum(fits) != 1):
                out.append(f"{where}: {value!r} fits {sum(fits)} of the {key} schemas")
    for s in schema.get("allOf", []):
        out += errors(value, s, root, where)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [f"{where}: `{k}` is missing" for k in schema.get("required", [])
                if k not in value]
        extra = schema.get("additionalProperties", not props)
        for k, v in value.items():
            if k in props:
                out += errors(v, props[k], root, f"{where}.{k}")
            elif extra is False:
                out.append(f"{where}: `{k}` is not allowed")
            elif isinstance(extra, dict):
                out += errors(v, extra, root, f"{where}.{k}")
    if isinstance(value, list):
        prefix = schema.get("prefixItems", [])
        for i, v in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get("items")
            if isinstance(sub, dict):
                out += errors(v, sub, root, f"{where}[{i}]")
    return out
