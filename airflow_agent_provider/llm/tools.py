"""
Tools an agent may call: plain Python callables named by dotted path in an allow-list.

Why an allow-list of dotted paths: the model chooses which tool to call and with which
arguments, so the model's output must never decide *what code* runs. An operator receives
``tools={"name": "package.module.function"}`` and nothing outside that mapping is ever callable;
paths are imported with importlib, never evaluated. Whoever writes the mapping, code from the
modules :mod:`airflow_agent_provider.module_policy` denies (``builtins``, ``os``, ``subprocess``,
``pickle``, Airflow, this provider...) is never a tool: the module is checked before it is imported,
and the callable's own ``__module__`` after (YAML workflows are further limited to the platform team's
allow-list when they are loaded).

Arguments are validated against the function's signature (pydantic), and every failure - bad JSON,
a validation error, an exception inside the tool, an unknown tool name - becomes a bounded error
text returned to the model, so the loop goes on and the model can correct itself. Airflow-free.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from airflow_agent_provider.exceptions import ToolImportError as ToolImportError
from airflow_agent_provider.llm.adapter_common import arguments_error
from airflow_agent_provider.llm.types import ToolCall, ToolSpec
from airflow_agent_provider.module_policy import denied, denied_message, refused_definition

log = logging.getLogger(__name__)

#: Longest tool result (characters) sent back to the model; longer results are cut with a note.
MAX_RESULT_CHARS = 16_000
#: Longest error text sent back to the model.
MAX_ERROR_CHARS = 1_000

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what both OpenAI and Anthropic accept


def import_callable(dotted_path: str) -> Callable[..., Any]:
    """Import ``package.module.attr`` (or ``package.module:attr``) without evaluating anything."""
    path = dotted_path.strip()
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
    else:
        module_name, _, attr_path = path.rpartition(".")
    if not module_name or not attr_path:
        raise ToolImportError(f"tool path {dotted_path!r} must look like 'package.module.function'")
    if denied(module_name):  # before the import: a denied module's top-level code never runs
        raise ToolImportError(f"tool {dotted_path!r} is refused: {denied_message(module_name, 'tools')}")
    if any(part.startswith("__") for part in attr_path.split(".")):
        raise ToolImportError(
            f"tool {dotted_path!r} is refused: a tool path cannot go through dunder attributes"
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr_path.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ToolImportError(f"cannot import tool {dotted_path!r}: {exc}") from exc
    if not callable(obj):
        raise ToolImportError(f"tool {dotted_path!r} is not callable")
    _refuse_denied(obj, dotted_path)
    tool: Callable[..., Any] = obj
    return tool


def _refuse_denied(func: Callable[..., Any], shown: str) -> None:
    """Refuse a callable defined in (or wrapping one from) a denied module, e.g. a re-exported ``os.system``."""
    refused = refused_definition(func, None)
    if refused:
        raise ToolImportError(f"tool {shown!r} is refused: {refused}")


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [truncated, {len(text) - limit} more characters]"


def _arguments_model(func: Callable[..., Any], name: str) -> type[BaseModel]:
    """A pydantic model of the function's keyword-callable parameters, from its type hints."""
    signature = inspect.signature(func)
    try:
        hints = inspect.get_annotations(func, eval_str=True)
    except Exception:  # unresolvable forward references: fall back to unvalidated fields
        hints = {}
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            continue
        annotation = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model_name = "".join(part.capitalize() for part in re.split(r"[_-]", name)) + "Arguments"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    schema.setdefault("properties", {})
    return schema


def _description(func: Callable[..., Any], name: str) -> str:
    doc = inspect.getdoc(func) or ""
    first = doc.split("\n\n", 1)[0].strip()
    return first or f"Tool {name}."


def _serialise(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, default=str, ensure_ascii=False)


@dataclass
class ToolResult:
    """The outcome of one tool call: the text for the model and whether the call worked."""

    call: ToolCall
    content: str
    ok: bool


class Tool:
    """One callable exposed to the model under ``name``."""

    def __init__(self, name: str, func: Callable[..., Any], dotted_path: str | None = None) -> None:
        if not _NAME.match(name):
            raise ValueError(f"tool name {name!r} must match {_NAME.pattern}")
        _refuse_denied(func, dotted_path or name)
        self.name = name
        self.func = func
        self.dotted_path = dotted_path
        self.arguments_model = _arguments_model(func, name)
        self.spec = ToolSpec(
            name=name, description=_description(func, name), parameters=_schema(self.arguments_model)
        )

    @classmethod
    def from_path(cls, name: str, dotted_path: str) -> Tool:
        return cls(name, import_callable(dotted_path), dotted_path)

    def _error(self, message: str) -> str:
        text = _bounded(f"ERROR calling tool {self.name!r}: {message}", MAX_ERROR_CHARS)
        log.warning("%s", text)
        return text

    def run(self, arguments: Mapping[str, Any]) -> tuple[str, bool]:
        """Validate and call; returns (text for the model, ok). Never raises for bad input or tool errors."""
        parse_error = arguments_error(arguments)
        if parse_error:
            return self._error(parse_error + ". Send the arguments as one JSON object."), False
        try:
            validated = self.arguments_model.model_validate(dict(arguments))
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
                for err in exc.errors()
            )
            return self._error(f"invalid arguments: {details}"), False
        kwargs = {field: getattr(validated, field) for field in type(validated).model_fields}
        try:
            result = self.func(**kwargs)
        except Exception as exc:
            return self._error(f"{type(exc).__name__}: {exc}"), False
        try:
            return _bounded(_serialise(result), MAX_RESULT_CHARS), True
        except (TypeError, ValueError) as exc:
            return self._error(f"result is not serialisable: {exc}"), False

    def call(self, arguments: Mapping[str, Any]) -> str:
        """The text for the model (a JSON-serialised result, or an error description)."""
        return self.run(arguments)[0]


class ToolRegistry:
    """The allow-list of one agent: only these tools exist for the model."""

    def __init__(self, tools: Mapping[str, Tool] | None = None) -> None:
        self.tools: dict[str, Tool] = dict(tools or {})

    @classmethod
    def from_mapping(cls, tools: Mapping[str, str] | None) -> ToolRegistry:
        """Build from ``{name: dotted_path}``, the only form an operator accepts."""
        registry: dict[str, Tool] = {}
        for name, path in (tools or {}).items():
            if not isinstance(path, str):
                raise ToolImportError(
                    f"tool {name!r} must be given as a dotted path string, got {type(path).__name__}"
                )
            registry[name] = Tool.from_path(name, path)
        return cls(registry)

    def __bool__(self) -> bool:
        return bool(self.tools)

    @property
    def specs(self) -> list[ToolSpec]:
        return [tool.spec for tool in self.tools.values()]

    def run(self, call: ToolCall) -> ToolResult:
        tool = self.tools.get(call.name)
        if tool is None:
            text = _bounded(
                f"ERROR: unknown tool {call.name!r}; available tools: {sorted(self.tools) or 'none'}",
                MAX_ERROR_CHARS,
            )
            log.warning("%s", text)
            return ToolResult(call, text, False)
        content, ok = tool.run(call.arguments)
        return ToolResult(call, content, ok)
