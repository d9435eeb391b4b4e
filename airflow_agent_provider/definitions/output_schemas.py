"""
JSON Schemas in definitions: agents' structured answers and run parameters.

An agent's ``output_schema`` is written inline as a JSON Schema or given as the dotted path of a
pydantic model. Both are checked when the workflow is loaded: an invalid schema would otherwise only
surface as a provider's 400 error in the middle of a run. Providers require an object at the root
(OpenAI's ``json_schema`` response format and Anthropic's tool input schema), so that is checked too.

A schema is also bounded (:data:`MAX_OUTPUT_SCHEMA_CHARS`, :data:`MAX_OUTPUT_SCHEMA_DEPTH`): it is sent
with every model call and stored in the serialized DAG, so a schema of megabytes would cost on every
call and every parse. A dotted path must name a model of an allowed module (see :mod:`.code_refs`).

``jsonschema`` is imported where a schema is checked, not when this module is: a DAG file pays for it
only when a workflow it builds has a schema.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.definitions.code_refs import (
    ALLOWED_MODULES_SETTING,
    bounded,
    describe,
    import_attribute,
    module_problem,
)
from airflow_agent_provider.module_policy import denied, denied_message, refused_definition

if TYPE_CHECKING:
    from pydantic import BaseModel

#: Largest ``output_schema`` as JSON text (keys, strings and numbers counted), inline or from a model.
MAX_OUTPUT_SCHEMA_CHARS = 100_000
#: Deepest nesting of an ``output_schema`` (mappings and lists).
MAX_OUTPUT_SCHEMA_DEPTH = 32


def check_schema_size(schema: Any) -> None:
    """
    Raise :class:`ValueError` when ``schema`` is larger or deeper than the bounds above.

    The walk stops as soon as a bound is passed, so a huge (alias-expanded) schema costs no more than
    the bound itself; a structure that contains itself is refused too.
    """
    budget = [MAX_OUTPUT_SCHEMA_CHARS]
    on_path: set[int] = set()

    def spend(amount: int) -> None:
        budget[0] -= amount
        if budget[0] < 0:
            raise ValueError(
                f"the schema is larger than {MAX_OUTPUT_SCHEMA_CHARS:,} characters as JSON; structured answers "
                "need a far smaller schema (it is sent with every call)"
            )

    def walk(value: Any, depth: int) -> None:
        if depth > MAX_OUTPUT_SCHEMA_DEPTH:
            raise ValueError(f"the schema is nested deeper than {MAX_OUTPUT_SCHEMA_DEPTH} levels")
        if isinstance(value, (dict, list)):
            if id(value) in on_path:
                raise ValueError("the schema contains itself (a recursive structure); use $defs and $ref")
            on_path.add(id(value))
            spend(2)
            items = value.items() if isinstance(value, dict) else ((None, item) for item in value)
            for key, item in items:
                if key is not None:
                    spend(len(str(key)) + 3)
                walk(item, depth + 1)
                spend(1)
            on_path.discard(id(value))
        elif isinstance(value, str):
            spend(len(value) + 2)
        else:
            spend(len(repr(value)) if isinstance(value, (int, float)) else 5)

    walk(schema, 0)


def check_json_schema(schema: dict[str, Any]) -> None:
    """
    Raise :class:`ValueError` unless ``schema`` is a valid JSON Schema (2020-12) with an object root.

    The reason names the failing keyword and where it is inside the schema. The size is checked
    first; the (slow) meta-schema check runs once per distinct schema, since a fleet's agents usually
    share theirs.
    """
    check_schema_size(schema)
    try:
        key: str | None = json.dumps(schema, sort_keys=True, default=repr)
    except (TypeError, ValueError):  # e.g. keys of mixed types: just check it
        key = None
    if key is not None and key in _CHECKED:
        reason = _CHECKED[key]
    else:
        reason = _schema_problem(schema)
        if key is not None:
            if len(_CHECKED) >= _MAX_CHECKED:
                _CHECKED.clear()
            _CHECKED[key] = reason
    if reason is not None:
        raise ValueError(reason)


_CHECKED: dict[str, str | None] = {}  # canonical JSON of a schema -> why it is invalid (None: valid)
_MAX_CHECKED = 1024


def _schema_problem(schema: dict[str, Any]) -> str | None:
    import jsonschema
    from jsonschema.validators import Draft202012Validator

    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        return f"not a valid JSON Schema{f' at {where}' if where else ''}: {bounded(exc.message)}"
    if schema.get("type") != "object":
        return (
            f"the schema's root must have type: object (structured answers are JSON objects), got "
            f"{'no type' if 'type' not in schema else bounded(repr(schema['type']), 60)}"
        )
    return None


def output_schema_import_problem(dotted: str, allowed: Sequence[str] | None = None) -> str | None:
    """
    Why ``dotted`` does not name a pydantic model with an object schema, or None if it does.

    With ``allowed`` (module prefixes), the module must be allowed before it is imported and the model
    must be defined in an allowed module; without, only the modules that are never allowed are refused.
    """
    if allowed is not None:
        reason = module_problem(dotted, "output schemas", allowed)
        if reason:
            return reason
    try:
        model = _import_model(dotted)
        refused = refused_definition(model, allowed)
        if refused:
            return f"output_schema {dotted!r} is refused: {refused} ({ALLOWED_MODULES_SETTING})"
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


def _import_model(dotted: str) -> type[BaseModel]:
    module_path = dotted.rpartition(".")[0]
    if denied(module_path):  # defence in depth: resolve_output_schema may be called on an unchecked path
        raise ValueError(
            f"{denied_message(module_path, 'output schemas', ALLOWED_MODULES_SETTING)} (nothing was imported)"
        )
    model, reason = import_attribute(dotted, "output_schema")
    if reason:
        raise ValueError(reason)
    from pydantic import BaseModel  # local: keeps the import cost where a model is actually named

    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ValueError(f"{dotted!r} is not a pydantic model (a BaseModel subclass)")
    refused = refused_definition(model, None)
    if refused:
        raise ValueError(f"output_schema {dotted!r} is refused: {refused}")
    return model


@functools.lru_cache(maxsize=256)
def _model_schema(dotted: str) -> dict[str, Any]:
    model = _import_model(dotted)
    try:
        schema = model.model_json_schema()
    except Exception as exc:  # e.g. a field type pydantic cannot express in JSON Schema
        raise ValueError(f"cannot build a JSON Schema from {dotted!r}: {describe(exc)}") from None
    check_json_schema(schema)
    return schema


def schema_mismatch(schema: dict[str, Any], value: Any) -> str | None:
    """Why ``value`` does not satisfy ``schema`` (the message Airflow's Param would give), or None."""
    import jsonschema
    from jsonschema.validators import Draft202012Validator

    error = jsonschema.exceptions.best_match(Draft202012Validator(schema).iter_errors(value))
    return None if error is None else error.message
