"""Render ``docker-compose.yml`` from :mod:`.settings`: ``python -m airflow_agent_provider.deploy.compose > docker-compose.yml``.

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
#   cp .env.example .env        # then set the secrets and API keys in .env (never in this file)
#   docker compose up -d --build
#   docker compose up -d --scale airflow-worker=3
#   open http://localhost:8080  (user/password: AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD)
# Redis is both the Celery broker (db {broker}) and the provider's limits/ledger store (db {store}).
# llm-server is the project's local OpenAI/Anthropic-compatible server for the demo: point
# OPENAI_BASE_URL / ANTHROPIC_BASE_URL at it in .env, or leave them empty for the real APIs.
"""

HEALTH_TIMING = {"interval": "30s", "timeout": "10s", "retries": 5, "start_period": "30s"}
INFRA_TIMING = {"interval": "10s", "timeout": "5s", "retries": 5, "start_period": "5s"}
IMAGE = "${AIRFLOW_IMAGE_NAME:-airflow-agent-provider:3.3.2}"


def _s(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def _flow(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_s(i) for i in items) + "]"


def _healthcheck(test: tuple[str, ...], timing: dict[str, object], indent: str = "    ") -> list[str]:
    lines = [f"{indent}healthcheck:", f"{indent}  test: {_flow(test)}"]
    lines += [f"{indent}  {k}: {v}" for k, v in timing.items()]
    return lines


def _depends(depends: dict[str, str], indent: str = "    ", inherit: bool = True) -> list[str]:
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
    out = [HEADER.format(broker=settings.BROKER_DB, store=settings.STORE_DB)]
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
        "    restart: always",
        "",
        "  redis:",
        f"    image: {settings.REDIS_IMAGE}",
        "    # The ledger (daily/monthly budgets) and rate windows live here: keep them across restarts.",
        '    command: ["redis-server", "--appendonly", "yes"]',
        "    volumes:",
        "      - redis-data:/data",
        f'    expose: ["{t.redis_port}"]',
        *_healthcheck(svc["redis"].healthcheck, INFRA_TIMING),
        "    restart: always",
        "",
        "  llm-server:",
        "    build: .",
        f"    image: {_s(IMAGE)}",
        f"    command: {_flow(svc['llm-server'].command)}",
        *_healthcheck(svc["llm-server"].healthcheck, INFRA_TIMING),
        "    restart: always",
    ]
    for name, service in svc.items():
        if not service.airflow:
            continue
        out += ["", f"  {name}:", "    <<: *airflow-common"]
        if name == "airflow-init":
            out += ["    command:", f"      - {_s(service.command[0])}", f"      - {_s(service.command[1])}",
                    "      - |", *(f"        {line}" for line in service.command[2].splitlines())]
        else:
            out.append(f"    command: {_flow(service.command)}")
        if service.environment:
            out += ["    environment:", "      <<: *airflow-common-env"]
            out += [f"      {k}: {_s(v)}" for k, v in service.environment.items()]
        if name == "airflow-apiserver":
            out += ["    ports:", f'      - "{t.api_port}:{t.api_port}"']
        if service.healthcheck:
            out += _healthcheck(service.healthcheck, HEALTH_TIMING)
        out += _depends(service.depends_on)
        out.append("    restart: always" if name != "airflow-init" else '    restart: "no"')
    out += ["", "volumes:", "  postgres-db-volume:", "  redis-data:", "  airflow-logs:", "  airflow-config:", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
