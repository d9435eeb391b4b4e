"""Where the provider's settings come from: environment, Airflow's conf, or airflow.cfg itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_agent_provider import config


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("AIRFLOW__AGENT_PROVIDER__ALLOWED_TOOL_MODULES", raising=False)
    monkeypatch.delenv("AIRFLOW__AGENT_PROVIDER__MAX_WORKFLOW_FILE_BYTES", raising=False)
    path = tmp_path / "airflow.cfg"
    monkeypatch.setenv("AIRFLOW_CONFIG", str(path))
    return path


def _run(code: str, env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_airflow_cfg_is_read_without_importing_airflow(cfg: Path):
    cfg.write_text(
        "[core]\ndags_folder = {AIRFLOW_HOME}/dags\n[agent_provider]\nallowed_tool_modules = acme.tools, acme.schemas\n"
    )
    env = {**os.environ, "AIRFLOW_CONFIG": str(cfg)}
    code = "import sys; from airflow_agent_provider import config; print(config.allowed_tool_modules(), 'airflow' in sys.modules)"
    assert _run(code, env) == "('acme.tools', 'acme.schemas') False"


def test_the_environment_wins_over_the_file(cfg: Path):
    # In a fresh process: in this one Airflow may already be imported, and then its conf answers instead.
    cfg.write_text("[agent_provider]\nmax_workflow_file_bytes = 10\n")
    env = {**os.environ, "AIRFLOW_CONFIG": str(cfg)}
    code = "from airflow_agent_provider import config; print(config.max_workflow_file_bytes())"
    assert _run(code, env) == "10"
    assert _run(code, {**env, "AIRFLOW__AGENT_PROVIDER__MAX_WORKFLOW_FILE_BYTES": "2048"}) == "2048"


def test_defaults_without_any_setting(cfg: Path):
    assert config.allowed_tool_modules() == ("airflow_agent_provider.examples",)
    assert config.max_workflow_file_bytes() == 1024 * 1024


def test_airflow_conf_answers_once_airflow_is_imported(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__AGENT_PROVIDER__")}
    env["AIRFLOW_HOME"] = str(tmp_path / "home")
    env.pop("AIRFLOW_CONFIG", None)
    env["AIRFLOW__AGENT_PROVIDER__MAX_WORKFLOW_FILE_BYTES"] = "4096"
    code = (
        "from airflow.configuration import conf; from airflow_agent_provider import config;"
        "print(config.allowed_tool_modules(), config.max_workflow_file_bytes(),"
        " conf.get('agent_provider', 'allowed_tool_modules'), conf.get('agent_provider', 'max_workflow_file_bytes'))"
    )
    # Airflow knows both options and their defaults from provider info's config section (no fallback
    # given to conf.get), and the environment variable wins as for any Airflow setting.
    assert _run(code, env) == "('airflow_agent_provider.examples',) 4096 airflow_agent_provider.examples 4096"


@pytest.mark.parametrize("value", ["my_tools.*", "my tools", "a,,b.c.", "1abc"])
def test_invalid_entries_name_the_setting(value):
    setting = r"\[agent_provider\] allowed_tool_modules \(AIRFLOW__AGENT_PROVIDER__ALLOWED_TOOL_MODULES\)"
    with pytest.raises(config.ProviderConfigError, match=setting + " has an invalid entry"):
        config.parse_module_prefixes(value)


@pytest.mark.parametrize("value", ["0", "-1", "1MiB", ""])
def test_a_bad_file_cap_names_the_setting(cfg: Path, monkeypatch, value):
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__MAX_WORKFLOW_FILE_BYTES", value)
    with pytest.raises(
        config.ProviderConfigError, match="max_workflow_file_bytes .* must be a positive number of bytes"
    ):
        config.max_workflow_file_bytes()


def test_provider_info_documents_both_options_with_the_same_defaults():
    from airflow_agent_provider.get_provider_info import get_provider_info

    options = get_provider_info()["config"]["agent_provider"]["options"]
    assert options["allowed_tool_modules"]["default"] == config.DEFAULT_ALLOWED_TOOL_MODULES
    assert int(options["max_workflow_file_bytes"]["default"]) == config.DEFAULT_MAX_WORKFLOW_FILE_BYTES
    assert "never imported" in options["allowed_tool_modules"]["description"]
