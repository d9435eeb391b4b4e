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

import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from airflow_agent_provider.deploy import settings
from airflow_agent_provider.deploy._init_steps import run_init
from airflow_agent_provider.deploy._local_config import component_ports, new_secrets, topology
from airflow_agent_provider.deploy._private_files import write_private
from airflow_agent_provider.deploy._probes import (
    LLMAdmin,
    health_checks,
    http_json,
    http_ok,
    log_server_open,
    url_password,
    worker_ready,
)
from airflow_agent_provider.deploy._rest import RestClient
from airflow_agent_provider.deploy._services import SERVICES, start_services
from airflow_agent_provider.deploy.processes import (
    Proc,
    alive,
    free_port,
    kill_session,
    members,
    port_open,
    resolve_argv,
    spawn,
    stop_all,
    wait_until,
)

DEFAULT_DIR = ".airflow-local"
STATE_FILE = "state.json"
SECRETS_FILE = "secrets.json"
AIRFLOW_COMPONENTS = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_private_json(path: Path, data: dict[str, Any]) -> None:
    write_private(path, json.dumps(data, indent=2))


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
        self._rest: RestClient | None = None
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
        missing = {k: v for k, v in new_secrets().items() if k not in loaded}
        if missing:
            loaded.update(missing)
            _write_private_json(path, loaded)
        return loaded

    # ------------------------------------------------------------------ topology and env

    def _topology(self, ports: dict[str, int], sec: dict[str, str]) -> settings.Topology:
        return topology(
            self.dir,
            ports,
            sec,
            dags_folder=self.dags_folder,
            llm_latency=self.llm_latency,
            concurrency=self.concurrency,
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
            start_services(self.dir, topo, sec, ports, self._base_env(), self._record, timeout)
            self._init(topo, env)
            self._start_airflow(topo, env, ports, timeout)
        except BaseException:
            self.down()
            raise
        return self

    def _init(self, topo: settings.Topology, env: dict[str, str]) -> None:
        """The init steps of :mod:`.settings`, then any extra pools of this deployment."""
        run_init(topo, env, self.logs / "airflow-init.log", pools=self.pools, config_dir=self.dir / "config")

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
                    resolve_argv(services[name].command, proc_env),
                    proc_env,
                    self.logs / f"{name}.log",
                    ports=component_ports(name, ports),
                )
            )
        worker = services["airflow-worker"]
        for i in range(1, self.workers + 1):
            wname = f"worker{i}"
            proc_env = {**env, **settings.local_process_env("worker", port=ports[f"{wname}_log"], name=wname)}
            argv = [
                *resolve_argv(worker.command, proc_env),
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
        for path in ("/api/v2/monitor/health", *settings.API_READY_PATHS):
            wait_until(
                lambda path=path: http_ok(topo.api_url + path),
                timeout,
                f"api-server ({path})",
                proc=started["airflow-apiserver"],
            )
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{ports['scheduler_health']}/health"),
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
                lambda w=wname: port_open(ports[f"{w}_log"]) and worker_ready(self.logs / f"{w}.log"),
                timeout,
                wname,
                proc=started[wname],
            )

    def _monitor(self) -> dict[str, Any]:
        health = http_json(f"{self.api_url}/api/v2/monitor/health", timeout=5)
        return health if isinstance(health, dict) else {}

    # ------------------------------------------------------------------ down and status

    def down(self, timeout: float = 15.0) -> dict[str, Any]:
        """Stop every recorded process (workers first, Postgres last); returns what was stopped."""
        if self._state is None:
            return {"stopped": [], "ports_open": [], "still_running": []}
        procs = self._procs()
        stop_all(procs, self._popens, timeout=timeout, last=SERVICES)
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
        self._rest = None
        return report

    def status(self) -> dict[str, dict[str, Any]]:
        """Per component: pid, running, healthy (by the component's own health endpoint)."""
        ports = self.state["ports"]
        redis_password = url_password(self.state.get("env", {}).get("AIRFLOW__CELERY__BROKER_URL", ""))
        try:
            monitor = self._monitor()
        except Exception:
            monitor = {}
        checks = health_checks(ports, redis_password, self.state["urls"]["llm"], monitor)
        report: dict[str, dict[str, Any]] = {}
        for proc in self._procs():
            running = alive(proc)
            check = checks.get(proc.name) or partial(log_server_open, proc)
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

    def session_pids(self) -> dict[str, list[int]]:
        """Per component: the live processes of its session (the component and every child it runs)."""
        return {proc.name: members(proc) for proc in self._procs()}

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker ``i`` (1-based) and everything it started, like a crashed container."""
        proc = next(p for p in self._procs() if p.name == f"worker{i}")
        kill_session(proc, self._popens.get(proc.name))

    # ------------------------------------------------------------------ REST API

    @property
    def rest(self) -> RestClient:
        """The deployment's REST API as its admin user (a token is fetched when first needed)."""
        if self._rest is None:
            self._rest = RestClient(self.api_url, self.state["admin"]["user"], self._admin_password)
        return self._rest

    def _admin_password(self) -> str:
        sec = _load_json(self.dir / SECRETS_FILE) or {}
        return str(sec["admin_password"])

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` (it is in the API)."""
        self.rest.wait_for_dag(dag_id, timeout)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run through the REST API; returns its run_id."""
        return self.rest.trigger(dag_id, conf)

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.rest.run_state(dag_id, run_id)

    def wait(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        """Poll the run until it finishes; returns its final state."""
        return self.rest.wait(dag_id, run_id, timeout)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (task_id, map_index, state, hostname, pid, start/end dates)."""
        return self.rest.task_instances(dag_id, run_id)


def main(argv: list[str] | None = None) -> int:
    """The command line (:mod:`.local_cli`), for ``python -m airflow_agent_provider.deploy.local``."""
    from airflow_agent_provider.deploy.local_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
