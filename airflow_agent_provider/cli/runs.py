"""Read workflow run results from Airflow's metadata DB (CLI side only; tasks never do this)."""

from __future__ import annotations

import json
import sys
from typing import Any

from airflow_agent_provider.operators.result import RESULT_TASK_ID, format_table


def fetch_run_result(dag_id: str, run_id: str | None = None) -> tuple[str, str | None, dict[str, Any] | None]:
    """Return ``(run_id, run_state, result)`` of the given or latest run; raises LookupError if none."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = session.query(DagRun).filter(DagRun.dag_id == dag_id)
        if run_id:
            query = query.filter(DagRun.run_id == run_id)
        run = query.order_by(DagRun.id.desc()).first()
        if run is None:
            raise LookupError(f"no run of DAG {dag_id!r}" + (f" with run_id {run_id!r}" if run_id else ""))
        row = (
            session.query(XComModel)
            .filter(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run.run_id,
                XComModel.task_id == RESULT_TASK_ID,
                XComModel.key == "return_value",
            )
            .first()
        )
        result = None if row is None else XComModel.deserialize_value(row)
        return run.run_id, str(run.state) if run.state else None, result


def print_run_result(dag_id: str, run_id: str | None = None, *, as_json: bool = False) -> int:
    try:
        found_run_id, state, result = fetch_run_result(dag_id, run_id)
    except LookupError as err:
        print(err, file=sys.stderr)
        return 1
    if result is None:
        print(f"{dag_id} {found_run_id}: run state {state}; no workflow result recorded", file=sys.stderr)
        return 1
    from airflow_agent_provider.security.redact import scrub_value

    # Error texts in the result come from model endpoints: defence in depth against an echoed key.
    result = scrub_value(result)
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"{dag_id}  run {found_run_id}  state {state}  outcome {result['outcome']}")
        print(format_table(result))
    return 0
