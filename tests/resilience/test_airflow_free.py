"""The engines must run where Airflow is not imported (triggerer code paths, plain scripts)."""

from __future__ import annotations

import subprocess
import sys


def test_resilience_and_stores_do_not_import_airflow():
    code = (
        "import sys, airflow_agent_provider.resilience, airflow_agent_provider.stores.sqlite, "
        "airflow_agent_provider.stores.redis; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
