"""Helpers of the batch runs: workflows of N batch agents, the ledger of a run, fast polling."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_agent_provider.factory import build_dag
from tests.control_flow._support import workflow_from

if TYPE_CHECKING:
    import pytest


#: One quick task retry (a batch test opts into retries explicitly).
QUICK_RETRY = {"attempts": 1, "base_delay": "1s", "max_delay": "1s", "jitter": False}


def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Poll batches every 0.2 s (the default 30 s is for real providers)."""
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__BATCH_POLL_INTERVAL", "0.2")
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__BATCH_MAX_POLL_INTERVAL", "0.5")


def batch_agents(count: int, **extra: Any) -> list[dict[str, Any]]:
    """``acct_00`` ... : tool-less agents with scripted replies; ``extra`` goes into every agent."""
    return [
        {
            "name": f"acct_{i:02d}",
            "prompt": f"RECONCILE account {i:02d} [[reply: account {i:02d} reconciled]]",
            **extra,
        }
        for i in range(count)
    ]


def batch_dag(tmp_path: Any, name: str, agents: list[dict[str, Any]], **workflow: Any) -> Any:
    """A DAG with module ``Close`` (``delivery: batch``) and whatever else ``workflow`` adds."""
    modules = workflow.pop("modules", {})
    close = {"delivery": "batch", "agents": agents, **workflow.pop("close", {})}
    return build_dag(
        workflow_from(tmp_path, {"name": name, "modules": {"Close": close, **modules}, **workflow})
    )


def ledger(dag_run: Any) -> list[Any]:
    """The run's ledger entries, read from the shared store (what settlement wrote)."""
    from airflow_agent_provider.cost.ledger import Ledger
    from airflow_agent_provider.hooks.store import get_store

    return Ledger(get_store()).entries(dag_run.dag_id, dag_run.run_id)
