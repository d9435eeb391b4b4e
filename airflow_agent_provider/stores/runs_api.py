"""
Store operations for the Operations view: the run index and rate-limit usage reads.

Why the store keeps a run index: the fleet overview has to list recent runs with their state,
outcome, cost, duration and the budgets they counted against, from the API server, without the
metadata DB of each run and without reading every ledger. The ``workflow_result`` task of each run
writes one :class:`RunRecord` (``run_record``) when the run ends; the budgets and rate limits of the
workflow are part of it, so the overview knows what each workflow's spend counts against.

A run that is still going has no record yet, only ledger entries; ``ledger_runs`` lists the runs
the ledger knows, so the overview shows them as running. ``limit_usage`` reads how much of each
tier of a rate-limit key is used right now (requests and tokens in the window, leases held), the
same numbers ``acquire`` checks, without taking anything: every method here except
``run_record`` only reads.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_agent_provider.stores import checks
from airflow_agent_provider.stores.limits_api import Tier, check_tiers

#: How many runs ``runs_list`` returns at most, whatever is asked.
MAX_RUNS = 500
#: The largest record kept (a 500-agent run's summary is about 150 KB).
MAX_RECORD_BYTES = 2_000_000


@dataclass(frozen=True)
class RunRecord:
    """
    What one run did, as the overview lists it (written by the run's ``workflow_result`` task).

    ``state`` is the run's final state (``success`` | ``failed``), ``outcome`` the workflow's
    verdict (``success`` | ``partial`` | ``failed``). ``budgets`` holds the workflow's limits in USD
    (``run``, ``daily``, ``monthly``: a number or None; ``modules``: module -> number or None);
    ``rate_limits`` the workflow's rules (``{"key", "limits"}``); ``agents`` the per-agent summary of
    the run result (status, reason, answered by, fallbacks, usage, cost, task id). Times are epoch
    seconds (UTC).
    """

    dag_id: str
    run_id: str
    workflow: str
    state: str
    outcome: str | None
    started_at: float | None
    ended_at: float | None
    cost_usd: float | None
    cost_complete: bool = True
    budgets: dict[str, Any] = field(default_factory=dict)
    rate_limits: list[dict[str, Any]] = field(default_factory=list)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return round(max(self.ended_at - self.started_at, 0.0), 3)

    def to_json(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, allow_nan=False, default=str)
        if len(text.encode()) > MAX_RECORD_BYTES:
            raise ValueError(
                f"run record of {self.dag_id}/{self.run_id} is larger than {MAX_RECORD_BYTES} bytes"
            )
        return text

    @classmethod
    def from_json(cls, text: str | bytes) -> RunRecord:
        data = json.loads(text)
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duration_s": self.duration_s}


@dataclass(frozen=True)
class LedgerRun:
    """A run as the ledger knows it: charged calls and their time span (the run may still be going)."""

    dag_id: str
    run_id: str
    first_ts: float
    last_ts: float
    calls: int


@dataclass(frozen=True)
class TierUsage:
    """How much of one tier is used now: ``used`` requests (or tokens) of ``limit`` in the last ``window_s``."""

    name: str
    unit: str
    limit: int
    window_s: float
    used: int

    @property
    def ratio(self) -> float:
        return self.used / self.limit if self.limit else math.inf


@dataclass(frozen=True)
class LimitUsage:
    """Current use of a rate-limit key: every tier, concurrency leases held, and the store clock."""

    key: str
    tiers: list[TierUsage]
    leases_held: int
    at: float
    seen: bool


class RunsBackend(ABC):
    """
    The run-index operations one backend implements; every argument arrives checked.

    ``record`` receives the record with its JSON text (made, and size-checked, once by the front),
    ``limit`` is already bounded to 1..``MAX_RUNS``.
    """

    @abstractmethod
    def record(self, record: RunRecord, text: str) -> None:
        """See :meth:`RunIndexStore.run_record`."""

    @abstractmethod
    def get(self, dag_id: str, run_id: str) -> RunRecord | None:
        """See :meth:`RunIndexStore.run_get`."""

    @abstractmethod
    def recent(self, dag_id: str | None, limit: int) -> list[RunRecord]:
        """See :meth:`RunIndexStore.runs_list`."""

    @abstractmethod
    def ledger_runs(self, dag_id: str | None, limit: int) -> list[LedgerRun]:
        """See :meth:`RunIndexStore.ledger_runs`."""

    @abstractmethod
    def limit_usage(self, key: str, tiers: tuple[Tier, ...]) -> LimitUsage:
        """See :meth:`RunIndexStore.limit_usage`."""


class RunIndexStore:
    """
    Run index and usage reads; ``run_record`` is the only write (one upsert per run).

    Each method checks its arguments (the same contract on every backend) and delegates to the
    store's :class:`RunsBackend`.
    """

    #: Set by the concrete store (``Store.__init__``).
    _runs: RunsBackend

    def run_record(self, record: RunRecord) -> None:
        """Write (or replace) the record of ``record.dag_id``/``record.run_id``."""
        checks.instance("record", record, RunRecord)
        checks.text("record.dag_id", record.dag_id)
        checks.text("record.run_id", record.run_id)
        self._runs.record(record, record.to_json())

    def run_get(self, dag_id: str, run_id: str) -> RunRecord | None:
        """The record of one run, None if it was never written."""
        checks.text("dag_id", dag_id)
        checks.text("run_id", run_id)
        return self._runs.get(dag_id, run_id)

    def runs_list(self, dag_id: str | None = None, limit: int = 50) -> list[RunRecord]:
        """Recorded runs, most recently ended first (of one DAG, or of all), at most ``limit``."""
        return self._runs.recent(checks.optional_text("dag_id", dag_id), clamp_limit(limit))

    def ledger_runs(self, dag_id: str | None = None, limit: int = 50) -> list[LedgerRun]:
        """Runs with ledger entries, most recent charge first (of one DAG, or of all)."""
        return self._runs.ledger_runs(checks.optional_text("dag_id", dag_id), clamp_limit(limit))

    def limit_usage(self, key: str, tiers: Sequence[Tier]) -> LimitUsage:
        """Use of every tier of ``key`` right now and the leases held, on the store's clock; a read."""
        return self._runs.limit_usage(checks.text("key", key), check_tiers(tiers))


def clamp_limit(limit: int) -> int:
    """``limit`` (an ``int``) bounded to 1..MAX_RUNS."""
    return max(1, min(checks.integer("limit", limit), MAX_RUNS))


__all__ = [
    "MAX_RUNS",
    "LedgerRun",
    "LimitUsage",
    "RunIndexStore",
    "RunRecord",
    "RunsBackend",
    "TierUsage",
    "clamp_limit",
]


def run_record_from_result(
    result: dict[str, Any],
    *,
    agent_results: dict[str, Any] | None = None,
    budgets: dict[str, Any] | None = None,
    rate_limits: list[dict[str, Any]] | None = None,
    started_at: float | None = None,
    ended_at: float | None = None,
) -> RunRecord:
    """
    The run record of a ``workflow_result`` result (:class:`~airflow_agent_provider.results.WorkflowResult`
    in XCom form). Per agent it keeps :class:`~airflow_agent_provider.results.summary.RunAgentSummary`:
    what the overview shows, never an agent's output.
    """
    from airflow_agent_provider.results import AgentResult, WorkflowResult
    from airflow_agent_provider.results.summary import summarize

    typed = WorkflowResult.model_validate(result)
    own: dict[str, AgentResult | None] = {}
    for task_id, raw in (agent_results or {}).items():
        try:
            own[task_id] = AgentResult.from_xcom(raw)
        except ValueError:  # not an agent result: the summary names no answerer for it
            own[task_id] = None
    return RunRecord(
        dag_id=typed.dag_id,
        run_id=typed.run_id,
        workflow=typed.workflow or typed.dag_id,
        state="failed" if typed.outcome == "failed" else "success",
        outcome=typed.outcome,
        started_at=started_at,
        ended_at=ended_at,
        cost_usd=typed.totals.cost_usd,
        cost_complete=typed.totals.cost_complete,
        budgets=dict(budgets or {"run": typed.cost_budget}),
        rate_limits=[
            {"key": r["key"], "limits": dict(r.get("limits") or {})}
            for r in rate_limits or []
            if r.get("key")
        ],
        agents=summarize(typed, own),
        modules={
            name: {"agents": m.agents, "succeeded": m.succeeded, "cost_usd": m.cost_usd}
            for name, m in typed.modules.items()
        },
    )


__all__ += ["run_record_from_result"]
