"""The native launcher's command line and secrets, without starting the stack.

Every bad input (a folder with no deployment, a missing DAGs folder, a bad flag) gets one line on
stderr and a non-zero exit code, never a traceback. ``down`` with nothing to stop exits 1 (a script
that runs it in the wrong folder should notice), like ``status``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_agent_provider.deploy import local, secrets_check, settings
from airflow_agent_provider.deploy._probes import redis_ping as _redis_ping
from airflow_agent_provider.deploy.local import LocalDeployment
from airflow_agent_provider.deploy.processes import free_port, spawn, stop, wait_until


def launcher(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow_agent_provider.deploy.local", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (("down",), 1, ("no deployment recorded in", "nothing to stop")),
        (("status",), 1, ("no deployment recorded in", "nothing to report")),
        (("down", "--dir", "missing/folder"), 1, ("no deployment recorded in", "missing/folder")),
        (("status", "--dir", "missing/folder"), 1, ("no deployment recorded in", "missing/folder")),
        (
            ("up", "--dags-folder", "missing-dags", "--dir", "stack"),
            1,
            ("DAGs folder", "missing-dags", "does not exist"),
        ),
        (("restart",), 2, ("invalid choice: 'restart'",)),
        (("status", "--bogus"), 2, ("unrecognized arguments: --bogus",)),
        (("up", "--workers", "many"), 2, ("invalid int value: 'many'",)),
        (("up", "--workers", "0"), 2, ("--workers and --concurrency must be at least 1",)),
        ((), 2, ("the following arguments are required: action",)),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    tmp_path: Path, args: tuple[str, ...], code: int, expected: tuple[str, ...]
) -> None:
    result = launcher(*args, cwd=tmp_path)
    assert_one_line_error(result, *expected)
    assert result.returncode == code
    assert not (tmp_path / "stack").exists()  # a refused `up` leaves nothing behind


def test_down_of_an_already_stopped_deployment(tmp_path: Path) -> None:
    """The KeyError crash of issue 13: ``down`` after ``down`` (state moved to state.last.json)."""
    (tmp_path / "state.last.json").write_text("{}")
    assert_one_line_error(launcher("down", "--dir", str(tmp_path), cwd=tmp_path), "nothing to stop")


def test_generated_secrets_pass_the_secrets_check(tmp_path: Path) -> None:
    """The launcher runs the same init check as Compose on the secrets it generates for each deployment."""
    dep = LocalDeployment(tmp_path, dags_folder=tmp_path)
    sec = dep._secrets()
    ports = {name: free_port() for name in ("postgres", "redis", "llm", "api", "scheduler_health")}
    topo = dep._topology(ports, sec)
    env = {**settings.airflow_env(topo), **settings.init_env(topo)}
    assert secrets_check.problems(env) == []
    assert (tmp_path / local.SECRETS_FILE).stat().st_mode & 0o777 == 0o600
    (tmp_path / "other").mkdir()
    other = LocalDeployment(tmp_path / "other")._secrets()
    assert all(other[key] != sec[key] for key in sec)  # per deployment, never fixed values
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith(f"redis://:{sec['redis_password']}@127.0.0.1:")


def test_secrets_of_an_older_deployment_gain_the_new_ones(tmp_path: Path) -> None:
    old = {"fernet_key": "k", "jwt_secret": "j", "admin_password": "a", "postgres_password": "p"}
    (tmp_path / local.SECRETS_FILE).write_text(json.dumps(old))
    sec = LocalDeployment(tmp_path)._secrets()
    assert {k: sec[k] for k in old} == old  # the Postgres cluster keeps its password
    assert sec["redis_password"]
    assert sec["api_secret_key"]
    assert json.loads((tmp_path / local.SECRETS_FILE).read_text()) == sec


def test_redis_ping_authenticates(tmp_path: Path) -> None:
    """The launcher's Redis has a password: PING answers only after AUTH with it."""
    password = "pw-" + "x1y2z3" * 4
    conf = tmp_path / "redis.conf"
    conf.write_text(f'requirepass "{password}"\n')
    port = free_port()
    proc, popen = spawn(
        "redis",
        [
            shutil.which("redis-server") or "redis-server",
            str(conf),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        {},
        tmp_path / "redis.log",
    )
    try:
        wait_until(lambda: _redis_ping(port, password), 10, "redis", proc=proc)
        assert _redis_ping(port) is False
        assert _redis_ping(port, "wrong-password") is False
    finally:
        stop(proc, timeout=5, popen=popen)
