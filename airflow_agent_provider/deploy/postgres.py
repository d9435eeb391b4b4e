"""
A private PostgreSQL cluster for the native launcher: ``initdb`` once, then ``postgres`` in its own session.

The machine may run its own PostgreSQL; this one lives in the launcher's directory, listens only on
a loopback port it picked, has no Unix socket (so it cannot collide with a system socket path) and a
random password. ``initdb`` refuses to run as root, so as root the cluster belongs to the
``postgres`` OS user; the launcher can still signal it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

from airflow_agent_provider.deploy._private_files import write_private
from airflow_agent_provider.deploy.processes import Proc, spawn

SUPERUSER = "airflow"


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL server binary (Debian keeps them out of PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError(f"PostgreSQL binary {name!r} not found (PATH or /usr/lib/postgresql/*/bin)")
    return candidates[-1]


def _run_as() -> str | None:
    """The OS user the cluster runs as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise RuntimeError("running as root needs a 'postgres' OS user for initdb") from exc
    return "postgres"


def _chown_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


def init_cluster(base: Path, password: str, log: Path) -> Path:
    """``initdb`` into ``base/data`` unless it already holds a cluster; returns the data dir."""
    data = base / "data"
    if (data / "PG_VERSION").exists():
        return data
    user = _run_as()
    base.mkdir(parents=True, exist_ok=True)
    pwfile = base / "pwfile"
    write_private(pwfile, password + "\n")  # chowned with the tree: initdb's user reads it
    _chown_tree(base, user)
    with open(log, "ab") as out:
        subprocess.run(
            [
                pg_bin("initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=user,
            cwd=base,
        )
    pwfile.unlink()
    return data


def start(base: Path, port: int, log: Path) -> tuple[Proc, subprocess.Popen[bytes]]:
    """
    Run ``postgres`` on 127.0.0.1:port as a session leader.

    fsync is off: the cluster holds a throw-away metadata DB for tests and benchmarks, and
    ``airflow db migrate`` is several times faster without it.
    """
    cmd = [
        pg_bin("postgres"),
        "-D",
        str(base / "data"),
        "-p",
        str(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=300",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
    ]
    proc, popen = spawn(
        "postgres", cmd, dict(os.environ), log, ports={"postgres": port}, user=_run_as(), cwd=base
    )
    proc.stop_signal = signal.SIGINT
    return proc, popen


def create_database(port: int, password: str, name: str) -> None:
    """Create database ``name`` unless it exists."""
    env = {**os.environ, "PGPASSWORD": password}
    base = [pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER, "-d", "postgres", "-tAc"]
    exists = subprocess.run(
        [*base, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    if exists.stdout.strip() != "1":
        subprocess.run([*base, f'CREATE DATABASE "{name}"'], env=env, capture_output=True, check=True)


def ready(port: int) -> bool:
    result = subprocess.run([pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"], check=False)
    return result.returncode == 0
