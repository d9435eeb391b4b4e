"""Cross-workflow triggers: the producer's result task emits its Asset; the consumer is scheduled on it.

``dag.test()`` runs one DAG; it does not start the consumer. What it does prove, in the metadata DB:
the producer's successful run records an asset event, and Airflow queues the consumer for it
(``AssetDagRunQueue``), which is what the scheduler turns into a run. Actually starting that run
needs a scheduler (``airflow standalone`` or the deploy stack), and the consumer must be unpaused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_agent_provider.factory import load_workflow_dags
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.fixtures.airflow_env import _sync_to_db, task_states

pytestmark = pytest.mark.airflow


def _write(folder: Path, data: dict) -> None:
    data = {"schedule": None, "defaults": {"model": "gpt-5-mini", "retries": {"attempts": 0}}, **data}
    (folder / f"{data['name']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _asset_rows(uri: str):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        asset = session.query(AssetModel).filter(AssetModel.uri == uri).one_or_none()
        if asset is None:
            return [], []
        events = [
            (e.source_dag_id, e.source_task_id, e.source_run_id)
            for e in session.query(AssetEvent).filter(AssetEvent.asset_id == asset.id)
        ]
        queued = [
            q.target_dag_id
            for q in session.query(AssetDagRunQueue).filter(AssetDagRunQueue.asset_id == asset.id)
        ]
        return events, queued


def test_producer_emits_its_asset_only_on_success_and_the_consumer_is_queued(
    tmp_path, run_dag, llm_connections
):
    folder = tmp_path / "workflows"
    folder.mkdir()
    agent = {"name": "close", "prompt": "CLOSE the ledger {{ params.fail_marker }}"}
    _write(
        folder,
        {
            "name": "cf_producer",
            "produces": "erp://finance/ledger-closed",
            "params": {"fail_marker": {"type": "string", "default": ""}},
            "modules": {"Finance": {"agents": [agent]}},
        },
    )
    _write(
        folder, {"name": "cf_default_producer", "modules": {"HR": {"agents": [{"name": "p", "prompt": "P"}]}}}
    )
    _write(
        folder,
        {
            "name": "cf_consumer",
            "triggered_by": ["cf_producer", "cf_default_producer"],
            "modules": {"Audit": {"agents": [{"name": "audit", "prompt": "AUDIT"}]}},
        },
    )
    dags = load_workflow_dags(folder)
    assert "__invalid_agent_workflow_definitions__" not in dags
    producer, consumer = dags["cf_producer"], dags["cf_consumer"]

    # The consumer waits for both producers' assets: the custom `produces` and the default URI.
    (outlet,) = producer.get_task(RESULT_TASK_ID).outlets
    assert outlet.uri.startswith("erp://finance/ledger-closed")
    assert {a.uri.rstrip("/") for a in consumer.timetable.asset_condition.objects} == {
        "erp://finance/ledger-closed",
        "agent-workflow://cf_default_producer",
    }
    assert (
        dags["cf_default_producer"]
        .get_task(RESULT_TASK_ID)
        .outlets[0]
        .uri.startswith("agent-workflow://cf_default_producer")
    )

    _sync_to_db(consumer)  # the consumer must be known to Airflow to be queued
    ok = run_dag(producer)
    assert str(ok.state) == "success"
    events, queued = _asset_rows(outlet.uri)
    assert events == [("cf_producer", RESULT_TASK_ID, ok.run_id)]
    assert queued == ["cf_consumer"]

    # A failed run (critical agent fails -> result task fails) emits no asset event.
    failed = run_dag(producer, run_conf={"fail_marker": "[[fail:401]]"})
    assert str(failed.state) == "failed"
    assert task_states(failed)[RESULT_TASK_ID] == "failed"
    events, _ = _asset_rows(outlet.uri)
    assert [e[2] for e in events] == [ok.run_id]
