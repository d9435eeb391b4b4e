"""Both deployments start the dag-processor and the triggerer through the provider's fix entry points.

Each entry point is Airflow's own command with its arguments (``deploy/_entry_point.py``); what each fix does
is tested in ``test_dag_processor_fix.py`` and ``test_triggerer_fix.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_agent_provider.deploy import settings

REPO = Path(__file__).parents[2]

ENTRY_POINTS = [
    ("airflow-dag-processor", "airflow_agent_provider.deploy.dag_processor", "dag-processor"),
    ("airflow-triggerer", "airflow_agent_provider.deploy.triggerer", "triggerer"),
]


@pytest.mark.parametrize(("service", "module", "command"), ENTRY_POINTS)
def test_both_deployments_run_the_fixed_entry_point(service, module, command):
    # One service list for both: the native launcher and docker-compose.yml (generated from it).
    assert settings.services(settings.COMPOSE)[service].command == ("python", "-m", module)
    assert f'command: ["python", "-m", "{module}"]' in (REPO / "docker-compose.yml").read_text()


@pytest.mark.parametrize(("service", "module", "command"), ENTRY_POINTS)
def test_the_entry_point_is_airflows_command(service, module, command):
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"usage: airflow {command}" in proc.stdout.lower()
