"""
``delivery:`` and ``deadline:`` of a workflow, module or agent: real-time calls or the providers' batch APIs.

Why a separate module: batch delivery is one concern (which agents may be batched, how long they may
wait, what a retry near the deadline does) and its rules are read by the definitions, the factory and
the operators alike. ``models.py`` only declares the fields; the rules live here.

Inheritance, most specific first: the agent's own value, its module's, the workflow's top-level one
(``delivery:``/``deadline:`` next to ``modules:``), then ``defaults:``, then the built-in default
(``realtime``, 24 h). Writing the workflow-level value both at the top and in ``defaults:`` with
different values is an error: which one was meant is a guess.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator

from airflow_agent_provider.definitions.durations import PositiveDuration

if TYPE_CHECKING:
    from airflow_agent_provider.definitions.models import AgentDefaults, AgentSpec, ModuleSpec, Workflow

#: How an agent's model call is delivered.
Delivery = Literal["realtime", "batch"]
DELIVERIES: tuple[str, ...] = ("realtime", "batch")
DEFAULT_DELIVERY: Delivery = "realtime"

#: The providers' batch completion window (OpenAI ``completion_window="24h"``, Anthropic's 24 h expiry):
#: a deadline longer than this could never be met, so it is refused rather than silently capped.
MAX_BATCH_DEADLINE = timedelta(hours=24)
DEFAULT_BATCH_DEADLINE = MAX_BATCH_DEADLINE
#: The shortest deadline accepted: providers give no guarantee below their window, and a batch
#: polled every few seconds for less than a minute is a real-time call at a worse price.
MIN_BATCH_DEADLINE = timedelta(minutes=1)

#: What a retried batch request does: ``batch`` resubmits it as a batch of one; ``realtime`` makes it
#: a real-time call when less than half of the deadline is left (or the batch expired), so that a
#: month-end close is not held up by a second 24 h wait.
BatchFallback = Literal["batch", "realtime"]
DEFAULT_BATCH_FALLBACK: BatchFallback = "batch"

#: Fields a workflow and a module may set for their agents (the agent's own value wins).
DELIVERY_FIELDS: tuple[str, ...] = ("delivery", "deadline", "batch_fallback")


def _check_deadline(value: timedelta) -> timedelta:
    if value > MAX_BATCH_DEADLINE:
        raise ValueError(
            f"deadline {_fmt(value)} is longer than the providers' 24h batch window; use at most 24h"
        )
    if value < MIN_BATCH_DEADLINE:
        raise ValueError(f"deadline {_fmt(value)} is shorter than 1m; use realtime delivery for that")
    return value


BatchDeadline = Annotated[PositiveDuration, AfterValidator(_check_deadline)]


def _fmt(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


def batch_refusals(agent: AgentSpec) -> list[str]:
    """
    Why ``agent`` cannot be delivered as a batch request (empty when it can).

    A batch request is one model call answered hours later: a tool loop needs the model's next
    call after every tool result, and ``repeat_until`` a call after every answer, so either would
    be a chain of 24 h batches. Those agents must stay real-time.
    """
    if agent.delivery != "batch":
        return []
    reasons = []
    if agent.tools:
        reasons.append(
            "it uses tools: a tool loop needs one model call per round, and each batch round could take "
            "up to the 24h batch window; use delivery: realtime for agents with tools"
        )
    if agent.repeat_until is not None:
        reasons.append(
            "it uses repeat_until: every iteration is another model call after the previous answer, "
            "one batch window each; use delivery: realtime"
        )
    return reasons


def delivery_defaults(workflow: Workflow, module: ModuleSpec) -> AgentDefaults:
    """
    ``defaults:`` with the workflow's and the module's ``delivery``/``deadline`` laid over them.

    Returned as a copy whose ``model_fields_set`` includes the overlaid fields, so that
    :meth:`AgentSpec.with_defaults` hands them to every agent that does not set them itself.
    """
    update: dict[str, Any] = {}
    for source in (workflow, module):
        for name in DELIVERY_FIELDS:
            value = getattr(source, name, None)
            if value is not None:
                update[name] = value
    if not update:
        return workflow.defaults
    return workflow.defaults.model_copy(update=update)


def check_workflow_delivery(workflow: Workflow) -> None:
    """Top-level and ``defaults:`` values must agree, and every batch agent must be batchable."""
    for name in DELIVERY_FIELDS:
        top = getattr(workflow, name, None)
        if top is not None and name in workflow.defaults.model_fields_set:
            if getattr(workflow.defaults, name) != top:
                raise ValueError(
                    f"{name} is set both at the top of the workflow and in defaults: with different values; "
                    f"keep one of them"
                )
    problems: list[str] = []
    for module_name, module in workflow.modules.items():
        for agent in module.agents:
            problems.extend(
                f"agent {module_name}.{agent.name} cannot use delivery: batch: {reason}"
                for reason in batch_refusals(agent)
            )
    if problems:
        raise ValueError("; ".join(problems))


__all__ = [
    "DEFAULT_BATCH_DEADLINE",
    "DEFAULT_BATCH_FALLBACK",
    "DEFAULT_DELIVERY",
    "DELIVERIES",
    "DELIVERY_FIELDS",
    "MAX_BATCH_DEADLINE",
    "BatchDeadline",
    "BatchFallback",
    "Delivery",
    "batch_refusals",
    "check_workflow_delivery",
    "delivery_defaults",
]
