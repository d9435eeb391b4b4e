"""
The submit task's view of its members: each member's request, rendered as the member would render
it, whether it may be sent at all, and its budget reservation at batch prices.

Why the members' own operators are used: the prompt, system prompt, model and connection are the
member's templates, rendered with the member's upstream aliases, narrow context and ``item``; the
loop's first request is built by the member's own loop spec. A batch request is therefore the very
request the member would have sent in real time.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_agent_provider.cost.pricing import PriceOverride
    from airflow_agent_provider.guard.config import GuardConfig
    from airflow_agent_provider.llm.types import LLMRequest
    from airflow_agent_provider.operators.batch_manifest import MemberEntry


@dataclass
class RenderedMember:
    """One member request (one item of a mapped member), ready to reserve and submit."""

    task_id: str
    map_index: int
    model: str
    request: LLMRequest | None = None
    guard: GuardConfig | None = None
    price_override: Mapping[str, Any] | PriceOverride | None = None
    #: Why it is not sent (its task skips or fails on its own, as in real-time delivery).
    skip_reason: str | None = None


def _member_operators(submit: Any, context: Mapping[str, Any]) -> Iterator[tuple[Any, int]]:
    """Every member as an unmapped operator with its map index (-1 for an unmapped member)."""
    from airflow_agent_provider.operators.control_flow import decode_agent_xcom

    ti = context["ti"]
    for spec in submit.members:
        task = submit.dag.get_task(spec["task_id"])
        if not getattr(task, "is_mapped", False):
            yield copy.copy(task), -1
            continue
        items = spec.get("items")
        if items is None and spec.get("items_task"):
            items = decode_agent_xcom(ti.xcom_pull(task_ids=spec["items_task"]))
        for index, item in enumerate(items or []):
            yield task.unmap({"item": item}), index


def _upstream_ok(op: Any, states: Mapping[str, Any], submit_id: str) -> str | None:
    """For an ``all_success`` member: the first upstream that did not succeed (None when all did)."""
    if getattr(op.trigger_rule, "value", op.trigger_rule) != "all_success":
        return None
    for upstream in sorted(set(op.upstream_task_ids) - {submit_id}):
        found = [
            str(getattr(state, "value", state))
            for key, state in states.items()
            if key == upstream or (key.startswith(upstream + "_") and key[len(upstream) + 1 :].isdigit())
        ]
        if any(state != "success" for state in found):
            return str(upstream)
    return None


def render_members(submit: Any, context: Mapping[str, Any]) -> list[RenderedMember]:
    """Render every member (see the module docstring); skipped members carry their reason."""
    from airflow_agent_provider.agent_loop import AgentLoop, fingerprint
    from airflow_agent_provider.operators import agent_runtime as rt
    from airflow_agent_provider.operators.control_flow import flat_upstream_text, upstream_results

    ti = context["ti"]
    operators = list(_member_operators(submit, context))
    upstream_ids = dict.fromkeys(
        t for op, _ in operators for t in [*op.upstream_tasks.values(), *op.critical_upstreams]
    )
    # One pull per upstream for the whole group (the submit task is in the DAG, so a mapped
    # upstream is read as the list of its items, as the member would read it).
    by_task_id = upstream_results(submit, cast("Context", dict(context)), {t: t for t in upstream_ids})
    all_ids = sorted({u for op, _ in operators for u in op.upstream_task_ids} - {submit.task_id})
    states = (
        ti.get_task_states(dag_id=ti.dag_id, run_ids=[context["run_id"]], task_ids=all_ids).get(
            context["run_id"], {}
        )
        if all_ids
        else {}
    )
    rendered = []
    for op, map_index in operators:
        member = RenderedMember(op.task_id, map_index, model=op.model or "")
        rendered.append(member)
        if (failed := _upstream_ok(op, states, submit.task_id)) is not None:
            member.skip_reason = f"upstream {failed} did not succeed"
            continue
        if missing := rt.missing_critical(op.critical_upstreams, by_task_id):
            member.skip_reason = f"critical upstream task(s) {missing} produced no result"
            continue
        results = {alias: by_task_id[t] for alias, t in op.upstream_tasks.items()}
        results.update({t: by_task_id[t] for t in op.upstream_tasks.values()})
        ctx: dict[str, Any] = {
            **context,
            "results": results,
            "upstream_text": flat_upstream_text(op.upstream_tasks, results),
            "item": op.item,
            "iteration": 1,
            "last": None,
        }
        try:
            reason = rt.condition_skip_reason(
                op.condition, rt.expression_names(results, ctx, op.item), op.task_id
            )
        except Exception as exc:  # the member's own task fails the same way, with the same message
            member.skip_reason = f"condition failed: {exc}"
            continue
        if reason is not None:
            member.skip_reason = reason
            continue
        if op.prompt_context == "workflow":
            rt.render_fields_narrowly(op, op.template_fields, ctx)
        else:
            op.render_template_fields(ctx)
        model = op.model or op.hook.default_model
        loop = AgentLoop.start(
            provider=submit.provider,
            model=model,
            prompt=op.prompt,
            fingerprint=fingerprint(
                submit.provider, model, op.prompt, op.system_prompt, op.tools, op.output_schema
            ),
        )
        member.model = model
        member.request = loop.request(op._spec(), [])
        member.guard = op._guard_config(ctx)
        member.price_override = op.price_override
    return rendered


def _limits(guard: Any) -> Any:
    """The budget limits of an agent's guard configuration."""
    from airflow_agent_provider.cost.budget import BudgetLimits

    budgets = getattr(guard, "budgets", None)  # GuardConfig keeps them together (guard/config.py)
    if isinstance(budgets, BudgetLimits):
        return budgets
    return BudgetLimits(
        agent_cost_limit=guard.agent_cost_limit,
        module_cost_budget=guard.module_cost_budget,
        run_cost_budget=guard.run_cost_budget,
        daily_budget=guard.daily_budget,
        monthly_budget=guard.monthly_budget,
    )


def reserve(member: RenderedMember, entry: MemberEntry, ttl_s: float) -> str | None:
    """
    Hold the request's most possible cost at batch prices in all its budget scopes.

    Returns None when held (``entry`` gets the amount and time), else the refusal message that the
    member's task fails with. Idempotent per ``entry.reservation_id`` (a retry holds nothing twice).
    """
    from airflow_agent_provider.cost.budget import BudgetError, BudgetGuard, CallScope
    from airflow_agent_provider.hooks.store import get_store
    from airflow_agent_provider.operators import batch_io

    if member.request is None or member.guard is None or not entry.reservation_id:
        raise ValueError(f"{entry.key}: nothing to reserve (no request, guard or reservation id)")
    guard = member.guard
    limits = _limits(guard)
    scope = CallScope(
        dag_id=guard.dag_id,
        run_id=guard.run_id,
        module=guard.module,
        agent=guard.agent,
        model=member.request.model,
        provider=member.request.provider,
    )
    amount = batch_io.max_cost(member.request, member.price_override)
    try:
        BudgetGuard(get_store()).reserve(
            scope, amount, limits, reservation_id=entry.reservation_id, ttl_s=ttl_s
        )
    except BudgetError as exc:
        return f"{type(exc).__name__}: {exc} (batch request not submitted)"
    entry.amount_usd = amount
    entry.reserved_at = scope.at.timestamp()
    return None


__all__ = ["RenderedMember", "render_members", "reserve"]
