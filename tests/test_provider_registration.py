"""Airflow sees the provider: what ``airflow providers list|hooks|behaviours|widgets`` show.

These run the real ``airflow`` CLI in a subprocess, the way a user checks an installed provider; a
broken ``get_provider_info`` would make ``airflow providers list`` crash for every provider.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from airflow_agent_provider import __version__
from airflow_agent_provider.get_provider_info import get_provider_info


def _airflow_json(*args: str):
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", *args, "-o", "json"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    )
    return json.loads(proc.stdout)


def test_provider_info_has_the_keys_airflow_requires():
    info = get_provider_info()
    assert info["package-name"] == "airflow-agent-provider"
    assert info["name"]
    assert info["description"]
    assert info["versions"][0] == __version__


@pytest.fixture(scope="module")
def providers_cli():
    return {
        "list": _airflow_json("providers", "list"),
        "hooks": _airflow_json("providers", "hooks"),
        "behaviours": _airflow_json("providers", "behaviours"),
        "widgets": _airflow_json("providers", "widgets"),
    }


def test_airflow_providers_list_shows_the_package(providers_cli):
    rows = [r for r in providers_cli["list"] if r["package_name"] == "airflow-agent-provider"]
    assert rows
    assert rows[0]["version"] == __version__


def test_connection_types_and_hooks_are_registered(providers_cli):
    by_type = {r["connection_type"]: r for r in providers_cli["hooks"]}
    assert by_type["agent_openai"]["class"] == "airflow_agent_provider.hooks.llm.OpenAIAgentHook"
    assert by_type["agent_anthropic"]["class"] == "airflow_agent_provider.hooks.llm.AnthropicAgentHook"


def test_connection_form_hides_unused_fields_and_labels_key_and_base_url(providers_cli):
    assert {"agent_openai", "agent_anthropic"} <= {r["field_behaviours"] for r in providers_cli["behaviours"]}
    from airflow.providers_manager import ProvidersManager

    behaviours = ProvidersManager().field_behaviours
    for conn_type in ("agent_openai", "agent_anthropic"):
        assert behaviours[conn_type]["relabeling"] == {"host": "Base URL", "password": "API Key"}
        assert set(behaviours[conn_type]["hidden_fields"]) == {"schema", "port", "login"}


def test_extra_fields_are_declared_as_widgets(providers_cli):
    names = {r["connection_parameter_name"] for r in providers_cli["widgets"]}
    for conn_type in ("agent_openai", "agent_anthropic"):
        for field in ("organization", "project", "default_model", "rate_limits"):
            assert f"extra__{conn_type}__{field}" in names
