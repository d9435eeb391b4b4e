"""The README's main job: ``airflow-agents demo`` runs every example through ``airflow dags test``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REPO = Path(__file__).parents[2]


def test_demo_runs_the_examples_green(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPENAI_", "ANTHROPIC_"))}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_agent_provider.cli.main",
            "demo",
            "--airflow-home",
            str(tmp_path / "home"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "erp_month_end" in out
    assert "quickstart" in out
    workflows = sorted((REPO / "dags" / "workflows").glob("*.yaml"))
    assert out.count("=== airflow dags test") == len(workflows)
    assert out.count("outcome success") == len(workflows)
    assert "HR.payroll_summary" in out
    assert "TOTAL" in out
    assert "local test server" in out
