"""
``airflow-agents pools sync``: create or update the Airflow pools the definitions need.

Run it from a deployment script (it writes to the metadata DB, which DAG parsing and task code
must not), or write the ``airflow pools import`` file with ``--write FILE`` and import it yourself.
Existing pools are only ever enlarged or shrunk to the definitions' size; other pools are untouched.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from airflow_agent_provider.definitions import load_workflows
from airflow_agent_provider.factory.pools import pools_for


def desired_pools(folder: Path) -> tuple[dict[str, dict[str, Any]], int]:
    """The pools of every valid definition in ``folder``, and how many files were invalid."""
    workflows, errors = load_workflows(folder)
    for err in errors:
        print(f"FAIL {err}", file=sys.stderr)
    return pools_for(workflows), len(errors)


def sync_pools(pools: dict[str, dict[str, Any]]) -> list[str]:
    """Create or update ``pools`` in the metadata DB; returns one line per pool for the user."""
    from airflow.models.pool import Pool

    lines = []
    for name, spec in sorted(pools.items()):
        existing = Pool.get_pool(name)
        Pool.create_or_update_pool(
            name,
            slots=spec["slots"],
            description=spec["description"],
            include_deferred=spec["include_deferred"],
        )
        if existing is None:
            lines.append(f"created {name}: {spec['slots']} slots")
        elif existing.slots != spec["slots"] or existing.include_deferred != spec["include_deferred"]:
            lines.append(f"updated {name}: {existing.slots} -> {spec['slots']} slots")
        else:
            lines.append(f"unchanged {name}: {spec['slots']} slots")
    return lines


def run_pools_sync(folder: Path, write: Path | None = None, dry_run: bool = False) -> int:
    pools, invalid = desired_pools(folder)
    if write is not None:
        write.write_text(json.dumps(pools, indent=2, sort_keys=True) + "\n")
        print(f"wrote {len(pools)} pool(s) to {write} (airflow pools import {write})")
    if dry_run or write is not None:
        for name, spec in sorted(pools.items()):
            print(f"{name}: {spec['slots']} slots, include_deferred={spec['include_deferred']}")
    else:
        for line in sync_pools(pools):
            print(line)
    return 1 if invalid else 0
