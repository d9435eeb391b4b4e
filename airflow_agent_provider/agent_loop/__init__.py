"""
The agent loop as one typed object, shared by every place an agent runs.

An agent's run is the same loop wherever it happens — on a worker, deferred to the triggerer once
per model round, or started and finished in the triggerer: call the model, run the tools it asks
for, call again, validate the answer, maybe start another ``repeat_until`` iteration, then turn the
whole thing into one result record. :class:`AgentLoop` is that loop's state (versioned and
JSON round-trippable, because it is persisted in ``task_state_store`` after every paid call and
travels in deferral kwargs); :mod:`.drive` holds the two drivers (sync and async) that every path
uses, so the paths cannot drift apart.

Airflow-free: the operator and the triggers hand in what only they can do (run a tool, render a
prompt, persist the state, make the guarded call).
"""

from __future__ import annotations

from airflow_agent_provider.agent_loop.state import (
    LOOP_VERSION,
    AgentLoop,
    LoopExpressionError,
    LoopSpec,
    OutputValidationError,
    fingerprint,
    validate_output,
)
from airflow_agent_provider.results.agent import AgentResult

__all__ = [
    "LOOP_VERSION",
    "AgentLoop",
    "AgentResult",
    "LoopExpressionError",
    "LoopSpec",
    "OutputValidationError",
    "fingerprint",
    "validate_output",
]
