"""Nothing the provider's triggers need is imported on the triggerer's event loop.

Airflow imports a trigger's class on the loop every trigger shares (``get_trigger_by_classpath``),
builds the trigger there, and runs it there. An import on that loop blocks every trigger of the
triggerer for as long as it takes: at N = 500 deferring agents the first wave of triggers blocked
the loop six times in 12 s (0.2-1.9 s each, "async thread was blocked"), all before the first call
ended. So the trigger modules import only what defining the classes needs, the triggers keep their
arguments as given until they run, and the first ``run()`` of a process loads the rest in a
thread (``triggers._runtime``), once, while the other triggers await it.

A fresh interpreter is the triggerer's first trigger: a meta-path probe records every module of the
provider (and the SDKs, genai-prices, redis) that is loaded, and on which thread.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from airflow.sdk.exceptions import TaskDeferred
from airflow.serialization.serialized_objects import OperatorSerialization

from airflow_agent_provider.operators.agent import LLMAgentOperator
from tests.fixtures.python_json import run_python_json
from tests.operators.agent_support import make_context

REPO = Path(__file__).parents[2]

#: What the trigger modules may load when Airflow imports a trigger class on the loop: the
#: modules themselves and the few light ones that define their classes.
CLASS_IMPORT_ALLOWED = {
    "airflow_agent_provider",
    "airflow_agent_provider._connections",
    "airflow_agent_provider._gc",
    "airflow_agent_provider._single_flight",
    "airflow_agent_provider.exceptions",
    "airflow_agent_provider.triggers",
    "airflow_agent_provider.triggers._events",
    "airflow_agent_provider.triggers._runtime",
    "airflow_agent_provider.triggers.agent",
    "airflow_agent_provider.triggers.batch",
    "airflow_agent_provider.triggers.budget",
    "airflow_agent_provider.triggers.llm",
}

_PROBE = textwrap.dedent(
    """
    import asyncio, importlib, importlib.abc, json, sys, threading

    from airflow.serialization.serialized_objects import OperatorSerialization
    from airflow.triggers.base import BaseTrigger  # the triggerer has Airflow loaded

    spec = json.loads(sys.argv[1])
    WATCHED = ("airflow_agent_provider", "openai", "anthropic", "genai_prices", "redis", "jsonschema")
    phase = {"now": "setup"}
    loaded = []

    class Probe(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in WATCHED:
                loaded.append([phase["now"], name, threading.current_thread() is threading.main_thread()])
            return None

    # The task the triggerer rebuilds for a task started from the trigger (Airflow's deserializer).
    task = OperatorSerialization.deserialize_operator(spec["task"])

    class TI:  # what the triggerer hands a trigger started from the trigger
        dag_id, run_id, task_id, map_index, try_number = "probe", "manual__probe", task.task_id, -1, 1

        def __init__(self):
            self.task = task

        def xcom_pull(self, **_):
            return None

    sys.meta_path.insert(0, Probe())
    phase["now"] = "class"
    classes = {
        path: getattr(importlib.import_module(path.rsplit(".", 1)[0]), path.rsplit(".", 1)[1])
        for path, _ in spec["triggers"]
    }
    phase["now"] = "run"

    async def first(trigger):
        async for event in trigger.run():
            return event.payload

    async def main():
        triggers = []
        for path, kwargs in spec["triggers"]:
            trigger = classes[path](**kwargs)  # built on the loop, as create_triggers does
            if "start" in kwargs:
                trigger.task_instance = TI()
                trigger.render_template_fields({"run_id": TI.run_id, "dag_id": TI.dag_id, "params": {}})
            triggers.append(trigger)
        return await asyncio.gather(*(first(t) for t in triggers))

    events = asyncio.run(main())
    print(json.dumps({"loaded": loaded, "events": events}))
    """
)


def _deferral(op: LLMAgentOperator) -> tuple[str, dict]:
    context = make_context()
    op.render_template_fields(context)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    classpath, kwargs = deferred.value.trigger.serialize()
    return classpath, json.loads(json.dumps(kwargs))


@pytest.fixture
def probe_env(llm_connections, store_url) -> dict[str, str]:
    """The triggerer's environment: the local server's connections and a fresh store (SQLite or Redis)."""
    env = dict(os.environ)
    env["AIRFLOW__AGENT_PROVIDER__STORE_URL"] = store_url
    return env


def test_the_first_triggers_of_a_triggerer_import_nothing_on_its_loop(probe_env):
    started = LLMAgentOperator(
        task_id="started", prompt="[[reply: from the trigger]]", execution="triggerer", cost_limit=1.0
    )
    triggers = [
        (
            started.start_trigger_args.trigger_cls,
            json.loads(json.dumps(started.start_trigger_args.trigger_kwargs)),
        ),
        # a tool-less agent deferred from a worker, and a tool agent's round
        _deferral(LLMAgentOperator(task_id="deferred", prompt="[[reply: deferred]]", execution="deferred")),
        _deferral(
            LLMAgentOperator(
                task_id="round",
                prompt="[[reply: one round]]",
                tools={"add": "tests.llm.sample_tools.add"},
                execution="deferred",
            )
        ),
    ]
    spec = {
        "task": json.loads(json.dumps(OperatorSerialization.serialize_operator(started))),
        "triggers": triggers,
    }
    result = run_python_json(_PROBE, json.dumps(spec), env=probe_env, cwd=REPO)

    assert [event["status"] for event in result["events"]] == ["done", "done", "success"]
    class_import = sorted({name for phase, name, _ in result["loaded"] if phase == "class"})

    assert set(class_import) <= CLASS_IMPORT_ALLOWED, class_import
    on_loop = sorted({name for phase, name, main in result["loaded"] if phase == "run" and main})
    assert on_loop == [], on_loop
    # the runtime was loaded (in a thread): the SDK, the prices, the store and the engines
    off_loop = {name for phase, name, main in result["loaded"] if phase == "run" and not main}
    assert {"openai", "genai_prices", "airflow_agent_provider.guard.pipeline"} <= off_loop
