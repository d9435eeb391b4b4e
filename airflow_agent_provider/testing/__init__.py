"""
Test support: a local OpenAI/Anthropic-compatible LLM server and Airflow connection helpers.

``connection_env`` is importable without the server's dependencies (FastAPI, uvicorn); the server
classes are loaded on first access so that importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_agent_provider.testing.connections import connection_env

if TYPE_CHECKING:
    from airflow_agent_provider.testing.llm_server import LLMServer, SpawnedLLMServer, spawn_llm_server
    from airflow_agent_provider.testing.server_state import ServerConfig

__all__ = ["LLMServer", "ServerConfig", "SpawnedLLMServer", "connection_env", "spawn_llm_server"]

_LAZY = {"LLMServer", "ServerConfig", "SpawnedLLMServer", "spawn_llm_server"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from airflow_agent_provider.testing import llm_server

        return getattr(llm_server, name)
    raise AttributeError(name)
