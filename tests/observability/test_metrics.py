"""Metrics reach a real UDP statsd listener through Airflow's Stats; without Airflow they are a no-op.

Airflow reads ``[metrics]`` when it is first imported, so each case runs in a fresh subprocess with
its environment; the test binds the UDP socket the subprocess's statsd client sends to.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from airflow_agent_provider.observability import metrics

EMIT = """
import sys
import airflow_agent_provider.observability.metrics as m
early = [n for n, mod in sys.modules.items() if (n == "airflow" or n.startswith("airflow.")) and mod is not None]
assert not early, f"Airflow imported at module import: {early[:5]}"
m.record_call("openai", "gpt-5.1-mini", "ok", {"input_tokens": 1200, "output_tokens": 345}, 0.0012346, 0.25, 3)
m.record_call("anthropic", "claude-sonnet-4-5", "ok", None, None, 0.0, 1)
m.record_call("openai", "gpt-5.1-mini", "rate_limited", None, None, 0.0, 1)
m.record_budget_refused("day:erp_month_end:2026-11-30")
m.record_breaker_open("anthropic", "claude-sonnet-4-5")
print("EMITTED")
"""


def run_emitter(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", EMIT], env=env, capture_output=True, text=True, check=False, timeout=120
    )


def receive_all(sock: socket.socket) -> list[str]:
    sock.settimeout(0.5)
    packets = []
    try:
        while True:
            packets.extend(sock.recv(65535).decode().splitlines())
    except TimeoutError:
        return packets


def test_record_functions_send_statsd_packets(tmp_path):
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
        result = run_emitter(env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "EMITTED" in result.stdout, result.stderr[-3000:]
        packets = [p for p in receive_all(sock) if p.startswith("airflow.agent_provider.")]
    expected = {
        "airflow.agent_provider.calls:1|c",
        "airflow.agent_provider.calls.openai.gpt-5_1-mini.ok:1|c",
        "airflow.agent_provider.calls.openai.gpt-5_1-mini.rate_limited:1|c",
        "airflow.agent_provider.calls.anthropic.claude-sonnet-4-5.ok:1|c",
        "airflow.agent_provider.tokens.input:1200|c",
        "airflow.agent_provider.tokens.input.openai.gpt-5_1-mini:1200|c",
        "airflow.agent_provider.tokens.output:345|c",
        "airflow.agent_provider.tokens.output.openai.gpt-5_1-mini:345|c",
        "airflow.agent_provider.cost_usd:1235|c",  # micro-dollars, rounded
        "airflow.agent_provider.cost_usd.openai.gpt-5_1-mini:1235|c",
        "airflow.agent_provider.cost_unknown.anthropic.claude-sonnet-4-5:1|c",
        "airflow.agent_provider.rate_limit.wait_ms:250.000000|ms",
        "airflow.agent_provider.retries:2|c",
        "airflow.agent_provider.retries.openai.gpt-5_1-mini:2|c",
        "airflow.agent_provider.budget.refused:1|c",
        "airflow.agent_provider.budget.refused.day:1|c",
        "airflow.agent_provider.breaker.open:1|c",
        "airflow.agent_provider.breaker.open.anthropic.claude-sonnet-4-5:1|c",
    }
    assert expected <= set(packets), sorted(set(packets))
    assert packets.count("airflow.agent_provider.calls:1|c") == 3
    # An unknown price is never sent as $0, and a failed call without usage sends no tokens.
    assert not any(p.startswith("airflow.agent_provider.cost_usd.anthropic") for p in packets)
    assert packets.count("airflow.agent_provider.tokens.input:1200|c") == 1


def test_without_airflow_every_function_is_a_no_op(tmp_path):
    blocked = "import sys; sys.modules['airflow'] = None\n" + EMIT
    result = subprocess.run(
        [sys.executable, "-c", blocked],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "EMITTED" in result.stdout, result.stderr[-3000:]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gpt-5-mini", "gpt-5-mini"),
        ("claude-3.5", "claude-3_5"),
        ("a/b:c d", "a_b_c_d"),
        ("", "unknown"),
        (None, "unknown"),
        ("x" * 100, "x" * 64),
    ],
)
def test_segment(value, expected):
    assert metrics.segment(value) == expected


def test_scope_kind_and_micro_usd():
    assert metrics.scope_kind("agent:erp:r1:Finance.rec") == "agent"
    assert metrics.scope_kind("") == "unknown"
    assert metrics.micro_usd(0.0000004) == 0
    assert metrics.micro_usd(1.5) == 1_500_000
