"""
Native multi-process launcher: the Compose deployment on one machine, without containers.

``python -m airflow_agent_provider.deploy.local up|down|status [--dir DIR] [--workers N] [--llm-latency S]``

``up`` starts, in ``DIR`` (default ``./.airflow-local``): a private PostgreSQL cluster and a private
``redis-server`` on free loopback ports, the local LLM server, runs the init steps of
:mod:`.settings` (``airflow db migrate``, admin credentials, pools), then the Airflow components
with the CeleryExecutor: api-server, scheduler, dag-processor, triggerer and N Celery workers. Each
is a real process in its own session with its own log under ``DIR/logs``. ``DIR/state.json``
records pids, ports and URLs, so ``down`` stops exactly what ``up`` started (and nothing else) and
``status`` can report on it from another shell.

Every deployment gets its own secrets (``DIR/secrets.json``, 0600): Postgres, Redis
(``requirepass``, in a 0600 config file rather than on the command line), admin password, JWT
secret, API secret key and Fernet key. The init steps include the same secrets check as Compose.

Exit codes: 0 success; 1 ``up`` failed (everything it started is stopped again), ``status`` found
a component unhealthy, or ``down``/``status`` found no deployment recorded in ``DIR`` (nothing to
stop is reported, not ignored: a script that runs ``down`` in the wrong folder should notice);
2 bad arguments. Errors are one line on stderr, never a traceback.

The same is available from Python for tests and benchmarks: :class:`LocalDeployment`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from airflow_agent_provider.deploy import postgres, settings
from airflow_agent_provider.deploy._private_files import write_private
from airflow_agent_provider.deploy.auth import fetch_token
from airflow_agent_provider.deploy.processes import (
    Proc,
    alive,
    free_port,
    kill_session,
    log_tail,
    members,
    port_open,
    spawn,
    stop,
    wait_until,
)
from airflow_agent_provider.deploy.secrets_check import token

DEFAULT_DIR = ".airflow-local"
STATE_FILE = "state.json"
SECRETS_FILE = "secrets.json"
AIRFLOW_COMPONENTS = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
TERMINAL_STATES = {"success", "failed"}


class LLMAdmin:
    """Admin client of the local LLM server (stats, reset, configure) by URL."""

    def __init__(self, url: str) -> None:
        from airflow_agent_provider.testing.llm_server import _AdminClient

        client = _AdminClient()
        client.url = url
        self._client = client
        self.url = url

    def stats(self) -> dict[str, Any]:
        return self._client.stats()

    def reset(self) -> None:
        self._client.reset()

    def configure(self, **fields: Any) -> dict[str, Any]:
        return self._client.configure(**fields)


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_private_json(path: Path, data: dict[str, Any]) -> None:
    write_private(path, json.dumps(data, indent=2))


def _new_secrets() -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        "fernet_key": Fernet.generate_key().decode(),
        "jwt_secret": token(48),
        "api_secret_key": token(48),
        "admin_password": token(16),
        "postgres_password": token(24),
        "redis_password": token(24),
    }


def _http_json(
    url: str, *, method: str = "GET", body: Any = None, token: str | None = None, timeout: float = 10.0
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


class LocalDeployment:
    """
    The whole stack as local processes; see the module docstring.

    :param dir: Working directory (state, secrets, logs, Postgres data, AIRFLOW_HOME).
    :param workers: Number of Celery workers.
    :param dags_folder: DAGs every component loads (default ``./dags``).
    :param llm_latency: Seconds the local LLM server waits before every answer.
    :param extra_env: Added to every Airflow process (e.g. real ``AIRFLOW_CONN_*``).
    :param concurrency: Task slots of each worker.
    :param pools: Extra pools ``{name: slots}`` imported after the workflow pools.
    """

    def __init__(
        self,
        dir: str | Path = DEFAULT_DIR,
        workers: int = 2,
        dags_folder: str | Path = "dags",
        llm_latency: float = 0.0,
        extra_env: dict[str, str] | None = None,
        concurrency: int = 2,
        pools: dict[str, int] | None = None,
    ) -> None:
        self.dir = Path(dir).resolve()
        self.workers = workers
        self.dags_folder = Path(dags_folder).resolve()
        self.llm_latency = llm_latency
        self.extra_env = dict(extra_env or {})
        self.concurrency = concurrency
        self.pools = dict(pools or {})
        self._popens: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None
        self._state: dict[str, Any] | None = _load_json(self.dir / STATE_FILE)

    # ------------------------------------------------------------------ paths and state

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def state(self) -> dict[str, Any]:
        if self._state is None:
            raise RuntimeError(f"no deployment recorded in {self.dir / STATE_FILE}; run `up` first")
        return self._state

    def _procs(self) -> list[Proc]:
        return [Proc.from_dict(p) for p in self.state.get("processes", [])]

    def _record(self, proc: Proc, popen: subprocess.Popen[bytes] | None = None) -> Proc:
        self.state.setdefault("processes", []).append(proc.to_dict())
        if popen is not None:
            self._popens[proc.name] = popen
        self._save()
        return proc

    def _save(self) -> None:
        _write_private_json(self.dir / STATE_FILE, self.state)

    def _secrets(self) -> dict[str, str]:
        """This deployment's secrets, generated once; a file from an older version gains the new ones."""
        path = self.dir / SECRETS_FILE
        loaded = _load_json(path) or {}
        missing = {k: v for k, v in _new_secrets().items() if k not in loaded}
        if missing:
            loaded.update(missing)
            _write_private_json(path, loaded)
        return loaded

    # ------------------------------------------------------------------ topology and env

    def _topology(self, ports: dict[str, int], sec: dict[str, str]) -> settings.Topology:
        llm = f"http://127.0.0.1:{ports['llm']}"
        return settings.Topology(
            postgres_host="127.0.0.1",
            postgres_port=str(ports["postgres"]),
            postgres_user=postgres.SUPERUSER,
            postgres_password=sec["postgres_password"],
            postgres_db="airflow",
            redis_host="127.0.0.1",
            redis_port=str(ports["redis"]),
            redis_password=sec["redis_password"],
            api_bind="127.0.0.1",
            api_host="127.0.0.1",
            api_port=str(ports["api"]),
            api_workers="1",
            scheduler_health_port=str(ports["scheduler_health"]),
            llm_host="127.0.0.1",
            llm_port=str(ports["llm"]),
            llm_latency=str(self.llm_latency),
            dags_folder=str(self.dags_folder),
            config_dir=str(self.dir / "config"),
            logs_folder=str(self.logs / "airflow"),
            fernet_key=sec["fernet_key"],
            jwt_secret=sec["jwt_secret"],
            api_secret_key=sec["api_secret_key"],
            admin_user="admin",
            admin_password=sec["admin_password"],
            dags_paused="False",
            worker_concurrency=str(self.concurrency),
            openai_base_url=f"{llm}/v1",
            openai_api_key="local-key",
            anthropic_base_url=llm,
            anthropic_api_key="local-key",
        )

    def _base_env(self) -> dict[str, str]:
        """The caller's environment without its Airflow settings, with this venv's tools first."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["AIRFLOW_HOME"] = str(self.dir / "airflow-home")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    @property
    def env(self) -> dict[str, str]:
        """Environment for running ``airflow`` CLI commands against this deployment."""
        return dict(self.state["env"])

    @property
    def api_url(self) -> str:
        return str(self.state["urls"]["api"])

    @property
    def llm(self) -> LLMAdmin:
        return LLMAdmin(self.state["urls"]["llm"])

    def _argv(self, cmd: Iterable[str], env: dict[str, str]) -> list[str]:
        argv = list(cmd)
        if argv[0] == "python":
            argv[0] = sys.executable
        else:
            argv[0] = shutil.which(argv[0], path=env["PATH"]) or argv[0]
        return argv

    # ------------------------------------------------------------------ up

    def up(self, timeout: float = 180.0) -> LocalDeployment:
        """Start everything and wait until every component is healthy; on failure stop what started."""
        if self._state is not None and any(alive(p) for p in self._procs()):
            raise RuntimeError(f"a deployment recorded in {self.dir} is still running; run `down` first")
        if not self.dags_folder.is_dir():
            raise FileNotFoundError(f"DAGs folder {self.dags_folder} does not exist")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o711)  # the postgres OS user must reach its data dir
        (self.dir / ".gitignore").write_text("*\n")
        self.logs.mkdir(exist_ok=True)
        (self.dir / "config").mkdir(exist_ok=True)
        sec = self._secrets()
        ports = {
            name: free_port()
            for name in ("postgres", "redis", "llm", "api", "scheduler_health", "triggerer_log")
        }
        for i in range(1, self.workers + 1):
            ports[f"worker{i}_log"] = free_port()
        topo = self._topology(ports, sec)
        env = {**self._base_env(), **settings.airflow_env(topo), **self.extra_env}
        self._state = {
            "dir": str(self.dir),
            "started_at": time.time(),
            "ports": ports,
            "urls": {
                "api": topo.api_url,
                "llm": f"http://127.0.0.1:{ports['llm']}",
                "postgres": f"postgresql://{topo.postgres_user}@127.0.0.1:{ports['postgres']}/airflow",
                "redis": f"redis://127.0.0.1:{ports['redis']}",
            },
            "admin": {"user": topo.admin_user},
            "workers": self.workers,
            "env": env,
            "processes": [],
        }
        self._save()
        try:
            self._start_infra(topo, sec, ports, timeout)
            self._init(topo, env)
            self._start_airflow(topo, env, ports, timeout)
        except BaseException:
            self.down()
            raise
        return self

    def _start_infra(
        self, topo: settings.Topology, sec: dict[str, str], ports: dict[str, int], timeout: float
    ) -> None:
        services = settings.services(topo)
        pg_base = self.dir / "postgres"
        postgres.init_cluster(pg_base, sec["postgres_password"], self.logs / "postgres.log")
        pg = self._record(*postgres.start(pg_base, ports["postgres"], self.logs / "postgres.log"))
        redis_bin = shutil.which("redis-server") or "redis-server"
        (self.dir / "redis").mkdir(exist_ok=True)
        # The password goes into a private config file: a command line is readable by every local user.
        redis_conf = self.dir / "redis" / "redis.conf"
        write_private(redis_conf, f'requirepass "{sec["redis_password"]}"\n')
        redis = self._record(
            *spawn(
                "redis",
                [
                    redis_bin,
                    str(redis_conf),
                    "--port",
                    str(ports["redis"]),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.dir / "redis"),
                    "--protected-mode",
                    "yes",
                ],
                dict(os.environ),
                self.logs / "redis.log",
                ports={"redis": ports["redis"]},
            )
        )
        llm_cmd = self._argv(services["llm-server"].command, self._base_env())
        llm = self._record(
            *spawn(
                "llm-server",
                llm_cmd,
                self._base_env(),
                self.logs / "llm-server.log",
                ports={"llm": ports["llm"]},
            )
        )
        wait_until(lambda: postgres.ready(ports["postgres"]), timeout, "postgres", proc=pg)
        postgres.create_database(ports["postgres"], sec["postgres_password"], topo.postgres_db)
        wait_until(lambda: _redis_ping(ports["redis"], sec["redis_password"]), timeout, "redis", proc=redis)
        wait_until(lambda: self.llm.stats() is not None, timeout, "llm-server", proc=llm)

    def _init(self, topo: settings.Topology, env: dict[str, str]) -> None:
        """The init steps of :mod:`.settings`, then any extra pools of this deployment."""
        init_env = {**env, **settings.init_env(topo)}
        log = self.logs / "airflow-init.log"
        for step in settings.init_steps(topo):
            if tuple(step[: len(settings.POOLS_SYNC)]) == settings.POOLS_SYNC and not _pools_sync_available():
                _append(
                    log, f"skipped (this provider version has no `{' '.join(settings.POOLS_SYNC)}`): {step}\n"
                )
                continue
            if step[:3] == ("airflow", "pools", "import") and not Path(step[3]).exists():
                _append(log, f"skipped (no pools file): {step}\n")
                continue
            self._run_step(step, init_env, log)
        if self.pools:
            extra = self.dir / "config" / "extra_pools.json"
            extra.write_text(
                json.dumps(
                    {
                        name: {
                            "slots": slots,
                            "description": "LocalDeployment(pools=...)",
                            "include_deferred": True,
                        }
                        for name, slots in self.pools.items()
                    }
                )
            )
            self._run_step(("airflow", "pools", "import", str(extra)), init_env, log)

    def _run_step(self, step: Iterable[str], env: dict[str, str], log: Path) -> None:
        argv = self._argv(step, env)
        _append(log, f"$ {' '.join(argv)}\n")
        with open(log, "ab") as out:
            result = subprocess.run(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False
            )
        if result.returncode != 0:
            raise RuntimeError(
                f"init step failed (exit {result.returncode}): {' '.join(argv)}; log: {log}\n"
                f"{log_tail(str(log))}"
            )

    def _start_airflow(
        self, topo: settings.Topology, env: dict[str, str], ports: dict[str, int], timeout: float
    ) -> None:
        services = settings.services(topo)
        started: dict[str, Proc] = {}
        for name in AIRFLOW_COMPONENTS:
            extra = (
                settings.local_process_env("triggerer", port=ports["triggerer_log"])
                if name == "airflow-triggerer"
                else {}
            )
            proc_env = {**env, **services[name].environment, **extra}
            started[name] = self._record(
                *spawn(
                    name,
                    self._argv(services[name].command, proc_env),
                    proc_env,
                    self.logs / f"{name}.log",
                    ports=_component_ports(name, ports),
                )
            )
        worker = services["airflow-worker"]
        for i in range(1, self.workers + 1):
            wname = f"worker{i}"
            proc_env = {**env, **settings.local_process_env("worker", port=ports[f"{wname}_log"], name=wname)}
            argv = [
                *self._argv(worker.command, proc_env),
                *settings.local_worker_args(wname, self.concurrency),
            ]
            started[wname] = self._record(
                *spawn(
                    wname,
                    argv,
                    proc_env,
                    self.logs / f"{wname}.log",
                    ports={"log_server": ports[f"{wname}_log"]},
                )
            )
        wait_until(
            lambda: _http_ok(f"{topo.api_url}/api/v2/monitor/health"),
            timeout,
            "api-server",
            proc=started["airflow-apiserver"],
        )
        wait_until(
            lambda: _http_ok(f"http://127.0.0.1:{ports['scheduler_health']}/health"),
            timeout,
            "scheduler",
            proc=started["airflow-scheduler"],
        )
        for name in ("dag_processor", "triggerer"):
            proc = started["airflow-dag-processor" if name == "dag_processor" else "airflow-triggerer"]
            wait_until(
                lambda n=name: self._monitor().get(n, {}).get("status") == "healthy", timeout, name, proc=proc
            )
        for i in range(1, self.workers + 1):
            wname = f"worker{i}"
            wait_until(
                lambda w=wname: port_open(ports[f"{w}_log"]) and _worker_ready(self.logs / f"{w}.log"),
                timeout,
                wname,
                proc=started[wname],
            )

    def _monitor(self) -> dict[str, Any]:
        health = _http_json(f"{self.api_url}/api/v2/monitor/health", timeout=5)
        return health if isinstance(health, dict) else {}

    # ------------------------------------------------------------------ down and status

    def down(self, timeout: float = 15.0) -> dict[str, Any]:
        """Stop every recorded process (workers first, Postgres last); returns what was stopped."""
        if self._state is None:
            return {"stopped": [], "ports_open": [], "still_running": []}
        procs = self._procs()
        for proc in reversed(procs):
            stop(proc, timeout=timeout, popen=self._popens.get(proc.name))
        for popen in self._popens.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=1)
        ports = list(self.state.get("ports", {}).values())
        deadline = time.monotonic() + 10
        while any(port_open(p) for p in ports) and time.monotonic() < deadline:
            time.sleep(0.1)
        report = {
            "stopped": [p.name for p in procs],
            "ports_open": [p for p in ports if port_open(p)],
            "still_running": [p.name for p in procs if alive(p)],
        }
        (self.dir / STATE_FILE).rename(self.dir / "state.last.json")
        self._state = None
        self._popens.clear()
        self._token = None
        return report

    def status(self) -> dict[str, dict[str, Any]]:
        """Per component: pid, running, healthy (by the component's own health endpoint)."""
        ports = self.state["ports"]
        redis_password = _url_password(self.state.get("env", {}).get("AIRFLOW__CELERY__BROKER_URL", ""))
        try:
            monitor = self._monitor()
        except Exception:
            monitor = {}
        checks: dict[str, Callable[[], bool]] = {
            "postgres": lambda: postgres.ready(ports["postgres"]),
            "redis": lambda: _redis_ping(ports["redis"], redis_password),
            "llm-server": lambda: _http_ok(self.state["urls"]["llm"] + "/_admin/stats"),
            "airflow-apiserver": lambda: monitor.get("metadatabase", {}).get("status") == "healthy",
            "airflow-scheduler": lambda: _http_ok(f"http://127.0.0.1:{ports['scheduler_health']}/health"),
            "airflow-dag-processor": lambda: monitor.get("dag_processor", {}).get("status") == "healthy",
            "airflow-triggerer": lambda: monitor.get("triggerer", {}).get("status") == "healthy",
        }
        report: dict[str, dict[str, Any]] = {}
        for proc in self._procs():
            running = alive(proc)
            check = checks.get(proc.name) or partial(_log_server_open, proc)
            try:
                healthy = running and bool(check())
            except Exception:
                healthy = False
            report[proc.name] = {
                "pid": proc.pid,
                "running": running,
                "healthy": healthy,
                "processes": len(members(proc)),
                "ports": proc.ports,
                "log": proc.log,
            }
        return report

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker ``i`` (1-based) and everything it started, like a crashed container."""
        proc = next(p for p in self._procs() if p.name == f"worker{i}")
        kill_session(proc, self._popens.get(proc.name))

    # ------------------------------------------------------------------ REST API

    def _api(self, method: str, path: str, body: Any = None) -> Any:
        for attempt in range(2):
            if self._token is None:
                sec = _load_json(self.dir / SECRETS_FILE) or {}
                self._token = fetch_token(self.api_url, self.state["admin"]["user"], sec["admin_password"])
            try:
                return _http_json(
                    self.api_url + path, method=method, body=body, token=self._token, timeout=30
                )
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 0:
                    self._token = None
                    continue
                raise
        raise AssertionError("unreachable")

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` (it is in the API)."""
        quoted = urllib.parse.quote(dag_id)
        wait_until(lambda: self._api("GET", f"/api/v2/dags/{quoted}") is not None, timeout, f"DAG {dag_id}")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run through the REST API; returns its run_id."""
        self.wait_for_dag(dag_id)
        run = self._api(
            "POST",
            f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns",
            {"logical_date": None, "conf": conf or {}},
        )
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        run = self._api(
            "GET", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id)}"
        )
        return str(run["state"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        """Poll the run until it finishes; returns its final state."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_STATES:
                return state
            time.sleep(1.0)
        raise TimeoutError(f"{dag_id}/{run_id} still {state!r} after {timeout:.0f} s")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (task_id, map_index, state, hostname, pid, start/end dates)."""
        items: list[dict[str, Any]] = []
        base = f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances"
        while True:
            page = self._api("GET", f"{base}?limit=100&offset={len(items)}")
            items.extend(page["task_instances"])
            if not page["task_instances"] or len(items) >= page["total_entries"]:
                return items


def _component_ports(name: str, ports: dict[str, int]) -> dict[str, int]:
    return {
        "airflow-apiserver": {"api": ports["api"]},
        "airflow-scheduler": {"health": ports["scheduler_health"]},
        "airflow-triggerer": {"log_server": ports["triggerer_log"]},
    }.get(name, {})


def _log_server_open(proc: Proc) -> bool:
    """The health check of a component without one of its own: its log server answers."""
    return port_open(proc.ports["log_server"])


def _append(path: Path, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


def _pools_sync_available() -> bool:
    """Whether this provider's CLI has ``pools sync`` yet (it is developed separately)."""
    from airflow_agent_provider.cli.main import build_parser

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    parser = build_parser()
    for word in settings.POOLS_SYNC[1:]:
        found = subcommands(parser).get(word)
        if found is None:
            return False
        parser = found
    return True


def _url_password(url: str) -> str | None:
    try:
        return urllib.parse.urlsplit(url).password
    except ValueError:
        return None


def _resp(*words: str) -> bytes:
    """A Redis command in the protocol's array form (safe for any password)."""
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _redis_ping(port: int, password: str | None = None) -> bool:
    """PING (after AUTH when the server has a password) answered with PONG."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall((_resp("AUTH", password) if password else b"") + _resp("PING"))
        buf = b""
        while buf.count(b"\r\n") < (2 if password else 1):
            chunk = sock.recv(256)
            if not chunk:
                break
            buf += chunk
        return buf.splitlines()[-1:] == [b"+PONG"] if buf else False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return bool(200 <= resp.status < 300)
    except (OSError, urllib.error.URLError):
        return False


def _worker_ready(log: Path) -> bool:
    """Celery prints ``ready.`` once the node consumes from the broker."""
    try:
        return " ready." in log.read_text(errors="replace")
    except OSError:
        return False


# ---------------------------------------------------------------------- command line


def _print_status(report: dict[str, dict[str, Any]]) -> None:
    print(f"{'component':<24}{'pid':>8}  {'running':<8}{'healthy':<8}ports")
    for name, row in report.items():
        ports = ", ".join(f"{k}={v}" for k, v in row["ports"].items())
        print(f"{name:<24}{row['pid']:>8}  {str(row['running']):<8}{str(row['healthy']):<8}{ports}")


PROG = "python -m airflow_agent_provider.deploy.local"


def main(argv: list[str] | None = None) -> int:
    from airflow_agent_provider.cli.errors import OneLineParser, run

    parser = OneLineParser(prog=PROG, description="Run the provider's multi-process deployment natively.")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--dir", default=DEFAULT_DIR, help=f"working directory (default {DEFAULT_DIR})")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per worker (default 2)")
    parser.add_argument("--llm-latency", type=float, default=0.0, help="seconds per LLM answer (default 0)")
    parser.add_argument("--dags-folder", default="dags", help="DAGs folder (default ./dags)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.concurrency < 1 or args.llm_latency < 0:
        parser.error("--workers and --concurrency must be at least 1, --llm-latency at least 0")
    return run(f"{PROG} {args.action}", lambda: _run_action(args))


def _run_action(args: argparse.Namespace) -> int:
    dep = LocalDeployment(
        args.dir,
        workers=args.workers,
        dags_folder=args.dags_folder,
        llm_latency=args.llm_latency,
        concurrency=args.concurrency,
    )
    if args.action == "up":
        dep.up()
        _print_status(dep.status())
        print(f"\nAPI/UI: {dep.api_url}  (user admin, password in {dep.dir / SECRETS_FILE})")
        print(f"LLM server: {dep.state['urls']['llm']}   logs: {dep.logs}")
        print(f"airflow CLI: set -a; . {dep.dir / 'airflow.env'}; set +a; airflow dags list")
        _write_env_file(dep)
        return 0
    if dep._state is None:
        what = "nothing to stop" if args.action == "down" else "nothing to report"
        print(
            f"{PROG} {args.action}: no deployment recorded in {dep.dir} ({what}; see --dir)", file=sys.stderr
        )
        return 1
    if args.action == "status":
        report = dep.status()
        _print_status(report)
        return 0 if all(r["healthy"] for r in report.values()) else 1
    report = dep.down()
    print(f"stopped: {', '.join(report['stopped']) or 'nothing'}")
    if report["ports_open"] or report["still_running"]:
        print(
            f"{PROG} down: still open ports: {report['ports_open']}, still running: {report['still_running']}",
            file=sys.stderr,
        )
        return 1
    return 0


def _write_env_file(dep: LocalDeployment) -> None:
    """``DIR/airflow.env``: the deployment's Airflow settings, to source in a shell (0600: secrets)."""
    lines = [f"{k}={shlex.quote(v)}" for k, v in dep.env.items() if k.startswith("AIRFLOW")]
    path = dep.dir / "airflow.env"
    write_private(path, "\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
