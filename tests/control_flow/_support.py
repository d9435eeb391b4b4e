"""Helpers for control-flow runs: workflows from dicts, and counting requests on the local server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from airflow_agent_provider.definitions import Workflow, parse_workflow


def workflow_from(tmp_path: Path, data: dict[str, Any]) -> Workflow:
    """Validate a workflow written as a dict, exactly as a YAML file would be (retries off by default)."""
    data = {"schedule": None, **data}
    defaults = data.setdefault("defaults", {})
    defaults.setdefault("model", "gpt-5-mini")
    defaults.setdefault("retries", {"attempts": 0})  # a retry waits its delay: tests opt in explicitly
    return parse_workflow(yaml.safe_dump(data, sort_keys=False), tmp_path / f"{data['name']}.yaml")


def requests_with(stats: dict[str, Any], needle: str) -> list[str]:
    """The last-user-message excerpts of every request that contained ``needle``."""
    return [e["user_excerpt"] for e in stats["log"] if needle in (e.get("user_excerpt") or "")]
