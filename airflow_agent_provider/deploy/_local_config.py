"""
What a native deployment is made of, before anything starts: its secrets, its topology (the same
:class:`~airflow_agent_provider.deploy.settings.Topology` the Compose file is generated from, on
loopback ports), which ports each component owns, and whether the provider's CLI can sync pools.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from airflow_agent_provider.deploy import postgres, settings
from airflow_agent_provider.deploy.secrets_check import token


def new_secrets() -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        "fernet_key": Fernet.generate_key().decode(),
        "jwt_secret": token(48),
        "api_secret_key": token(48),
        "admin_password": token(16),
        "postgres_password": token(24),
        "redis_password": token(24),
    }


def topology(
    base: Path,
    ports: dict[str, int],
    sec: dict[str, str],
    *,
    dags_folder: Path,
    llm_latency: float,
    concurrency: int,
) -> settings.Topology:
    """The topology of the deployment in ``base``: every service on 127.0.0.1, its own secrets."""
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
        llm_latency=str(llm_latency),
        dags_folder=str(dags_folder),
        config_dir=str(base / "config"),
        logs_folder=str((base / "logs") / "airflow"),
        fernet_key=sec["fernet_key"],
        jwt_secret=sec["jwt_secret"],
        api_secret_key=sec["api_secret_key"],
        admin_user="admin",
        admin_password=sec["admin_password"],
        dags_paused="False",
        worker_concurrency=str(concurrency),
        openai_base_url=f"{llm}/v1",
        openai_api_key="local-key",
        anthropic_base_url=llm,
        anthropic_api_key="local-key",
    )


def component_ports(name: str, ports: dict[str, int]) -> dict[str, int]:
    return {
        "airflow-apiserver": {"api": ports["api"]},
        "airflow-scheduler": {"health": ports["scheduler_health"]},
        "airflow-triggerer": {"log_server": ports["triggerer_log"]},
    }.get(name, {})


def pools_sync_available() -> bool:
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


def redis_argv(redis_bin: str, conf: Path | None, port: int, data_dir: Path | str) -> list[str]:
    """
    A private ``redis-server``'s command line: loopback only, nothing on disk, the password (if any)
    in the config file ``conf``. Also what the test suite's and the benchmarks' servers run.
    """
    return [
        redis_bin,
        *([str(conf)] if conf is not None else []),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
        "--protected-mode",
        "yes",
    ]


__all__ = ["component_ports", "new_secrets", "pools_sync_available", "redis_argv", "topology"]
