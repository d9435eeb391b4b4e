"""
The services Airflow's components use, started as local processes: Postgres, Redis, the LLM server.

Kept apart from :mod:`.local` so the launcher reads as its steps (services, init, Airflow, down).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from airflow_agent_provider.deploy import postgres, settings
from airflow_agent_provider.deploy._local_config import redis_argv
from airflow_agent_provider.deploy._private_files import write_private
from airflow_agent_provider.deploy._probes import LLMAdmin, redis_ping
from airflow_agent_provider.deploy.processes import Proc, resolve_argv, spawn, wait_until

#: The services Airflow's components use: stopped after them, Postgres last.
SERVICES = frozenset({"postgres", "redis", "llm-server"})


def start_services(
    dir: Path,
    topo: settings.Topology,
    sec: dict[str, str],
    ports: dict[str, int],
    base_env: dict[str, str],
    record: Callable[..., Proc],
    timeout: float,
) -> None:
    """
    Start Postgres, Redis and the LLM server and wait until each answers.

    ``record`` is the launcher's ``_record``: every process is in ``state.json`` as soon as it is
    spawned, so a failure further on still stops it.
    """
    logs = dir / "logs"
    services = settings.services(topo)
    pg_base = dir / "postgres"
    postgres.init_cluster(pg_base, sec["postgres_password"], logs / "postgres.log")
    pg = record(*postgres.start(pg_base, ports["postgres"], logs / "postgres.log"))
    redis_bin = shutil.which("redis-server") or "redis-server"
    (dir / "redis").mkdir(exist_ok=True)
    # The password goes into a private config file: a command line is readable by every local user.
    redis_conf = dir / "redis" / "redis.conf"
    write_private(redis_conf, f'requirepass "{sec["redis_password"]}"\n')
    redis = record(
        *spawn(
            "redis",
            redis_argv(redis_bin, redis_conf, ports["redis"], dir / "redis"),
            dict(os.environ),
            logs / "redis.log",
            ports={"redis": ports["redis"]},
        )
    )
    llm = record(
        *spawn(
            "llm-server",
            resolve_argv(services["llm-server"].command, base_env),
            base_env,
            logs / "llm-server.log",
            ports={"llm": ports["llm"]},
        )
    )
    wait_until(lambda: postgres.ready(ports["postgres"]), timeout, "postgres", proc=pg)
    postgres.create_database(ports["postgres"], sec["postgres_password"], topo.postgres_db)
    wait_until(lambda: redis_ping(ports["redis"], sec["redis_password"]), timeout, "redis", proc=redis)
    admin = LLMAdmin(f"http://127.0.0.1:{ports['llm']}")
    wait_until(lambda: admin.stats() is not None, timeout, "llm-server", proc=llm)
