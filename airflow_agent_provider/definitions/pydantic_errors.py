"""
Translate pydantic's error list into plain-words :class:`Problem` objects.

Pydantic's messages are precise but written for programmers ("Extra inputs are not permitted",
"Input should be a valid integer, unable to parse string as an integer"). Workflow authors get the
field path, what was wrong in words, the allowed names for unknown fields with the closest match,
and the YAML line where it can be found.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from airflow_agent_provider._suggest import did_you_mean
from airflow_agent_provider.definitions.errors import Problem
from airflow_agent_provider.definitions.models import (
    ASSET_URI_PATTERN,
    DEPENDENCY_PATTERN,
    DOTTED_PATH_PATTERN,
    NAME_PATTERN,
    PARAM_NAME_PATTERN,
    TOOL_NAME_PATTERN,
    WORKFLOW_NAME_PATTERN,
)
from airflow_agent_provider.definitions.yaml_loader import FieldPath, format_path

_PATTERN_WORDS = {
    WORKFLOW_NAME_PATTERN: "may only contain letters, digits, '_', '.' and '-'",
    NAME_PATTERN: "may only contain letters, digits, '_' and '-' (it becomes an Airflow id)",
    TOOL_NAME_PATTERN: "must be 1-64 letters, digits, '_' or '-'",
    DOTTED_PATH_PATTERN: "must be a dotted Python path such as 'package.module.function'",
    DEPENDENCY_PATTERN: "must be 'agent' (same module) or 'Module.agent'",
    PARAM_NAME_PATTERN: "must be letters, digits and '_', not starting with a digit (expressions read params.<name>)",
    ASSET_URI_PATTERN: "must be an asset URI such as 'agent-workflow://name' (scheme://..., ASCII, no spaces)",
}

_TYPE_WORDS = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a text string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "datetime_type": "must be a date or date-time such as 2026-01-01",
    "datetime_parsing": "must be a date or date-time such as 2026-01-01",
    "datetime_from_date_parsing": "must be a date or date-time such as 2026-01-01",
}

_COMPARE_WORDS = {
    "greater_than": "greater than",
    "greater_than_equal": "at least",
    "less_than": "less than",
    "less_than_equal": "at most",
}


def problems_from_validation_error(
    error: ValidationError, root: type[BaseModel], line_of: Callable[[FieldPath], int | None]
) -> list[Problem]:
    """One :class:`Problem` per pydantic error, located with ``line_of(path)``."""
    problems = []
    for item in error.errors(include_url=False):
        path = _clean_loc(item["loc"])
        message = _message(item, path, root)
        problems.append(Problem(format_path(path), message, line_of(path)))
    return problems


def _clean_loc(loc: tuple[Any, ...]) -> FieldPath:
    # A failing dict *key* is reported by pydantic as (..., key, "[key]"): the key itself is the path.
    return tuple(part for part in loc if part != "[key]")


def _message(item: Any, path: FieldPath, root: type[BaseModel]) -> str:
    kind = item["type"]
    value = item.get("input")
    ctx = item.get("ctx") or {}
    pattern = ctx.get("pattern", "")
    if kind == "extra_forbidden":
        return _unknown_field(path, root)
    if kind == "missing":
        return "required field is missing"
    if "[key]" in item["loc"] and kind == "string_pattern_mismatch":
        return f"name {value!r} {_PATTERN_WORDS.get(pattern, 'is not allowed')}"
    if kind == "string_pattern_mismatch":
        return f"{_PATTERN_WORDS.get(pattern, 'has an invalid format')}, got {_show(value)}"
    if kind in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind]}, got {_show(value)}"
    if kind in _COMPARE_WORDS:
        limit = next(iter(ctx.values()), "?")
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        return f"must be {_COMPARE_WORDS[kind]} {limit}, got {_show(value)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}, got {_show(value)}"
    if kind == "too_short":
        return (
            "must not be empty"
            if ctx.get("min_length") == 1
            else f"needs at least {ctx.get('min_length')} items"
        )
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"is too long (at most {ctx.get('max_length')} characters)"
    if kind == "value_error":
        return str(ctx.get("error", item["msg"]))
    return f"{item['msg']}, got {_show(value)}"


def _show(value: Any) -> str:
    text = repr(value)
    if isinstance(value, dict):
        text = "a mapping"
    elif isinstance(value, list):
        text = "a list"
    elif value is None:
        text = "null"
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_field(path: FieldPath, root: type[BaseModel]) -> str:
    name = str(path[-1]) if path else "?"
    model = _model_at(root, path[:-1])
    if model is None:
        return f"unknown field {name!r}"
    allowed = list(model.model_fields)
    message = f"unknown field {name!r}" + did_you_mean(name, allowed, parenthesized=True)
    return f"{message}; allowed: {', '.join(allowed)}"


def _model_at(root: type[BaseModel], path: FieldPath) -> type[BaseModel] | None:
    """Follow ``path`` through the model's field annotations to the model that holds the last key."""
    annotation: Any = root
    remaining = list(path)
    while True:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not remaining:
                return annotation
            field = annotation.model_fields.get(str(remaining.pop(0)))
            if field is None:
                return None
            annotation = field.annotation
            continue
        if not remaining:
            return None
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is dict and len(args) == 2:
            remaining.pop(0)
            annotation = args[1]
        elif origin is list and args:
            remaining.pop(0)
            annotation = args[0]
        else:
            return None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to the one interesting type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation
