"""The deployments' triggerer deserializes a DAG once per version, not twice per start_from_trigger task.

Each case runs in a fresh interpreter (the fix patches Airflow's classes in the process it runs in)
with Airflow's real ``TriggerRunner.create_runtime_ti`` and ``SerializedDagModel`` over a real DAG
of 30 ``start_from_trigger`` tasks with a DAG param, and counts ``DagSerialization.from_dict``
calls. Without the fix (Airflow 3.3 as released) every runtime task instance deserializes the whole
DAG; with it, one deserialization serves every task of the version, a different payload under the
same version id is deserialized afresh, and a run's ``conf`` reaches only that run's context.
"""

from __future__ import annotations

import os

import pytest

from tests.fixtures.python_json import run_python_json

_SCRIPT = r"""
import json, sys, uuid
from datetime import datetime, timezone

from airflow.api_fastapi.execution_api.datamodels.taskinstance import DagRun
from airflow.executors.workloads.task import TaskInstanceDTO
from airflow.jobs.triggerer_job_runner import TriggerRunner
from airflow.models.serialized_dag import SerializedDagModel
from airflow.sdk import DAG, Param
from airflow.serialization.serialized_objects import DagSerialization, LazyDeserializedDAG

from airflow_agent_provider.testing.fleet_floor import TriggerFloorOperator

calls = {"from_dict": 0}
_from_dict = DagSerialization.from_dict.__func__

def counting(cls, data):
    calls["from_dict"] += 1
    return _from_dict(cls, data)

DagSerialization.from_dict = classmethod(counting)

fixed = sys.argv[1] == "fixed"
if fixed:
    from airflow_agent_provider.deploy import triggerer

    assert triggerer.cache_trigger_dags() and triggerer.cache_trigger_dags()  # idempotent

N = 30
with DAG("fix_dag", schedule=None, params={"region": Param("eu", type="string")}) as dag:
    for i in range(N):
        TriggerFloorOperator(task_id=f"t{i:02d}", prompt=f"p{i}", retries=i % 3)
encoded = json.loads(json.dumps(DagSerialization.to_dict(dag)))
version = uuid.uuid4()
now = datetime.now(timezone.utc).isoformat()

def run_data(run_id, conf):
    return DagRun(
        dag_id="fix_dag", run_id=run_id, logical_date=None, data_interval_start=None,
        data_interval_end=None, run_after=now, start_date=now, end_date=None, run_type="manual",
        state="running", conf=conf, consumed_asset_events=[], partition_key=None,
    ).model_dump(exclude_unset=True)

def ti(task_id, run_id):
    return TaskInstanceDTO(
        id=uuid.uuid4(), task_id=task_id, dag_id="fix_dag", run_id=run_id, try_number=1,
        dag_version_id=version, pool_slots=1, priority_weight=1,
    )

out = {}
calls["from_dict"] = 0
rtis = [
    TriggerRunner.create_runtime_ti(ti(f"t{i:02d}", "r1"), json.loads(json.dumps(encoded)), run_data("r1", {}))
    for i in range(N)
]
out["runner_from_dict_calls"] = calls["from_dict"]
out["tasks"] = [r.task.task_id for r in rtis] == [f"t{i:02d}" for i in range(N)]
out["max_tries"] = [r._ti_context_from_server.max_tries for r in rtis[:4]]
out["run_ids"] = sorted({r.run_id for r in rtis})

# A run with conf, then one without: each context has its own params.
with_conf = TriggerRunner.create_runtime_ti(ti("t00", "r2"), encoded, run_data("r2", {"region": "us"}))
without = TriggerRunner.create_runtime_ti(ti("t01", "r3"), encoded, run_data("r3", {}))
out["params"] = [
    with_conf.get_template_context()["params"]["region"],
    without.get_template_context()["params"]["region"],
]
out["dag_param_after"] = without.task.dag.params["region"]

# The same version id with another payload (a version rewritten in place) is not served stale.
changed = json.loads(json.dumps(encoded))
changed["dag"]["tasks"] = [t for t in changed["dag"]["tasks"] if t["__var"]["task_id"] != "t29"]
changed["dag"]["task_group"]["children"].pop("t29")
calls["from_dict"] = 0
other = TriggerRunner.create_runtime_ti(ti("t00", "r4"), changed, run_data("r4", {}))
out["changed_from_dict_calls"] = calls["from_dict"]
out["changed_has_t29"] = other.task.dag.has_task("t29")

# The supervisor's side: SerializedDagModel.dag, as _create_workload reads it for every trigger.
model = SerializedDagModel(LazyDeserializedDAG(data=encoded))
model.dag_version_id = version
calls["from_dict"] = 0
if fixed:
    token = triggerer._building.set({})  # what the wrapped build_trigger_workloads sets
first, second = model.dag, model.dag
out["supervisor_from_dict_calls"] = calls["from_dict"]
out["supervisor_same_object"] = first is second
model.dag_hash = "another-content"
third = model.dag
out["supervisor_new_hash_reloads"] = third is not first
if fixed:
    triggerer._building.reset(token)
    calls["from_dict"] = 0
    outside = (model.dag, model.dag)
    out["outside_build_from_dict_calls"] = calls["from_dict"]

# ... and the serialized DAG model it reads for every trigger of a pass: one query per version.
from types import SimpleNamespace
from airflow.models.dagbag import DBDagBag

class SessionStandIn:  # the one call DBDagBag.get_serialized_dag_model makes of its session
    gets = 0

    def get(self, *args, **kwargs):
        SessionStandIn.gets += 1
        return SimpleNamespace(serialized_dag=model)

bag, session = DBDagBag(), SessionStandIn()
if fixed:
    token = triggerer._building.set({})
models = [bag.get_serialized_dag_model(version_id=version, session=session) for _ in range(5)]
out["model_reads_in_a_pass"] = SessionStandIn.gets
out["models_are_the_model"] = all(m is model for m in models)
if fixed:
    triggerer._building.reset(token)
    SessionStandIn.gets = 0
    for _ in range(2):
        bag.get_serialized_dag_model(version_id=version, session=session)
    out["model_reads_outside_a_pass"] = SessionStandIn.gets
print(json.dumps(out))
"""


def _run(variant: str) -> dict:
    result: dict = run_python_json(_SCRIPT, variant, env=dict(os.environ), timeout=240)
    return result


@pytest.fixture(scope="module")
def fixed() -> dict:
    return _run("fixed")


def test_airflow_alone_deserializes_the_whole_dag_for_every_trigger():
    # The upstream behaviour the fix is for; when this fails, Airflow has fixed it and the fix can go.
    result = _run("airflow")
    assert result["runner_from_dict_calls"] == 30
    assert result["supervisor_from_dict_calls"] == 2
    assert result["supervisor_same_object"] is False
    assert result["model_reads_in_a_pass"] == 5


def test_with_the_fix_one_deserialization_serves_every_task_of_a_version(fixed):
    result = fixed
    assert result["runner_from_dict_calls"] == 1
    assert result["tasks"] is True
    assert result["max_tries"] == [0, 1, 2, 0]  # each task's own retries
    assert result["run_ids"] == ["r1"]
    assert result["supervisor_from_dict_calls"] == 1
    assert result["supervisor_same_object"] is True
    assert result["model_reads_in_a_pass"] == 1
    assert result["models_are_the_model"] is True


def test_with_the_fix_a_runs_conf_stays_in_that_runs_context(fixed):
    result = fixed
    assert result["params"] == ["us", "eu"]
    assert result["dag_param_after"] == "eu"


def test_with_the_fix_changed_content_is_deserialized_afresh(fixed):
    result = fixed
    assert result["changed_from_dict_calls"] == 1
    assert result["changed_has_t29"] is False
    assert result["supervisor_new_hash_reloads"] is True
    # Outside building trigger workloads, SerializedDagModel.dag is Airflow's as before.
    assert result["outside_build_from_dict_calls"] == 2
    assert result["model_reads_outside_a_pass"] == 2
