"""
Airflow pools derived from a workflow's concurrency limits.

Why pools as well as the shared limiter: the limiter's ``max_concurrent`` lease stops a call from
going out, but a task waiting for a lease still holds a worker slot. A pool of the same size makes
the *scheduler* hold the extra tasks back, so workers stay free for other work. An agent goes into
the pool of the most specific rate limit with ``max_concurrent`` that covers it
(``provider/model`` before ``provider``), unless it names a ``pool:`` itself.

Deferred tasks count against these pools (``include_deferred``): a deferred agent is waiting on
an in-flight model call, which is exactly what the pool limits.

Pools live in the metadata DB, which DAG parsing must not touch, so they are created by
``airflow-agents pools sync`` (or ``airflow pools import`` of the file it writes) from the same
definitions; a task whose pool does not exist is never scheduled by Airflow.

The DAG's ``max_active_tasks`` (:func:`max_active_tasks`) comes from the same limits, so that the
DAG itself never holds a fleet below what the user allowed: ``max_parallel_agents`` when the workflow
sets it, else the most agent tasks that the workflow's concurrency limits let run at once. Airflow's
``[core] max_active_tasks_per_dag`` (16) is not used for agent workflows: it would cap a 500-agent
fleet whose limits allow 200 calls at 16 without anyone having asked for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_agent_provider.definitions import AgentSpec, Workflow

POOL_PREFIX = "llm"

#: Upper bound of the task instances of one mapped agent whose items are computed at run time
#: (``for_each: <expression>``): Airflow's ``[core] max_map_length`` default.
MAX_MAPPED_INSTANCES = 1024


def pool_name(rate_limit_key: str) -> str:
    """``openai/gpt-5-mini`` -> ``llm_openai_gpt-5-mini`` (Airflow pool names: keep them plain)."""
    return f"{POOL_PREFIX}_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", rate_limit_key.replace("/", "_"))


def concurrency_key(workflow: Workflow, agent: AgentSpec) -> str | None:
    """The rate-limit key whose ``max_concurrent`` governs the agent, most specific first."""
    model = agent.model or ""
    for key in (f"{agent.provider}/{model}", agent.provider):
        spec = workflow.rate_limits.get(key)
        if spec is not None and spec.max_concurrent:
            return key
    return None


def agent_pool(workflow: Workflow, agent: AgentSpec) -> tuple[str, int] | None:
    """``(pool, slots)`` for the agent's derived pool, or None (explicit pool or no concurrency limit)."""
    if agent.pool:
        return None
    key = concurrency_key(workflow, agent)
    if key is None:
        return None
    slots = workflow.rate_limits[key].max_concurrent
    if slots is None:  # concurrency_key only returns a key whose rule sets max_concurrent
        return None
    return pool_name(key), int(slots)


def pools_for(workflows: Iterable[Workflow]) -> dict[str, dict[str, Any]]:
    """
    Every derived pool of ``workflows`` in ``airflow pools import`` format.

    Two workflows declaring different sizes for one pool get the smaller one: pools are shared by
    every workflow using that model, like the provider account behind them.
    """
    pools: dict[str, dict[str, Any]] = {}
    for workflow in workflows:
        for _, agent in workflow.iter_agents():
            found = agent_pool(workflow, agent)
            if found is None:
                continue
            name, slots = found
            entry = pools.setdefault(
                name,
                {
                    "slots": slots,
                    "description": f"LLM calls to {concurrency_key(workflow, agent)} (airflow-agent-provider)",
                    "include_deferred": True,
                },
            )
            entry["slots"] = min(entry["slots"], slots)
    return pools


def _instances(agent: AgentSpec) -> int:
    """How many task instances the agent can have in one run (mapped agents: one per item)."""
    if agent.for_each is None:
        return 1
    items = agent.static_for_each()
    return max(len(items), 1) if items is not None else MAX_MAPPED_INSTANCES


def max_active_tasks(workflow: Workflow, other_tasks: int = 1) -> int:
    """
    The DAG's ``max_active_tasks`` (running and queued task instances of one run; deferred ones do not count).

    ``max_parallel_agents`` when set. Otherwise the sum, over the agents' pools, of
    ``min(agents' task instances, pool slots // pool_slots)`` for the derived pools (their size is
    known from ``max_concurrent``), plus every task instance of agents without a known bound (an
    explicit ``pool:``, whose size lives in the metadata DB, or no ``max_concurrent`` at all), plus
    ``other_tasks`` (the result task, budget gates, ``for_each`` item tasks). So 500 agents under a
    ``max_concurrent: 200`` limit get 200 (+ the others) and a workflow without concurrency limits is
    not capped by its DAG at all: Airflow's global settings (parallelism, worker slots, the default
    pool, the triggerer's capacity) then decide, see the README.
    """
    if workflow.max_parallel_agents:
        return workflow.max_parallel_agents
    pooled: dict[str, list[int]] = {}  # derived pool -> [instances, slots, smallest pool_slots]
    unbounded = 0
    for _, agent in workflow.iter_agents():
        found = agent_pool(workflow, agent)
        if found is None:
            unbounded += _instances(agent)
            continue
        name, slots = found
        entry = pooled.setdefault(name, [0, slots, agent.pool_slots])
        entry[0] += _instances(agent)
        entry[2] = min(entry[2], agent.pool_slots)
    bounded = sum(min(instances, max(slots // per_task, 1)) for instances, slots, per_task in pooled.values())
    return max(bounded + unbounded + other_tasks, 1)
