"""
Build a small JSON value that validates against a JSON schema.

The local LLM server needs plausible arguments for tool calls and plausible structured-output
replies without any model behind it. The value is deliberately minimal (required properties only,
one array item, first enum value) so that it is deterministic and easy to assert on, yet valid for
the schemas that pydantic, the OpenAI ``strict`` mode and Anthropic tool ``input_schema`` produce.
"""

from __future__ import annotations

import math
from typing import Any

_MAX_DEPTH = 12

_STRING_FORMATS: dict[str, str] = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "duration": "P1D",
}


def minimal_instance(schema: Any, *, root: dict[str, Any] | None = None, _depth: int = 0) -> Any:
    """
    Return a minimal JSON value valid for ``schema``.

    Supports ``type`` (also as a list), ``enum``, ``const``, ``default`` is ignored on purpose (it
    may be absent from required lists), ``$ref`` into ``#/$defs`` / ``#/definitions``, ``anyOf`` /
    ``oneOf`` (first non-null branch), ``allOf`` (merged objects), nested objects and arrays
    (``minItems`` honoured, at least one item), numeric bounds and ``minLength``.
    Unknown or empty schemas give ``"example"``, because a string is the least surprising value.
    """
    root = schema if root is None else root
    if not isinstance(schema, dict) or _depth > _MAX_DEPTH:
        return "example"
    if "$ref" in schema:
        return minimal_instance(_resolve_ref(root, schema["$ref"]), root=root, _depth=_depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            branches = [b for b in schema[key] if not (isinstance(b, dict) and b.get("type") == "null")]
            return minimal_instance((branches or schema[key])[0], root=root, _depth=_depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = minimal_instance(part, root=root, _depth=_depth + 1)
            if isinstance(value, dict):
                merged.update(value)
            else:
                return value
        return merged

    schema_type = _first_type(schema)
    if schema_type == "object":
        props: dict[str, Any] = schema.get("properties") or {}
        return {
            name: minimal_instance(props.get(name, {}), root=root, _depth=_depth + 1)
            for name in schema.get("required") or []
        }
    if schema_type == "array":
        items = schema.get("items")
        if isinstance(schema.get("prefixItems"), list):
            return [minimal_instance(s, root=root, _depth=_depth + 1) for s in schema["prefixItems"]]
        count = max(1, int(schema.get("minItems", 1)))
        return [minimal_instance(items if items is not None else {}, root=root, _depth=_depth + 1)] * count
    if schema_type == "integer":
        return int(_number_in_bounds(schema, 1))
    if schema_type == "number":
        return float(_number_in_bounds(schema, 1.0))
    if schema_type == "boolean":
        return True
    if schema_type == "null":
        return None
    return _string(schema)


def _first_type(schema: dict[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        non_null = [t for t in declared if t != "null"]
        return non_null[0] if non_null else "null"
    if isinstance(declared, str):
        return declared
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _resolve_ref(root: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for raw in ref.lstrip("#").strip("/").split("/"):
        if not raw:
            continue
        part = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _number_in_bounds(schema: dict[str, Any], preferred: float) -> float:
    value = preferred
    if "minimum" in schema and value < schema["minimum"]:
        value = schema["minimum"]
    if "exclusiveMinimum" in schema and isinstance(schema["exclusiveMinimum"], (int, float)):
        if value <= schema["exclusiveMinimum"]:
            value = math.floor(schema["exclusiveMinimum"]) + 1
    if "maximum" in schema and value > schema["maximum"]:
        value = schema["maximum"]
    if "exclusiveMaximum" in schema and isinstance(schema["exclusiveMaximum"], (int, float)):
        if value >= schema["exclusiveMaximum"]:
            value = math.ceil(schema["exclusiveMaximum"]) - 1
    return value


def _string(schema: dict[str, Any]) -> str:
    value = _STRING_FORMATS.get(str(schema.get("format", "")), "example")
    min_length = int(schema.get("minLength", 0))
    if len(value) < min_length:
        value = value + "x" * (min_length - len(value))
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and len(value) > max_length:
        value = value[:max_length]
    return value
