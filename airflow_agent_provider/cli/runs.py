"""Read workflow run results from Airflow's metadata DB (CLI side only; tasks never do this)."""

from __future__ import annotations

import sys
from typing import Any

from airflow_agent_provider.operators.result import RESULT_TASK_ID
from airflow_agent_provider.results.format import format_heading, format_table, to_json
from airflow_agent_provider.results.workflow import WorkflowResult


def fetch_run_result(dag_id: str, run_id: str | None = None) -> tuple[str, str | None, Any]:
    """
    Return ``(run_id, run_state, stored result)`` of the given or latest run (the stored XCom value,
    None when the run has none); raises LookupError if there is no such run.
    """
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
    try:
        typed = WorkflowResult.from_xcom(scrub_value(result))
    except ValueError as err:
        print(f"{dag_id} {found_run_id}: the workflow result cannot be read: {err}", file=sys.stderr)
        return 1
    if typed is None:  # a stored null
        return 1
    print(to_json(typed) if as_json else f"{format_heading(typed, state)}\n{format_table(typed)}")
    return 0
