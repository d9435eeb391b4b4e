"""The native multi-process stack for the distributed tests: built once per test module.

Starting Postgres, Redis, the LLM server and six Airflow processes costs about half a minute, so
each module that needs the stack shares one. Its DAGs folder holds the ERP example and the test
workflows of ``tests/deploy/workflows``; the pool they use (``llm_pool``, 4 slots) is imported by
the launcher.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from airflow_agent_provider.deploy.local import LocalDeployment

REPO = Path(__file__).resolve().parents[2]
TEST_WORKFLOWS = Path(__file__).parent / "workflows"
POOL_SLOTS = 4


#: A plain task reporting which modules its process had before it ran: none of these is imported by
#: the DAG file or by the task itself, so each one present came from the worker's preload.
PRELOAD_PROBE = """
import sys

from airflow.sdk import dag, task

PROBED = ("openai", "anthropic", "genai_prices", "airflow_agent_provider.guard.pipeline")


@dag(dag_id="preload_probe", schedule=None, catchup=False)
def preload_probe():
    @task
    def loaded() -> dict:
        return {name: name in sys.modules for name in PROBED}

    loaded()


preload_probe()
"""


def build_dags_folder(target: Path) -> Path:
    """``target`` with the project's DAG file, the ERP example, the test workflows and the preload probe."""
    (target / "workflows").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "erp_workflows.py", target / "erp_workflows.py")
    (target / "preload_probe.py").write_text(PRELOAD_PROBE)
    # The ERP example without its monthly schedule: unpaused at creation, a scheduled DAG gets a run
    # for its latest interval at once, and that run's calls would mix into the counts of the runs
    # the tests trigger themselves.
    erp = yaml.safe_load((REPO / "dags" / "workflows" / "erp_month_end.yaml").read_text())
    erp["schedule"] = None
    (target / "workflows" / "erp_month_end.yaml").write_text(yaml.safe_dump(erp, sort_keys=False))
    for path in TEST_WORKFLOWS.glob("*.yaml"):
        shutil.copy(path, target / "workflows")
    return target


def start_stack(workers: int = 2, **kwargs) -> tuple[LocalDeployment, Path]:
    """A started deployment in a fresh directory under /tmp (the postgres OS user must reach it)."""
    base = Path(tempfile.mkdtemp(prefix="aap-deploy-"))
    base.chmod(0o711)
    dags = build_dags_folder(base / "dags")
    extra_env = {
        # A SIGKILLed worker's task instances are failed (and retried) after this long without heartbeat.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        **kwargs.pop("extra_env", {}),
    }
    dep = LocalDeployment(
        base / "stack",
        workers=workers,
        dags_folder=dags,
        pools={"llm_pool": POOL_SLOTS},
        extra_env=extra_env,
        **kwargs,
    )
    dep.up()
    return dep, base


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalDeployment]:
    """One running deployment with 2 Celery workers for the whole module; stopped afterwards."""
    dep, base = start_stack()
    try:
        yield dep
    finally:
        dep.down()
        shutil.rmtree(base, ignore_errors=True)
