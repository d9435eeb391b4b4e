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
import jinja2.sandbox

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


#: Most items (characters of a string, elements of a list) one ``*`` may build while a prompt renders.
MAX_REPEATED_ITEMS = 1_000_000


class BoundedBinops(jinja2.sandbox.SandboxedEnvironment):
    """
    A sandbox with ``*`` and ``**`` checked at render time (mixed into Airflow's sandbox class).

    Validation refuses constant repeat counts above a bound, but a factor can be a value only known
    when the task runs (``{{ upstream_text * 90000 }}``): the product is checked before it is built,
    so a prompt cannot make a worker allocate gigabytes. Jinja calls :meth:`call_binop` for the
    operators in ``intercepted_binops`` and never folds them into constants at compile time.
    """

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise jinja2.exceptions.SecurityError(
                "the power operator '**' is not available to workflow prompts"
            )
        sized = [(len(seq), n) for seq, n in ((left, right), (right, left)) if _repeatable(seq, n)]
        if sized and sized[0][0] * sized[0][1] > MAX_REPEATED_ITEMS:
            raise jinja2.exceptions.SecurityError(
                f"repeating {sized[0][0]:,} items {sized[0][1]:,} times would build more than "
                f"{MAX_REPEATED_ITEMS:,}"
            )
        return super().call_binop(context, operator, left, right)


def _repeatable(seq: Any, count: Any) -> bool:
    return (
        isinstance(seq, (str, bytes, list, tuple)) and isinstance(count, int) and not isinstance(count, bool)
    )


@functools.cache
def workflow_env() -> jinja2.Environment:
    """Airflow's sandboxed environment, strict about undefined names, with nothing to load or import, and bounded ``*``."""
    from airflow.sdk.definitions._internal.templater import create_template_env

    env = create_template_env(native=False)
    if not isinstance(env, jinja2.sandbox.SandboxedEnvironment):  # pragma: no cover - an Airflow change
        raise TypeError(f"Airflow's template environment is {type(env).__name__}, not Jinja's sandbox")
    # Same instance state (Airflow's filters, undefined, ...); the class adds only the two checks.
    env.__class__ = type("BoundedAirflowSandbox", (BoundedBinops, type(env)), {})
    return env


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
    "MAX_REPEATED_ITEMS",
    "WORKFLOW_NAMES",
    "BoundedBinops",
    "PromptContextError",
    "json_safe_names",
    "render_workflow",
    "workflow_env",
    "workflow_names",
]
