"""What the deployment tests read back from a running stack: the LLM server's log and the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.stores import store_from_url

if TYPE_CHECKING:
    from airflow_agent_provider.deploy.local import LocalDeployment


def completions(stack: LocalDeployment) -> list[dict[str, Any]]:
    """The LLM server's log entries of OpenAI chat completions (every attempt, any status)."""
    return [e for e in stack.llm.stats()["log"] if e["path"].endswith("/chat/completions")]


def ledger_entries(stack: LocalDeployment, dag_id: str, run_id: str) -> list:
    """The ledger entries of one run, read from the deployment's own store."""
    store = store_from_url(stack.env["AIRFLOW__AGENT_PROVIDER__STORE_URL"])
    try:
        return Ledger(store).entries(dag_id, run_id)
    finally:
        store.close()
