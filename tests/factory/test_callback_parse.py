"""The dag-processor's callback-only parses build only the workflows their callbacks read.

Each test runs Airflow 3.3's own parse function (``airflow.dag_processing.processor._parse_file``)
on a real ``DagFileParseRequest`` in a fresh interpreter, as the dag-processor's forked parse does,
over a dags folder holding ``erp_workflows.py`` and several workflows. What the DAG file built is
read from the module Airflow imported it as (``globals().update(...)`` puts the DAGs there).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from airflow.callbacks.callback_requests import DagCallbackRequest, TaskCallbackRequest
from airflow.utils.state import TaskInstanceState

from airflow_agent_provider.factory.callback_parse import dag_ids_for_callbacks, dag_ids_needed
from airflow_agent_provider.factory.loader import INVALID_PLACEHOLDER_DAG_ID
from tests.fixtures.python_json import run_python_json

REPO = Path(__file__).parents[2]

_PARSE_SCRIPT = r"""
import json, sys
from pathlib import Path

from pydantic import TypeAdapter
import structlog

from airflow.callbacks.callback_requests import CallbackRequest
from airflow.dag_processing.processor import DagFileParseRequest, _parse_file

folder, requests = Path(sys.argv[1]), json.loads(sys.argv[2])
msg = DagFileParseRequest(
    file=str(folder / "erp_workflows.py"),
    bundle_path=folder,
    bundle_name="dags-folder",
    callback_requests=[TypeAdapter(CallbackRequest).validate_python(r) for r in requests],
)
result = _parse_file(msg, structlog.get_logger())
(module,) = [
    m for m in list(sys.modules.values())
    if getattr(m, "__file__", None) == str(folder / "erp_workflows.py")
]
from airflow.sdk import DAG

print(json.dumps({
    "built": sorted(k for k, v in vars(module).items() if isinstance(v, DAG)),
    "result_dag_ids": None if result is None else sorted(d.dag_id for d in result.serialized_dags),
    "import_errors": None if result is None else sorted(result.import_errors),
    "factory_loaded": "airflow_agent_provider.factory.loader" in sys.modules,
}))
"""


def _workflow(name: str) -> str:
    return (
        f"name: {name}\nschedule: null\ndefaults: {{provider: openai, model: gpt-5-mini}}\n"
        "modules:\n  M:\n    agents:\n      - name: a\n        prompt: hi\n"
    )


@pytest.fixture(scope="module")
def dags_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("callbacks") / "dags"
    (folder / "workflows").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "erp_workflows.py", folder / "erp_workflows.py")
    for name in ("fleet_a", "fleet_b", "fleet_c"):
        (folder / "workflows" / f"{name}.yaml").write_text(_workflow(name))
    (folder / "workflows" / "broken.yaml").write_text(_workflow("broken") + "bogus: 1\n")
    return folder


def _ti(dag_id: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "task_id": "M.a",
        "dag_id": dag_id,
        "run_id": "r1",
        "try_number": 1,
        "dag_version_id": str(uuid.uuid4()),
    }


def _task_callback(dag_id: str, state: TaskInstanceState) -> dict:
    request = TaskCallbackRequest(
        filepath="erp_workflows.py",
        bundle_name="dags-folder",
        bundle_version=None,
        ti=_ti(dag_id),
        task_callback_type=state,
    )
    return request.model_dump(mode="json")


def _parse(folder: Path, requests: list[dict]) -> dict:
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("_AIRFLOW_PARSING_CONTEXT")}
    result: dict = run_python_json(_PARSE_SCRIPT, str(folder), json.dumps(requests), env=env, timeout=240)
    return result


def test_a_parse_for_success_callbacks_only_builds_nothing_and_loads_no_factory(dags_folder):
    # What the triggerer sends for every agent that ends there with TaskSuccessEvent.
    parsed = _parse(
        dags_folder,
        [
            _task_callback("fleet_a", TaskInstanceState.SUCCESS),
            _task_callback("fleet_b", TaskInstanceState.SUCCESS),
        ],
    )
    assert parsed == {"built": [], "result_dag_ids": None, "import_errors": None, "factory_loaded": False}


@pytest.mark.parametrize("state", [TaskInstanceState.FAILED, TaskInstanceState.UP_FOR_RETRY])
def test_a_parse_for_a_failure_callback_builds_that_workflow_only(dags_folder, state):
    parsed = _parse(
        dags_folder,
        [_task_callback("fleet_b", state), _task_callback("fleet_a", TaskInstanceState.SUCCESS)],
    )
    assert parsed["built"] == ["fleet_b"]
    assert parsed["result_dag_ids"] is None  # a callback parse serializes nothing


def test_a_parse_for_dag_and_email_callbacks_builds_the_workflows_they_name(dags_folder):
    dag_callback = DagCallbackRequest(
        filepath="erp_workflows.py",
        bundle_name="dags-folder",
        bundle_version=None,
        dag_id="fleet_c",
        run_id="r1",
    ).model_dump(mode="json")
    email = {
        "type": "EmailRequest",
        "filepath": "erp_workflows.py",
        "bundle_name": "dags-folder",
        "bundle_version": None,
        "ti": _ti("fleet_a"),
        "context_from_server": {
            "dag_run": {
                "dag_id": "fleet_a",
                "run_id": "r1",
                "logical_date": None,
                "data_interval_start": None,
                "data_interval_end": None,
                "run_after": "2026-12-07T00:00:00Z",
                "start_date": "2026-12-07T00:00:00Z",
                "end_date": None,
                "partition_key": None,
                "run_type": "manual",
                "state": "running",
                "consumed_asset_events": [],
            },
            "max_tries": 0,
        },
    }
    parsed = _parse(dags_folder, [dag_callback, email])
    assert parsed["built"] == ["fleet_a", "fleet_c"]


def test_a_regular_dag_processor_parse_still_builds_and_reports_everything(dags_folder):
    parsed = _parse(dags_folder, [])
    # broken.yaml's placeholder, whose failed validation is the file's import error
    assert parsed["built"] == [INVALID_PLACEHOLDER_DAG_ID, "fleet_a", "fleet_b", "fleet_c"]
    assert parsed["result_dag_ids"] == ["fleet_a", "fleet_b", "fleet_c"]
    assert len(parsed["import_errors"]) == 1  # broken.yaml, reported through the DAG file


def test_outside_a_dag_processor_parse_nothing_is_told():
    assert dag_ids_for_callbacks() is None


def test_what_each_kind_of_request_needs():
    success = TaskCallbackRequest.model_validate(_task_callback("a", TaskInstanceState.SUCCESS))
    failed = TaskCallbackRequest.model_validate(_task_callback("b", TaskInstanceState.FAILED))
    no_state = TaskCallbackRequest.model_validate(
        {**_task_callback("c", TaskInstanceState.FAILED), "task_callback_type": None}
    )
    dag = DagCallbackRequest(filepath="f", bundle_name="b", bundle_version=None, dag_id="d", run_id="r")
    assert dag_ids_needed([success]) == frozenset()
    assert dag_ids_needed([success, failed, no_state, dag]) == {"b", "c", "d"}

    class Unknown:
        type = "SomeFutureRequest"

    assert dag_ids_needed([success, Unknown()]) is None  # not known: build everything
