"""JSON Schemas in definitions: agents' structured answers and run parameters.

An agent's ``output_schema`` is written inline as a JSON Schema or given as the dotted path of a
pydantic model. Both are checked when the workflow is loaded: an invalid schema would otherwise only
surface as a provider's 400 error in the middle of a run. Providers require an object at the root
(OpenAI's ``json_schema`` response format and Anthropic's tool input schema), so that is checked too.
"""

from __future__ import annotations

import copy
import functools
import importlib
from typing import Any

import jsonschema
from jsonschema.validators import Draft202012Validator


def check_json_schema(schema: dict[str, Any]) -> None:
    """
    Raise :class:`ValueError` unless ``schema`` is a valid JSON Schema (2020-12) with an object root.

    The reason names the failing keyword and where it is inside the schema.
    """
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        raise ValueError(f"not a valid JSON Schema{f' at {where}' if where else ''}: {exc.message}") from None
    if schema.get("type") != "object":
        raise ValueError(
            f"the schema's root must have type: object (structured answers are JSON objects), got "
            f"{'no type' if 'type' not in schema else repr(schema['type'])}"
        )


def output_schema_import_problem(dotted: str) -> str | None:
    """Why ``dotted`` does not name a pydantic model with an object schema, or None if it does."""
    try:
        _model_schema(dotted)
    except ValueError as exc:
        return str(exc)
    return None


def resolve_output_schema(value: dict[str, Any] | str | None) -> dict[str, Any] | None:
    """The JSON Schema for an ``output_schema`` value (a fresh copy); None when there is none."""
    if value is None:
        return None
    if isinstance(value, dict):
        return copy.deepcopy(value)
    return copy.deepcopy(_model_schema(value))


@functools.lru_cache(maxsize=256)
def _model_schema(dotted: str) -> dict[str, Any]:
    module_path, _, attribute = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_path)
    except Exception as exc:  # any import-time failure is the author's to see, not ours to crash on
        raise ValueError(f"cannot import {module_path!r} for output_schema {dotted!r}: {type(exc).__name__}: {exc}") from None
    model = getattr(module, attribute, None)
    if model is None:
        raise ValueError(f"module {module_path!r} has no attribute {attribute!r}")
    from pydantic import BaseModel  # local: keeps the import cost where a model is actually named

    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ValueError(f"{dotted!r} is not a pydantic model (a BaseModel subclass)")
    try:
        schema = model.model_json_schema()
    except Exception as exc:  # e.g. a field type pydantic cannot express in JSON Schema
        raise ValueError(f"cannot build a JSON Schema from {dotted!r}: {type(exc).__name__}: {exc}") from None
    check_json_schema(schema)
    return schema


def schema_mismatch(schema: dict[str, Any], value: Any) -> str | None:
    """Why ``value`` does not satisfy ``schema`` (the message Airflow's Param would give), or None."""
    error = jsonschema.exceptions.best_match(Draft202012Validator(schema).iter_errors(value))
    return None if error is None else error.message
