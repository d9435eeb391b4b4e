"""
Dotted paths to code in a workflow file (``tools:`` and ``output_schema:``), vetted before import.

A workflow file author chooses these paths, and the platform team chooses where code may come from
(``[agent_provider] allowed_tool_modules``). The rules are in :mod:`airflow_agent_provider.module_policy`:
the module is checked as a string first, so a module outside the allow-list is never imported (its
top-level code never runs in the dag-processor), and the imported object's own ``__module__`` is
checked after, so an allowed module cannot hand out a re-exported ``os.system``.

Every failure is a reason string for a definition problem, never an exception: importing a broken
module can raise anything, and it must stay that file's problem.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from typing import Any

from airflow_agent_provider.config import ALLOWED_TOOL_MODULES_OPTION, setting_name
from airflow_agent_provider.module_policy import denied, denied_message, refused_definition, under

#: How errors name the allow-list setting.
ALLOWED_MODULES_SETTING = setting_name(ALLOWED_TOOL_MODULES_OPTION)
_MAX_REASON_CHARS = 300


def bounded(text: str, limit: int = _MAX_REASON_CHARS) -> str:
    """``text`` cut to ``limit`` characters: an exception's text can be arbitrarily long."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def must_propagate(exc: BaseException) -> bool:
    """
    True for the interruptions a file's load must not swallow: Ctrl-C, generator shutdown, and
    Airflow's own (the DagBag import timeout raises ``AirflowTaskTimeout``, a BaseException, in
    whatever code runs when the alarm fires). Everything else a file's load raises, whatever its type,
    becomes that file's problem.
    """
    if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
        return True
    return not isinstance(exc, Exception) and any(
        (getattr(cls, "__module__", "") or "").split(".", 1)[0] == "airflow" for cls in type(exc).__mro__
    )


def describe(exc: BaseException) -> str:
    """``Type: message``, bounded, even for an exception whose ``__str__`` itself fails."""
    try:
        message = str(exc)
    except Exception:  # an exception raised by a broken module can be broken itself
        message = "(the exception's message cannot be shown)"
    return f"{type(exc).__name__}: {bounded(message) or '(no message)'}"


def module_problem(dotted: str, what: str, allowed: Sequence[str]) -> str | None:
    """Why the module of ``dotted`` may not be imported for ``what`` (checked on the string), or None."""
    module = dotted.rpartition(".")[0]
    if denied(module):
        return f"{denied_message(module, what, ALLOWED_MODULES_SETTING)} (nothing was imported)"
    if not any(under(module, prefix) for prefix in allowed):
        shown = ", ".join(allowed) if allowed else "no module at all (it is empty)"
        return (
            f"module {module!r} is not allowed for {what}: {ALLOWED_MODULES_SETTING} allows {shown}; "
            "the platform team adds vetted module prefixes there (nothing was imported)"
        )
    return None


def import_attribute(dotted: str, what: str) -> tuple[Any, str | None]:
    """``(object, None)`` or ``(None, reason)`` for ``package.module.attr``; never raises."""
    module_path, _, attribute = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_path)
    except BaseException as exc:  # any import-time failure is the author's to see, not ours to crash on
        if must_propagate(exc):
            raise
        return None, f"cannot import {module_path!r} for {what} {dotted!r}: {describe(exc)}"
    if attribute.startswith("__") or not hasattr(module, attribute):
        return None, f"module {module_path!r} has no attribute {attribute!r}"
    return getattr(module, attribute), None


def tool_problem(dotted: str, allowed: Sequence[str]) -> str | None:
    """Why ``dotted`` may not be a tool: not allowed, not importable, or not a function of an allowed module."""
    reason = module_problem(dotted, "tools", allowed)
    if reason:
        return reason
    obj, reason = import_attribute(dotted, "tool")
    if reason:
        return reason
    if not callable(obj):
        return f"{dotted!r} is not callable"
    if not inspect.isfunction(obj):
        return (
            f"{dotted!r} is not a Python function ({type(obj).__name__}): a tool must be a function defined "
            "with def in an allowed module"
        )
    refused = refused_definition(obj, allowed)
    if refused:
        return f"tool {dotted!r} is refused: {refused} ({ALLOWED_MODULES_SETTING})"
    return None
