"""
Results as typed, versioned records: what an agent task leaves (:class:`AgentResult`) and what a
workflow run gives (:class:`WorkflowResult`), defined once for every layer that writes or reads them.

Airflow-free, in three parts besides the models: the result task *collects* records from Airflow
(``operators/result.py``), :func:`compile_result` turns them into the workflow result (pure), and
:mod:`.format` renders it for people (the task log, ``airflow-agents result``). :mod:`.summary` is
the per-agent summary a run record keeps for the Operations view; :mod:`.reference` generates the
README's field tables from these models.
"""

from __future__ import annotations

from airflow_agent_provider.results.agent import (
    AGENT_RESULT_VERSION,
    AgentResult,
    FallbackUse,
    TokenUsage,
    ToolCallRecord,
    decode_json_object,
)
from airflow_agent_provider.results.compile import compile_result, decide_outcome, failed_agents
from airflow_agent_provider.results.records import AgentMeta, AgentRecord, InstanceRecord, RunRecords
from airflow_agent_provider.results.workflow import (
    WORKFLOW_RESULT_VERSION,
    AgentEntry,
    ItemEntry,
    ModuleTotals,
    Outcome,
    RunTotals,
    WorkflowResult,
)

__all__ = [
    "AGENT_RESULT_VERSION",
    "WORKFLOW_RESULT_VERSION",
    "AgentEntry",
    "AgentMeta",
    "AgentRecord",
    "AgentResult",
    "FallbackUse",
    "InstanceRecord",
    "ItemEntry",
    "ModuleTotals",
    "Outcome",
    "RunRecords",
    "RunTotals",
    "TokenUsage",
    "ToolCallRecord",
    "WorkflowResult",
    "compile_result",
    "decide_outcome",
    "decode_json_object",
    "failed_agents",
]
