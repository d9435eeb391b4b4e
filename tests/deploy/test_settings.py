"""The shared deployment settings and the launcher's pieces that need no running stack."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from airflow_agent_provider.deploy import auth, settings
from airflow_agent_provider.deploy._local_config import pools_sync_available as _pools_sync_available
from airflow_agent_provider.deploy.hostname import worker_hostname
from airflow_agent_provider.deploy.local import LocalDeployment
from airflow_agent_provider.deploy.processes import alive, members, spawn, stop


def _local_topology(tmp_path: Path) -> settings.Topology:
    ports = {
        name: 10000 + i for i, name in enumerate(("postgres", "redis", "llm", "api", "scheduler_health"))
    }
    secrets = {
        "postgres_password": "pw",
        "fernet_key": "fk",
        "jwt_secret": "js",
        "admin_password": "ap",
        "redis_password": "rp",
        "api_secret_key": "ak",
    }
    return LocalDeployment(tmp_path)._topology(ports, secrets)


def test_local_and_compose_set_the_same_airflow_settings(tmp_path: Path) -> None:
    local = settings.airflow_env(_local_topology(tmp_path))
    assert set(local) == set(settings.airflow_env(settings.COMPOSE))
    assert local["AIRFLOW__CELERY__BROKER_URL"] == "redis://:rp@127.0.0.1:10001/0"
    assert local["AIRFLOW__AGENT_PROVIDER__STORE_URL"] == "redis://:rp@127.0.0.1:10001/2"
    assert local["AIRFLOW__API__SECRET_KEY"] == "ak"
    assert local["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:10003/execution/"
    assert local["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert json.loads(local["AIRFLOW_CONN_AGENT_OPENAI_DEFAULT"])["host"] == "http://127.0.0.1:10002/v1"


def test_admin_password_reaches_only_the_init_step() -> None:
    env = settings.airflow_env(settings.COMPOSE)
    assert not any("ADMIN_PASSWORD" in name for name in env)
    assert settings.services(settings.COMPOSE)["airflow-init"].environment == settings.init_env(
        settings.COMPOSE
    )


def test_init_steps_check_secrets_then_migrate_and_import_the_synced_pools() -> None:
    steps = settings.init_steps(settings.COMPOSE)
    assert steps[0] == settings.SECRETS_CHECK
    assert steps[1] == ("airflow", "db", "migrate")
    sync = next(s for s in steps if s[:3] == settings.POOLS_SYNC)
    assert steps.index(sync) < steps.index(("airflow", "pools", "import", settings.COMPOSE.pools_file))
    assert settings.COMPOSE.pools_file in sync


def test_workers_on_one_host_get_distinct_names_and_ports() -> None:
    one = settings.local_process_env("worker", port=1, name="worker1")
    two = settings.local_process_env("worker", port=2, name="worker2")
    assert one["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] != two["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]
    assert settings.local_worker_args("worker1", 2)[:2] == ("--celery-hostname", "worker1@%h")


def test_worker_hostname(monkeypatch) -> None:
    monkeypatch.setenv(settings.WORKER_NAME_ENV, "worker7")
    assert worker_hostname().startswith("worker7.")
    monkeypatch.delenv(settings.WORKER_NAME_ENV)
    assert not worker_hostname().startswith("worker7.")


def test_passwords_file_is_private_json(tmp_path: Path) -> None:
    target = tmp_path / "cfg" / "passwords.json"
    auth.write_passwords("admin:admin,ops:op", 'p"w', target)
    assert json.loads(target.read_text()) == {"admin": 'p"w', "ops": 'p"w'}
    assert target.stat().st_mode & 0o777 == 0o600


def test_pools_sync_probe_matches_the_cli() -> None:
    from airflow_agent_provider.cli.main import build_parser

    try:
        build_parser().parse_args(["pools", "sync", "--help"])
        has_it = True
    except SystemExit as exc:
        has_it = exc.code == 0
    assert _pools_sync_available() is has_it


def test_stop_reaches_children_in_their_own_process_group(tmp_path: Path) -> None:
    """Like an Airflow task process, a child that moved to its own group is still stopped (same session)."""
    script = (
        "import os, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import os, time; os.setpgid(0, 0); time.sleep(60)'])\n"
        "time.sleep(60)\n"
    )
    proc, popen = spawn("t", [sys.executable, "-c", script], {}, tmp_path / "t.log")
    deadline = time.monotonic() + 10
    while len(members(proc)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = members(proc)
    assert len(pids) == 2
    stop(proc, timeout=2, popen=popen)
    assert not alive(proc)
    for pid in pids:
        state = Path(f"/proc/{pid}/stat")
        assert not state.exists() or state.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert popen.returncode == -signal.SIGTERM


def test_down_without_up_stops_nothing(tmp_path: Path) -> None:
    """From Python a no-op with the full report; the command line says so (tests/deploy/test_local_cli.py)."""
    assert LocalDeployment(tmp_path).down() == {"stopped": [], "ports_open": [], "still_running": []}


def test_task_supervisors_of_both_deployments_wait_at_most_one_second(tmp_path: Path) -> None:
    """
    Airflow's task supervisor, once a task process has closed its sockets but is not reaped yet,
    sleeps ``[workers] min_heartbeat_interval`` before it looks again (5 s by default, paid by about
    half of the tasks of a 500-task run here). Both deployments set 1 s; the supervisor reads it.
    """
    import os
    import subprocess

    for env in (settings.airflow_env(settings.COMPOSE), settings.airflow_env(_local_topology(tmp_path))):
        assert env["AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"] == "1"
    probe = "from airflow.sdk.execution_time import supervisor; print(supervisor.MIN_HEARTBEAT_INTERVAL)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={
            **os.environ,
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "PYTHONPATH": os.pathsep.join(sys.path),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "1"
