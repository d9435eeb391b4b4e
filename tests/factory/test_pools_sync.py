"""``airflow-agents pools sync`` against a real Airflow metadata DB."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "airflow_agent_provider.cli.main", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )


def _pools() -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "list", "-o", "json"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    ).stdout
    return {p["pool"]: p for p in json.loads(out)}


def test_sync_creates_then_updates_pools(tmp_path, airflow_db):
    folder = tmp_path / "workflows"
    folder.mkdir()
    shutil.copy(REPO / "dags" / "workflows" / "erp_month_end.yaml", folder)
    proc = _run("pools", "sync", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "created llm_openai_gpt-5-mini: 4 slots" in proc.stdout
    pools = _pools()
    assert int(pools["llm_openai_gpt-5-mini"]["slots"]) == 4
    assert str(pools["llm_openai_gpt-5-mini"]["include_deferred"]).lower() == "true"

    data = yaml.safe_load((folder / "erp_month_end.yaml").read_text())
    data["rate_limits"]["openai/gpt-5-mini"]["max_concurrent"] = 2
    (folder / "erp_month_end.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    proc = _run("pools", "sync", str(folder))
    assert "updated llm_openai_gpt-5-mini: 4 -> 2 slots" in proc.stdout
    assert int(_pools()["llm_openai_gpt-5-mini"]["slots"]) == 2
    assert "unchanged llm_anthropic" in proc.stdout


def test_write_produces_an_airflow_pools_import_file(tmp_path, airflow_db):
    target = tmp_path / "pools.json"
    proc = _run("pools", "sync", str(REPO / "dags" / "workflows"), "--write", str(target))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(target.read_text())
    assert data["llm_anthropic"] == {
        "slots": 4,
        "description": "LLM calls to anthropic (airflow-agent-provider)",
        "include_deferred": True,
    }
    imported = subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "import", str(target)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert "llm_anthropic" in _pools()


def test_invalid_definitions_are_reported_and_fail_the_command(tmp_path, airflow_db):
    (tmp_path / "bad.yaml").write_text("name: x\nmodules: {}\n")
    proc = _run("pools", "sync", str(tmp_path), "--dry-run")
    assert proc.returncode == 1
    assert "bad.yaml" in proc.stderr
