"""
The init steps of a native deployment: what Compose's ``airflow-init`` service runs, as local processes.

The steps come from :mod:`airflow_agent_provider.deploy.settings` (``airflow db migrate``, admin
credentials, the secrets check, pools), so both deployments initialise the same way; each step's
command line and output go to one log, and the first failing step stops the deployment.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

from airflow_agent_provider.deploy import settings
from airflow_agent_provider.deploy._local_config import pools_sync_available
from airflow_agent_provider.deploy.processes import log_tail, resolve_argv


def run_init(
    topo: settings.Topology, env: dict[str, str], log: Path, *, pools: dict[str, int], config_dir: Path
) -> None:
    """The init steps of :mod:`.settings` (those this provider version has), then the extra ``pools``."""
    init_env = {**env, **settings.init_env(topo)}
    for step in settings.init_steps(topo):
        if tuple(step[: len(settings.POOLS_SYNC)]) == settings.POOLS_SYNC and not pools_sync_available():
            append_line(
                log, f"skipped (this provider version has no `{' '.join(settings.POOLS_SYNC)}`): {step}\n"
            )
            continue
        if step[:3] == ("airflow", "pools", "import") and not Path(step[3]).exists():
            append_line(log, f"skipped (no pools file): {step}\n")
            continue
        run_step(step, init_env, log)
    if pools:
        extra = config_dir / "extra_pools.json"
        extra.write_text(
            json.dumps(
                {
                    name: {
                        "slots": slots,
                        "description": "LocalDeployment(pools=...)",
                        "include_deferred": True,
                    }
                    for name, slots in pools.items()
                }
            )
        )
        run_step(("airflow", "pools", "import", str(extra)), init_env, log)


def run_step(step: Iterable[str], env: dict[str, str], log: Path) -> None:
    """Run one step with its output appended to ``log``; a failing step raises with the log's tail."""
    argv = resolve_argv(step, env)
    append_line(log, f"$ {' '.join(argv)}\n")
    with open(log, "ab") as out:
        result = subprocess.run(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False
        )
    if result.returncode != 0:
        raise RuntimeError(
            f"init step failed (exit {result.returncode}): {' '.join(argv)}; log: {log}\n{log_tail(str(log))}"
        )


def append_line(path: Path, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


__all__ = ["append_line", "run_init", "run_step"]
