"""A guarded call emits its metrics through Airflow's statsd client (real UDP listener, subprocess)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.observability.test_metrics import receive_all

CALL = """
import sys
from airflow_agent_provider.guard.config import GuardConfig
from airflow_agent_provider.guard.pipeline import GuardedCaller
from airflow_agent_provider.stores import store_from_url
from tests.guard.test_pipeline import _request, sdk_caller

class Server:
    openai_base_url = sys.argv[2] + "/v1"
    anthropic_base_url = sys.argv[2]

from airflow_agent_provider.resilience.retrying import CallRetryPolicy
caller = GuardedCaller(store_from_url(sys.argv[1]), GuardConfig(dag_id="m", run_id="r", module="M", agent="a",
                                                               call_retries=CallRetryPolicy(max_attempts=3, base_delay_s=0.01)))
caller.call(_request("hi [[fail:500 x1]] [[usage: in=100 out=20]]"), step_id="s", llm_conn_id=None,
            call_target=sdk_caller(Server))
print("CALLED")
"""


def test_guarded_call_sends_call_token_cost_and_retry_metrics(tmp_path, llm):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(tmp_path),
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(sock.getsockname()[1]),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        }
        proc = subprocess.run(
            [sys.executable, "-c", CALL, f"sqlite:///{tmp_path}/s.db", llm.url],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=os.getcwd(),
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "CALLED" in proc.stdout, proc.stderr[-3000:]
        packets = set(receive_all(sock))
    assert "airflow.agent_provider.calls.openai.gpt-5-mini.ok:1|c" in packets, sorted(packets)
    assert "airflow.agent_provider.tokens.input.openai.gpt-5-mini:100|c" in packets
    assert "airflow.agent_provider.retries.openai.gpt-5-mini:1|c" in packets
    assert any(p.startswith("airflow.agent_provider.cost_usd.openai.gpt-5-mini:") for p in packets)
