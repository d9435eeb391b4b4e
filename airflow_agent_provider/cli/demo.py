"""
``airflow-agents demo``: run the example workflows through real Airflow on the embedded defaults.

Embedded defaults: a SQLite metadata DB and the SQLite store under a private AIRFLOW_HOME, and the
project's local OpenAI/Anthropic-compatible server, unless ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``
are set (then that provider's agents call the real API; keys go into the Airflow connection of the
child processes only and are never printed). Each workflow runs with ``airflow dags test`` — the
real scheduler-less runner of Airflow — and its result is read back from the metadata DB.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from airflow_agent_provider.definitions import Workflow, WorkflowDefinitionError, load_workflows

#: ``[agent_provider]`` batch polling of the demo against the local server: every 0.2 s, at most 0.5 s.
DEMO_BATCH_POLLING: dict[str, str] = {"batch_poll_interval": "0.2", "batch_max_poll_interval": "0.5"}


def demo_workflows(
    dags_folder: Path, only: list[str] | None = None
) -> tuple[list[Workflow], list[WorkflowDefinitionError]]:
    """
    The workflows the demo runs: every valid definition under ``<dags_folder>/workflows`` (or the
    ``only`` ones), and the files that did not load. ``tests/definitions/test_examples.py`` reads
    the same list to check that every YAML feature is shown by an example the demo runs.
    """
    workflows, errors = load_workflows(dags_folder / "workflows")
    return [wf for wf in workflows if not only or wf.name in only], errors


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_local_llm_server(log_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    with open(log_dir / "llm_server.log", "w") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow_agent_provider.testing.llm_server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the local LLM server exited; see {log_dir / 'llm_server.log'}")
        try:
            with urllib.request.urlopen(url + "/_admin/stats", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the local LLM server did not start within 30 s")


def _connection_env(local_url: str | None) -> tuple[dict[str, str], list[str]]:
    """AIRFLOW_CONN_* for both providers: real keys where given, the local server otherwise."""
    env: dict[str, str] = {}
    notes: list[str] = []
    for provider, key_var, conn_type, local_host in (
        ("openai", "OPENAI_API_KEY", "agent_openai", f"{local_url}/v1" if local_url else None),
        ("anthropic", "ANTHROPIC_API_KEY", "agent_anthropic", local_url),
    ):
        conn_var = f"AIRFLOW_CONN_AGENT_{provider.upper()}_DEFAULT"
        if os.environ.get(conn_var):
            notes.append(f"{provider}: using the connection already set in {conn_var}")
            continue
        if os.environ.get(key_var):
            env[conn_var] = json.dumps({"conn_type": conn_type, "password": os.environ[key_var]})
            notes.append(f"{provider}: real API ({key_var} is set)")
        else:
            env[conn_var] = json.dumps(
                {"conn_type": conn_type, "host": local_host, "password": "local-demo-key"}
            )
            notes.append(f"{provider}: local test server at {local_url}")
    return env, notes


def run_demo(dags_folder: Path, airflow_home: Path | None = None, only: list[str] | None = None) -> int:
    dags_folder = dags_folder.resolve()
    workflows, errors = demo_workflows(dags_folder, only)
    for err in errors:
        print(f"FAIL {err}", file=sys.stderr)
    names = [wf.name for wf in workflows]
    if not names:
        print("no workflows to run", file=sys.stderr)
        return 1

    home = (airflow_home or Path(os.environ.get("AIRFLOW_HOME") or ".airflow-demo")).resolve()
    log_dir = home / "demo-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = os.environ.copy()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__AGENT_PROVIDER__STORE_URL": env.get(
                "AIRFLOW__AGENT_PROVIDER__STORE_URL", f"sqlite:///{home / 'agent_provider.db'}"
            ),
        }
    )
    if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY")):
        # The local server answers a batch within a second; the default interval (30 s, backing
        # off) is for real providers, whose batches take minutes to hours. A given value is kept.
        for option, seconds in DEMO_BATCH_POLLING.items():
            env.setdefault(f"AIRFLOW__AGENT_PROVIDER__{option.upper()}", seconds)
    needs_local = not (os.environ.get("OPENAI_API_KEY") and os.environ.get("ANTHROPIC_API_KEY"))
    server, local_url = (None, None)
    if needs_local:
        server, local_url = _start_local_llm_server(log_dir)
    conn_env, notes = _connection_env(local_url)
    env.update(conn_env)
    print(f"AIRFLOW_HOME={home}\nDAGs folder={dags_folder}")
    for note in notes:
        print(note)

    try:
        print("airflow db migrate ...", flush=True)
        with open(log_dir / "db-migrate.log", "w") as migrate_log:
            subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                env=env,
                check=True,
                stdout=migrate_log,
                stderr=subprocess.STDOUT,
            )
        exit_code = 0
        for name in names:
            log_path = log_dir / f"{name}.log"
            print(f"\n=== airflow dags test {name}   (log: {log_path})", flush=True)
            started = time.monotonic()
            with open(log_path, "w") as run_log:  # a failed run is reported below, not raised
                proc = subprocess.run(
                    [sys.executable, "-m", "airflow", "dags", "test", name],
                    env=env,
                    check=False,
                    stdout=run_log,
                    stderr=subprocess.STDOUT,
                )
            elapsed = time.monotonic() - started
            shown = subprocess.run(
                [sys.executable, "-m", "airflow_agent_provider.cli.main", "result", name],
                env=env,
                check=False,
                capture_output=True,
                text=True,
            )
            print(shown.stdout.rstrip() or shown.stderr.rstrip())
            print(f"(airflow dags test exit code {proc.returncode}, {elapsed:.1f} s)")
            if proc.returncode != 0 or shown.returncode != 0:
                exit_code = 1
        return exit_code
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
