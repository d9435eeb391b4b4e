"""
Render ``docker-compose.yml`` from :mod:`.settings`: ``python -m airflow_agent_provider.deploy.compose > docker-compose.yml``.

The file is generated rather than hand-kept so that Compose and the native launcher cannot drift
apart: a test renders it again and fails if the committed file differs. The layout follows Airflow's
official Compose file (``x-airflow-common`` anchors, health checks, ``depends_on`` conditions), so
it reads like one. Strings are written as JSON strings, which are valid YAML double-quoted scalars.
"""

from __future__ import annotations

import json

from airflow_agent_provider.deploy import settings

HEADER = """\
# GENERATED from airflow_agent_provider/deploy/settings.py -- do not edit by hand:
#   python -m airflow_agent_provider.deploy.compose > docker-compose.yml
# (tests/deploy fails when this file and the settings differ).
#
# Airflow 3.3 with the CeleryExecutor and the agent provider, in the layout of Airflow's official
# docker-compose.yaml:
#   cp .env.example .env        # then replace every change-me and set the API keys (never in this file)
#   docker compose up -d --build
#   docker compose up -d --scale airflow-worker=3
#   open http://localhost:8080  (user/password: AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD)
# secrets-check (and airflow-init) refuse placeholder, short or missing secrets before anything
# starts; `docker compose logs secrets-check` says which and how to generate them.
# The API/UI is published on 127.0.0.1 only; set {bind_var}=0.0.0.0 in .env to open it to the network.
# Redis (password: REDIS_PASSWORD) is both the Celery broker (db {broker}) and the provider's
# limits/ledger store (db {store}); Postgres has no default password either.
# llm-server, the project's local OpenAI/Anthropic-compatible server, is in the "{demo}" profile:
#   docker compose --env-file .env --env-file demo.env up -d --build
# demo.env selects the profile and points the base URLs at it. Without it the base URLs in .env
# stay empty and the connections reach the real vendor APIs.
"""

HEALTH_TIMING = {"interval": "30s", "timeout": "10s", "retries": 5, "start_period": "30s"}
INFRA_TIMING = {"interval": "10s", "timeout": "5s", "retries": 5, "start_period": "5s"}
IMAGE = "${AIRFLOW_IMAGE_NAME:-airflow-agent-provider:3.3.2}"
#: Services that run once and exit (others restart always).
ONE_SHOT = ("secrets-check", "airflow-init")
DEMO_ENV_HEADER = """\
# GENERATED from airflow_agent_provider/deploy/settings.py (DEMO_ENV) -- do not edit by hand:
#   python -m airflow_agent_provider.deploy.compose demo-env > demo.env
# The demo: the local fake LLM server instead of the vendors, and no real key leaves the machine.
#   docker compose --env-file .env --env-file demo.env up -d --build
# (the later --env-file wins, so these override the base URLs and keys of .env).
"""


def _s(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def _flow(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_s(i) for i in items) + "]"


def _healthcheck(test: tuple[str, ...] | None, timing: dict[str, object], indent: str = "    ") -> list[str]:
    if not test:
        return []  # a service without a health check (the one-shot init steps)
    lines = [f"{indent}healthcheck:", f"{indent}  test: {_flow(test)}"]
    lines += [f"{indent}  {k}: {v}" for k, v in timing.items()]
    return lines


def _depends(depends: dict[str, str], indent: str = "    ", inherit: bool = True) -> list[str]:
    if not depends:
        # Overrides the merged airflow-common key: this service runs before Postgres and Redis.
        return [f"{indent}depends_on: {{}}"]
    lines = [f"{indent}depends_on:"]
    own = dict(depends)
    if inherit:
        lines.append(f"{indent}  <<: *airflow-common-depends-on")
        for name in ("postgres", "redis"):
            own.pop(name, None)
    for name, condition in own.items():
        lines += [f"{indent}  {name}:", f"{indent}    condition: {condition}"]
    return lines


def render(topology: settings.Topology = settings.COMPOSE) -> str:
    """The whole Compose file for ``topology`` (normally :data:`settings.COMPOSE`)."""
    t = topology
    svc = settings.services(t)
    out = [
        HEADER.format(
            broker=settings.BROKER_DB,
            store=settings.STORE_DB,
            demo=settings.DEMO_PROFILE,
            bind_var=settings.BIND_ADDRESS_VAR,
        )
    ]
    out += [
        "x-airflow-common: &airflow-common",
        "  build: .",
        f"  image: {_s(IMAGE)}",
        '  user: "${AIRFLOW_UID:-50000}:0"',
        "  environment: &airflow-common-env",
    ]
    out += [f"    {k}: {_s(v)}" for k, v in settings.airflow_env(t).items()]
    out += [
        "  volumes:",
        "    - airflow-logs:/opt/airflow/logs",
        "    - airflow-config:/opt/airflow/config",
        "  depends_on: &airflow-common-depends-on",
        "    postgres:",
        "      condition: service_healthy",
        "    redis:",
        "      condition: service_healthy",
        "",
        "services:",
        "  postgres:",
        f"    image: {settings.POSTGRES_IMAGE}",
        "    environment:",
        f"      POSTGRES_USER: {_s(t.postgres_user)}",
        f"      POSTGRES_PASSWORD: {_s(t.postgres_password)}",
        f"      POSTGRES_DB: {_s(t.postgres_db)}",
        "    volumes:",
        "      - postgres-db-volume:/var/lib/postgresql/data",
        *_healthcheck(svc["postgres"].healthcheck, INFRA_TIMING),
        *_depends(svc["postgres"].depends_on, inherit=False),
        "    restart: always",
        "",
        "  redis:",
        f"    image: {settings.REDIS_IMAGE}",
        "    # The ledger (daily/monthly budgets) and rate windows live here: keep them across restarts.",
        "    # Redis overwrites its argv with its process title, so the password does not stay in ps.",
        f"    command: {_flow(['redis-server', '--appendonly', 'yes', '--requirepass', t.redis_password])}",
        "    environment:",
        *(f"      {k}: {_s(v)}" for k, v in svc["redis"].environment.items()),
        "    volumes:",
        "      - redis-data:/data",
        f'    expose: ["{t.redis_port}"]',
        *_healthcheck(svc["redis"].healthcheck, INFRA_TIMING),
        *_depends(svc["redis"].depends_on, inherit=False),
        "    restart: always",
        "",
        "  llm-server:",
        "    build: .",
        f"    image: {_s(IMAGE)}",
        f"    profiles: {_flow(svc['llm-server'].profiles)}",
        f"    command: {_flow(svc['llm-server'].command)}",
        *_healthcheck(svc["llm-server"].healthcheck, INFRA_TIMING),
        "    restart: always",
    ]
    for name, service in svc.items():
        if not service.airflow:
            continue
        out += ["", f"  {name}:", "    <<: *airflow-common"]
        if name == "airflow-init":
            out += [
                "    command:",
                f"      - {_s(service.command[0])}",
                f"      - {_s(service.command[1])}",
                "      - |",
                *(f"        {line}" for line in service.command[2].splitlines()),
            ]
        else:
            out.append(f"    command: {_flow(service.command)}")
        if service.environment:
            out += ["    environment:", "      <<: *airflow-common-env"]
            out += [f"      {k}: {_s(v)}" for k, v in service.environment.items()]
        if name == "airflow-apiserver":
            out += ["    ports:", f'      - "{settings.COMPOSE_BIND_ADDRESS}:{t.api_port}:{t.api_port}"']
        out += _healthcheck(service.healthcheck, HEALTH_TIMING)
        out += _depends(service.depends_on)
        out.append('    restart: "no"' if name in ONE_SHOT else "    restart: always")
    out += [
        "",
        "volumes:",
        "  postgres-db-volume:",
        "  redis-data:",
        "  airflow-logs:",
        "  airflow-config:",
        "",
    ]
    return "\n".join(out)


def render_demo_env() -> str:
    """``demo.env``: the demo profile and base URLs (a second ``--env-file``, after ``.env``)."""
    return DEMO_ENV_HEADER + "".join(f"{k}={v}\n" for k, v in settings.DEMO_ENV.items())


if __name__ == "__main__":
    import sys

    print(render_demo_env() if sys.argv[1:] == ["demo-env"] else render(), end="")
