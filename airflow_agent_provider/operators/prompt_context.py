"""
The narrow prompt context of YAML workflows, and rendering with it.

Why narrow: a workflow file's author is trusted with prompts, not with the deployment's secrets. With
Airflow's full template context a prompt could read ``{{ conn.<id>.password }}`` or
``{{ var.value.<name> }}`` and send it to the model, and through the model's reply into XCom and the
run result. A workflow prompt (``prompt_context="workflow"``, what the factory passes) is therefore
rendered with only the names below, in Airflow's sandboxed Jinja environment with no template
loader and no user macros: ``conn``, ``var``, ``ti``, ``macros`` and the rest of Airflow's context do
not exist at render time, whatever the validation upstream let through. Python users of
``LLMAgentOperator`` keep Airflow's usual context (``prompt_context="airflow"``, the default).

Model output is never rendered as a template: it only ever enters a render as a *value*
(``results.x.text``, ``last.text``), and Jinja does not evaluate values.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jinja2

from airflow_agent_provider._prompt_names import WORKFLOW_PROMPT_NAMES
from airflow_agent_provider.exceptions import PromptContextError as PromptContextError

#: Every name a workflow prompt can read.
WORKFLOW_NAMES: tuple[str, ...] = WORKFLOW_PROMPT_NAMES


def _plain(params: Any) -> dict[str, Any]:
    if not params:
        return {}
    return {key: params[key] for key in params}


def workflow_names(context: Mapping[str, Any]) -> dict[str, Any]:
    """The narrow context taken from a full (or already narrow) template context."""
    names = {name: context[name] for name in WORKFLOW_NAMES if name in context}
    names["params"] = _plain(context.get("params"))
    if "dag_id" not in names:
        dag = context.get("dag")
        ti = context.get("ti")
        names["dag_id"] = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None)
    names.setdefault("iteration", 1)
    names.setdefault("last", None)
    return names


def json_safe_names(names: Mapping[str, Any]) -> dict[str, Any]:
    """The narrow context as JSON (dates as ISO strings), to carry it to the triggerer."""
    out = dict(names)
    if out.get("logical_date") is not None and hasattr(out["logical_date"], "isoformat"):
        out["logical_date"] = out["logical_date"].isoformat()
    return out


@functools.cache
def workflow_env() -> jinja2.Environment:
    """Airflow's sandboxed environment, strict about undefined names, with nothing to load or import."""
    from airflow.sdk.definitions._internal.templater import create_template_env

    return create_template_env(native=False)


def render_workflow(template: Any, names: Mapping[str, Any], *, field: str) -> Any:
    """Render one templated field with the narrow context (non-strings are returned as they are)."""
    if not isinstance(template, str) or ("{" not in template):
        return template
    try:
        return workflow_env().from_string(template).render(**names)
    except jinja2.UndefinedError as exc:
        raise PromptContextError(
            f"{field} cannot be rendered: {exc.message}. A workflow prompt can read only "
            f"{', '.join(WORKFLOW_NAMES)}; Airflow's conn, var, ti, macros and the rest of its template "
            "context are not available to workflow files"
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise PromptContextError(
            f"{field} cannot be rendered: {exc} (the prompt sandbox refused it)"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise PromptContextError(f"{field} is not a valid template: {exc}") from None


__all__ = [
    "WORKFLOW_NAMES",
    "PromptContextError",
    "json_safe_names",
    "render_workflow",
    "workflow_env",
    "workflow_names",
]
