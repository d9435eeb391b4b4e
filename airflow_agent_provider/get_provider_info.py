"""
Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

In Airflow 3.3 the connection form (extra fields, hidden fields, relabelling) is declared here only;
the old hook methods ``get_ui_field_behaviour`` / ``get_connection_form_widgets`` are ignored.
"""

from __future__ import annotations

from typing import Any

from airflow_agent_provider import __version__

_LLM_UI_BEHAVIOUR = {
    "hidden-fields": ["schema", "port", "login"],
    "relabeling": {"host": "Base URL", "password": "API Key"},
}


def _llm_conn_fields(default_model: str) -> dict[str, Any]:
    return {
        "organization": {"label": "Organization", "schema": {"type": ["string", "null"]}},
        "project": {"label": "Project", "schema": {"type": ["string", "null"]}},
        "default_model": {
            "label": "Default model",
            "schema": {"type": ["string", "null"], "default": default_model},
        },
        "timeout": {"label": "Request timeout (seconds)", "schema": {"type": ["number", "null"]}},
        "rate_limits": {
            "label": "Rate limits (JSON: requests_per_minute, requests_per_hour, requests_per_day, "
            "tokens_per_minute, max_concurrent)",
            "schema": {"type": ["object", "string", "null"]},
        },
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-agent-provider",
        "name": "Agent Provider (LLM agent fleets)",
        "description": "Run fleets of LLM agents (OpenAI, Anthropic, OpenAI-compatible endpoints) as "
        "Airflow DAGs, with shared rate limits, cost budgets and resilient retries.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "LLM Agents",
                "external-doc-url": "https://github.com/",
                "tags": ["software"],
            }
        ],
        "operators": [
            {"integration-name": "LLM Agents", "python-modules": ["airflow_agent_provider.operators.agent"]}
        ],
        "sensors": [
            {"integration-name": "LLM Agents", "python-modules": ["airflow_agent_provider.sensors.budget"]}
        ],
        "hooks": [{"integration-name": "LLM Agents", "python-modules": ["airflow_agent_provider.hooks.llm"]}],
        "triggers": [
            {"integration-name": "LLM Agents", "python-modules": ["airflow_agent_provider.triggers.llm"]}
        ],
        "connection-types": [
            {
                "connection-type": "agent_openai",
                "hook-class-name": "airflow_agent_provider.hooks.llm.OpenAIAgentHook",
                "hook-name": "OpenAI / OpenAI-compatible (agents)",
                "conn-fields": _llm_conn_fields("gpt-5-mini"),
                "ui-field-behaviour": {
                    **_LLM_UI_BEHAVIOUR,
                    "placeholders": {
                        "host": "https://api.openai.com/v1 (or a vLLM / Ollama base URL)",
                        "password": "sk-...",
                    },
                },
            },
            {
                "connection-type": "agent_anthropic",
                "hook-class-name": "airflow_agent_provider.hooks.llm.AnthropicAgentHook",
                "hook-name": "Anthropic (agents)",
                "conn-fields": _llm_conn_fields("claude-sonnet-4-6"),
                "ui-field-behaviour": {
                    **_LLM_UI_BEHAVIOUR,
                    "placeholders": {"host": "https://api.anthropic.com", "password": "sk-ant-..."},
                },
            },
        ],
        "config": {
            "agent_provider": {
                "description": "Settings of the LLM agent provider.",
                "options": {
                    "store_url": {
                        "description": "Where shared rate limits, budgets and breaker state live: "
                        "sqlite:///path/to/file.db (single machine, default under $AIRFLOW_HOME) or "
                        "redis://host:port/db. ``redis_conn_id`` takes precedence when set.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "redis://localhost:6379/2",
                        "default": "",
                    },
                    "redis_conn_id": {
                        "description": "Airflow Connection id of the Redis used as the shared store.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "redis_default",
                        "default": "",
                    },
                    "allowed_tool_modules": {
                        "description": "Comma-separated module prefixes that workflow files may take "
                        "tools and output_schema models from (a prefix covers its submodules: "
                        "'my_company.tools' allows 'my_company.tools.erp' but not 'my_company.tools_old'). "
                        "A module outside them is a definition error and is never imported. Empty allows "
                        "none. builtins, os, subprocess, shutil, pickle, importlib, sys, socket, Airflow, "
                        "this provider (except its examples) and their kin are refused whatever this says.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "my_company.agent_tools, my_company.schemas",
                        "default": "airflow_agent_provider.examples",
                    },
                    "max_workflow_file_bytes": {
                        "description": "Largest workflow YAML file (bytes) the DAG factory reads; a larger file "
                        "is a definition error and is not parsed.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "2097152",
                        "default": "1048576",
                    },
                },
            }
        },
    }
