"""Airflow pools derived from a workflow's concurrency limits.

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
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from airflow_agent_provider.definitions import AgentSpec, Workflow

POOL_PREFIX = "llm"


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
    return pool_name(key), int(workflow.rate_limits[key].max_concurrent)  # type: ignore[arg-type]


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
