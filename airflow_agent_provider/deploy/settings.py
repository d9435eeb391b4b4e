"""
The one description of a multi-process deployment, shared by ``docker-compose.yml`` and the native launcher.

Both deployments run the same services with the same commands and the same Airflow settings; they
differ only in *where* things are (container DNS names and fixed ports in Compose, loopback ports on
one machine natively) and in a few per-process ports that only clash when several components share
one network namespace. Those differences are the fields of :class:`Topology`; everything else lives
here once, so a setting added for one deployment cannot be forgotten in the other: the tests render
the Compose topology and compare it with ``docker-compose.yml`` service by service.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

#: Redis database numbers. Celery and the provider's limits/ledger store share one Redis server but
#: never a database, so flushing or inspecting one cannot disturb the other.
BROKER_DB = 0
STORE_DB = 2

ADMIN_ROLE = "admin"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"
HOSTNAME_CALLABLE = "airflow_agent_provider.deploy.hostname.worker_hostname"
WORKER_NAME_ENV = "AIRFLOW_AGENT_WORKER_NAME"

#: The provider command that writes the pools every workflow needs as an ``airflow pools import``
#: file. It is owned by the CLI (``airflow-agents pools sync``); this is the interface we rely on.
POOLS_SYNC = ("airflow-agents", "pools", "sync")

#: The api-server is ready when both of its APIs answer. The execution API (the workers' and task
#: processes' API) builds its versioned routes on its first request, on the server's event loop:
#: about 6 s here, during which the API server answers nothing, and a task supervisor's 5 s
#: ``ti_run`` call times out and is retried. Asking it once before any worker starts moves that
#: cost out of the first task.
API_READY_PATHS = ("/api/v2/version", "/execution/health")


@dataclass(frozen=True)
class Topology:
    """Where the services are and the values that differ between Compose and a native run."""

    postgres_host: str
    postgres_port: str
    postgres_user: str
    postgres_password: str
    postgres_db: str
    redis_host: str
    redis_port: str
    redis_password: str
    api_bind: str
    api_host: str
    api_port: str
    api_workers: str
    scheduler_health_port: str
    llm_host: str
    llm_port: str
    llm_latency: str
    dags_folder: str
    config_dir: str
    logs_folder: str
    fernet_key: str
    jwt_secret: str
    api_secret_key: str
    admin_user: str
    admin_password: str
    dags_paused: str
    worker_concurrency: str
    openai_base_url: str
    openai_api_key: str
    anthropic_base_url: str
    anthropic_api_key: str

    @property
    def postgres_url(self) -> str:
        return (
            f"postgresql+psycopg2://{self.postgres_user}:{self.postgres_password}"
            f"@{self.postgres_host}:{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def result_backend(self) -> str:
        return (
            f"db+postgresql+psycopg2://{self.postgres_user}:{self.postgres_password}"
            f"@{self.postgres_host}:{self.postgres_port}/{self.postgres_db}"
        )

    def redis_url(self, db: int) -> str:
        """
        The Redis URL of database ``db``; with the server's password (``requirepass``) when it has one.

        The password is part of the URL because both users of the server read a URL: Celery's
        ``broker_url`` and the provider's ``store_url``. It must therefore be URL-safe, which the
        init check (:mod:`.secrets_check`) enforces and ``secrets.token_urlsafe`` guarantees.
        """
        auth = f":{self.redis_password}@" if self.redis_password else ""
        return f"redis://{auth}{self.redis_host}:{self.redis_port}/{db}"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def passwords_file(self) -> str:
        return f"{self.config_dir}/simple_auth_manager_passwords.json"

    @property
    def pools_file(self) -> str:
        return f"{self.config_dir}/agent_pools.json"


def connection_vars(topology: Topology) -> dict[str, str]:
    """
    ``AIRFLOW_CONN_*`` of the provider's default connections.

    Airflow reads these before its metadata DB, so the API keys never need to be stored in the
    database; an empty base URL means the vendor's own endpoint.
    """
    return {
        "AIRFLOW_CONN_AGENT_OPENAI_DEFAULT": json.dumps(
            {
                "conn_type": "agent_openai",
                "host": topology.openai_base_url,
                "password": topology.openai_api_key,
            }
        ),
        "AIRFLOW_CONN_AGENT_ANTHROPIC_DEFAULT": json.dumps(
            {
                "conn_type": "agent_anthropic",
                "host": topology.anthropic_base_url,
                "password": topology.anthropic_api_key,
            }
        ),
    }


def airflow_env(topology: Topology) -> dict[str, str]:
    """Environment of every Airflow process (init, api-server, scheduler, dag-processor, triggerer, workers)."""
    t = topology
    env = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{t.admin_user}:{ADMIN_ROLE}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": t.passwords_file,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": t.postgres_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": t.result_backend,
        "AIRFLOW__CELERY__BROKER_URL": t.redis_url(BROKER_DB),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": t.worker_concurrency,
        # Airflow's Celery settings plus a preload: each worker imports the provider, the SDKs and
        # the price data once, before it forks its task slots (deploy/worker_preload.py).
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "airflow_agent_provider.deploy.celery_config.CELERY_CONFIG",
        # The task supervisor waits up to this long (Airflow's default: 5 s) once a task process has
        # closed its sockets but the kernel has not reaped it yet, which at N = 500 cost half of the
        # tasks 5 s each; it is also how often a running task heartbeats (README: Run in production).
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AIRFLOW__CORE__FERNET_KEY": t.fernet_key,
        # Every component signs or checks the execution API's tokens: one shared secret.
        "AIRFLOW__API_AUTH__JWT_SECRET": t.jwt_secret,
        # Signs the api-server's sessions and its log requests to the workers' log servers: shared
        # too, or every process would invent its own and logs of other machines could not be read.
        "AIRFLOW__API__SECRET_KEY": t.api_secret_key,
        "AIRFLOW__API__WORKERS": t.api_workers,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{t.api_url}/execution/",
        "AIRFLOW__CORE__DAGS_FOLDER": t.dags_folder,
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": t.dags_paused,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": t.logs_folder,
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": t.scheduler_health_port,
        # Limits, budgets and the ledger are shared by all workers: they must live in Redis.
        "AIRFLOW__AGENT_PROVIDER__STORE_URL": t.redis_url(STORE_DB),
    }
    env.update(connection_vars(t))
    return env


def init_env(topology: Topology) -> dict[str, str]:
    """Extra environment of ``airflow-init`` only: the admin password never reaches other components."""
    return {"AIRFLOW_ADMIN_PASSWORD": topology.admin_password}


#: Refuses missing, placeholder, short or malformed secrets (exit 1, one line per problem with the
#: command that generates a good value); first step of ``airflow-init`` and the ``secrets-check``
#: service that Postgres and Redis wait for.
SECRETS_CHECK = ("python", "-m", "airflow_agent_provider.deploy.secrets_check")


def init_steps(topology: Topology) -> list[tuple[str, ...]]:
    """What ``airflow-init`` does, in order, before any other Airflow component starts."""
    t = topology
    return [
        SECRETS_CHECK,
        ("airflow", "db", "migrate"),
        ("python", "-m", "airflow_agent_provider.deploy.auth", "write-passwords"),
        (*POOLS_SYNC, f"{t.dags_folder}/workflows", "--write", t.pools_file),
        ("airflow", "pools", "import", t.pools_file),
    ]


def init_shell(topology: Topology) -> str:
    """The init steps as one ``bash -c`` script that stops at the first failing step."""
    return "set -euo pipefail\n" + "\n".join(shlex.join(step) for step in init_steps(topology)) + "\n"


@dataclass(frozen=True)
class Service:
    """One Compose service; ``command`` is what the native launcher runs as well."""

    name: str
    command: tuple[str, ...]
    healthcheck: tuple[str, ...] | None
    depends_on: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    airflow: bool = True
    scalable: bool = False
    #: Compose profiles; a service with a profile only starts when that profile is selected.
    profiles: tuple[str, ...] = ()


_SECRETS_OK = {"secrets-check": "service_completed_successfully"}
_INFRA_READY = {"postgres": "service_healthy", "redis": "service_healthy"}

#: The profile of the demo's local LLM server (``demo.env`` selects it and points the base URLs at it).
DEMO_PROFILE = "demo"
_AIRFLOW_READY = {**_INFRA_READY, "airflow-init": "service_completed_successfully"}


def services(topology: Topology) -> dict[str, Service]:
    """Every service of the deployment, in start order."""
    t = topology
    items = [
        # Before Postgres initialises its volume with whatever POSTGRES_PASSWORD says: a placeholder
        # password written into a new cluster would outlive the fix in .env.
        # The image's entrypoint waits for the metadata DB before any command unless told not to;
        # this service runs before the DB exists.
        Service("secrets-check", SECRETS_CHECK, None, {}, {**init_env(t), "CONNECTION_CHECK_MAX_COUNT": "0"}),
        Service(
            "postgres",
            (),
            ("CMD", "pg_isready", "-U", t.postgres_user, "-d", t.postgres_db),
            dict(_SECRETS_OK),
            airflow=False,
        ),
        # redis-cli takes the password from REDISCLI_AUTH (not argv); "NOAUTH" is no PONG.
        Service(
            "redis",
            (),
            ("CMD-SHELL", "redis-cli ping | grep -q PONG"),
            dict(_SECRETS_OK),
            {"REDISCLI_AUTH": t.redis_password},
            airflow=False,
        ),
        Service(
            "llm-server",
            (
                "python",
                "-m",
                "airflow_agent_provider.testing.llm_server",
                "--host",
                t.llm_host,
                "--port",
                t.llm_port,
                "--latency",
                t.llm_latency,
            ),
            (
                "CMD",
                "python",
                "-c",
                f"import urllib.request; urllib.request.urlopen('http://localhost:{t.llm_port}/_admin/stats', timeout=5)",
            ),
            airflow=False,
            profiles=(DEMO_PROFILE,),
        ),
        Service("airflow-init", ("bash", "-c", init_shell(t)), None, dict(_INFRA_READY), init_env(t)),
        Service(
            "airflow-apiserver",
            ("airflow", "api-server", "--host", t.api_bind, "--port", t.api_port),
            (
                "CMD-SHELL",
                " && ".join(
                    f"curl --fail --silent http://localhost:{t.api_port}{p}" for p in API_READY_PATHS
                ),
            ),
            dict(_AIRFLOW_READY),
        ),
        Service(
            "airflow-scheduler",
            ("airflow", "scheduler"),
            ("CMD", "curl", "--fail", f"http://localhost:{t.scheduler_health_port}/health"),
            dict(_AIRFLOW_READY),
        ),
        Service(
            "airflow-dag-processor",
            # Airflow's dag-processor with the fix of deploy/dag_processor.py (callback parses)
            ("python", "-m", "airflow_agent_provider.deploy.dag_processor"),
            ("CMD-SHELL", 'airflow jobs check --job-type DagProcessorJob --hostname "$${HOSTNAME}"'),
            dict(_AIRFLOW_READY),
        ),
        Service(
            "airflow-triggerer",
            # Airflow's triggerer with the fix of deploy/triggerer.py (one DAG deserialization per
            # DAG version, not two per start_from_trigger task)
            ("python", "-m", "airflow_agent_provider.deploy.triggerer"),
            ("CMD-SHELL", 'airflow jobs check --job-type TriggererJob --hostname "$${HOSTNAME}"'),
            dict(_AIRFLOW_READY),
        ),
        Service(
            "airflow-worker",
            ("airflow", "celery", "worker"),
            ("CMD-SHELL", f'celery --app {CELERY_APP} inspect ping -d "celery@$${{HOSTNAME}}"'),
            {**_AIRFLOW_READY, "airflow-apiserver": "service_healthy"},
            # dumb-init (the image's PID 1) must not forward SIGTERM to the whole group, or Celery
            # cannot finish its running tasks (warm shutdown).
            {"DUMB_INIT_SETSID": "0"},
            scalable=True,
        ),
    ]
    return {s.name: s for s in items}


def _required(name: str) -> str:
    """``${NAME:?...}``: Compose refuses to run when ``NAME`` is unset or empty in ``.env``."""
    return f"${{{name}:?set {name} in .env (see .env.example)}}"


#: Where Compose publishes the API/UI port: loopback unless the user opts in (``AGENT_BIND_ADDRESS=0.0.0.0``).
BIND_ADDRESS_VAR = "AGENT_BIND_ADDRESS"
COMPOSE_BIND_ADDRESS = f"${{{BIND_ADDRESS_VAR}:-127.0.0.1}}"

#: The Compose side: container names, the image's paths, secrets and keys from ``.env``.
#: Every secret is required (no default), and ``airflow-init`` refuses placeholders and short ones.
COMPOSE = Topology(
    postgres_host="postgres",
    postgres_port="5432",
    postgres_user="airflow",
    postgres_password=_required("POSTGRES_PASSWORD"),
    postgres_db="airflow",
    redis_host="redis",
    redis_port="6379",
    redis_password=_required("REDIS_PASSWORD"),
    api_bind="0.0.0.0",
    api_host="airflow-apiserver",
    api_port="8080",
    api_workers="${AIRFLOW_API_WORKERS:-2}",
    scheduler_health_port="8974",
    llm_host="0.0.0.0",
    llm_port="8765",
    llm_latency="${LLM_SERVER_LATENCY:-0}",
    dags_folder="/opt/airflow/dags",
    config_dir="/opt/airflow/config",
    logs_folder="/opt/airflow/logs",
    fernet_key=_required("AIRFLOW_FERNET_KEY"),
    jwt_secret=_required("AIRFLOW_JWT_SECRET"),
    api_secret_key=_required("AIRFLOW_API_SECRET_KEY"),
    admin_user="${AIRFLOW_ADMIN_USER:-admin}",
    admin_password=_required("AIRFLOW_ADMIN_PASSWORD"),
    dags_paused="${AIRFLOW_DAGS_PAUSED_AT_CREATION:-True}",
    worker_concurrency="${AIRFLOW_WORKER_CONCURRENCY:-8}",
    # Empty means the vendor's own API: a user who fills in only a real key reaches the real vendor.
    openai_base_url="${OPENAI_BASE_URL:-}",
    openai_api_key="${OPENAI_API_KEY:-}",
    anthropic_base_url="${ANTHROPIC_BASE_URL:-}",
    anthropic_api_key="${ANTHROPIC_API_KEY:-}",
)

#: ``demo.env`` (used as a second ``--env-file``): selects the demo profile and points both default
#: connections at its local LLM server. Generated from here like ``docker-compose.yml``.
DEMO_ENV = {
    "COMPOSE_PROFILES": DEMO_PROFILE,
    "OPENAI_BASE_URL": f"http://llm-server:{COMPOSE.llm_port}/v1",
    "ANTHROPIC_BASE_URL": f"http://llm-server:{COMPOSE.llm_port}",
    "OPENAI_API_KEY": "demo-key-for-the-local-llm-server",
    "ANTHROPIC_API_KEY": "demo-key-for-the-local-llm-server",
}

#: Images of the infrastructure services in Compose (the native launcher runs the local binaries).
POSTGRES_IMAGE = "postgres:16"
REDIS_IMAGE = "redis:7.2-bookworm"


def local_process_env(kind: str, *, port: int, name: str = "") -> dict[str, str]:
    """
    Settings only a native run needs: several components share one host and its ports.

    In Compose each container has its own network namespace and hostname, so the defaults (log
    server ports 8793/8794, the container hostname) are already distinct.
    """
    if kind == "worker":
        return {
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port),
            # Task instances record the hostname of the worker that ran them; on one host all
            # workers share a hostname, so each worker reports its own name instead.
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
            WORKER_NAME_ENV: name,
        }
    if kind == "triggerer":
        return {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port)}
    return {}


def local_worker_args(name: str, concurrency: int) -> tuple[str, ...]:
    """Arguments that make N workers on one host distinct Celery nodes."""
    return ("--celery-hostname", f"{name}@%h", "--concurrency", str(concurrency))
