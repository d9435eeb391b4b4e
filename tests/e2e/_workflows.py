"""Building test variants of the example workflows (no retries by default, to keep runs short)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from airflow_agent_provider.definitions import Workflow, parse_workflow
from airflow_agent_provider.factory import build_dag

EXAMPLES = Path(__file__).parents[2] / "dags" / "workflows"


def variant(tmp_path: Path, example: str, name: str, mutate: Callable[[dict[str, Any]], None] | None = None):
    data = yaml.safe_load((EXAMPLES / example).read_text())
    data["name"] = name
    data.pop("triggered_by", None)
    data["defaults"]["retries"] = {"attempts": 0}
    if mutate:
        mutate(data)
    workflow: Workflow = parse_workflow(yaml.safe_dump(data, sort_keys=False), tmp_path / f"{name}.yaml")
    return workflow, build_dag(workflow)


def all_agents(data: dict[str, Any]):
    for module in data["modules"].values():
        yield from module["agents"]
