"""The workers' preload: what it imports, that it creates nothing a fork would share, and how Celery gets it.

That a task process on the running stack inherits it is checked in ``test_distributed.py``.
"""

from __future__ import annotations

import os
import sys

from airflow_agent_provider.deploy import settings
from airflow_agent_provider.deploy.celery_config import CELERY_CONFIG, PRELOAD_MODULE
from tests.fixtures.python_json import run_python_json

PROBE = """
import json, os, sys, threading
import airflow.sdk  # a Celery worker has Airflow loaded before Celery imports its `imports`

fds, threads = set(os.listdir("/proc/self/fd")), threading.active_count()
import airflow_agent_provider.deploy.worker_preload as preload

print(json.dumps({
    "new_fds": sorted(set(os.listdir("/proc/self/fd")) - fds),
    "threads": [threads, threading.active_count()],
    "loaded": {m: m in sys.modules for m in ("openai", "anthropic", "genai_prices", "fastapi")},
    "provider": [m for m in preload.provider_modules() if m not in sys.modules],
    "skipped_loaded": sorted(m for m in sys.modules if m.startswith(
        tuple(f"airflow_agent_provider.{p}." for p in preload.SKIPPED)) and m != preload.__name__),
}))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def test_preload_imports_the_provider_and_both_sdks_and_opens_nothing() -> None:
    report = run_python_json(PROBE, env=_env())
    assert report["loaded"] == {"openai": True, "anthropic": True, "genai_prices": True, "fastapi": False}
    assert report["provider"] == []  # every module a task can import is loaded
    assert report["skipped_loaded"] == []  # not the launcher, CLI, test server or UI plugin
    assert report["new_fds"] == []  # no socket, connection or file shared with forked task processes
    assert report["threads"][1] == report["threads"][0]


def test_celery_config_is_airflows_plus_the_preload() -> None:
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    assert {k: v for k, v in CELERY_CONFIG.items() if k != "imports"} == {
        k: v for k, v in DEFAULT_CELERY_CONFIG.items() if k != "imports"
    }
    assert CELERY_CONFIG["imports"][-1] == PRELOAD_MODULE
    assert PRELOAD_MODULE.endswith("worker_preload")


def test_both_deployments_point_celery_at_it() -> None:
    option = settings.airflow_env(settings.COMPOSE)["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"]
    assert option == "airflow_agent_provider.deploy.celery_config.CELERY_CONFIG"
    # Airflow's own resolution of the option, in a fresh process that has it set
    resolved = run_python_json(
        "import json\n"
        "from airflow.providers.celery.executors.celery_executor_utils import get_celery_configuration\n"
        "print(json.dumps(list(get_celery_configuration()['imports'])))",
        env={**_env(), "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": option},
    )
    assert resolved[-1] == PRELOAD_MODULE
