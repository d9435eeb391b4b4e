"""
What an LLM SDK client is built from, taken from the Airflow Connection only.

Airflow-free: the hook passes in the connection's fields (password, host, extras); nothing here reads
the process environment, so the SDKs' ``*_API_KEY`` / ``*_BASE_URL`` fallbacks never apply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_agent_provider.exceptions import LLMConnectionError
from airflow_agent_provider.llm.types import PROVIDERS

#: Connection types that name their provider; any other type needs the ``provider`` argument.
CONN_TYPE_PROVIDERS: dict[str, str] = {
    "agent_openai": "openai",
    "agent_anthropic": "anthropic",
    "openai": "openai",
    "anthropic": "anthropic",
}

#: The key sent for a connection that has a host but no password: a local OpenAI-compatible server
#: (vLLM, Ollama, LiteLLM without auth) needs none, but the SDKs refuse to start without one.
PLACEHOLDER_API_KEY = "no-key-configured"

#: Where a connection without a host goes: the vendor's own API, written out so that the SDKs'
#: ``*_BASE_URL`` environment variables never choose it.
VENDOR_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}


def resolve_provider(conn_type: str | None, provider: str | None) -> str:
    """
    The provider of a connection: from its type when the type names one, else ``provider``.

    A contradiction (an ``agent_anthropic`` connection used with ``provider="openai"``) is an error
    rather than a guess, because it would send the API key to the wrong vendor.
    """
    from_type = CONN_TYPE_PROVIDERS.get(conn_type or "")
    if from_type and provider and provider != from_type:
        raise ValueError(f"connection type {conn_type!r} is for provider {from_type!r}, not {provider!r}")
    resolved = from_type or provider
    if resolved not in PROVIDERS:
        raise ValueError(
            f"cannot tell the LLM provider of a connection of type {conn_type!r}; "
            f"pass provider= one of {list(PROVIDERS)}"
        )
    return resolved


@dataclass(frozen=True)
class ClientSettings:
    """What an SDK client is built from; nothing else (no environment variable) goes into it."""

    conn_id: str
    provider: str
    api_key: str
    base_url: str
    timeout: float | None = None
    organization: str | None = None
    project: str | None = None

    @property
    def key_fingerprint(self) -> str:
        """A short hash of the key: tells clients of a rotated key apart without keeping the key in a key."""
        return hashlib.sha256(self.api_key.encode()).hexdigest()[:16]

    @property
    def cache_key(self) -> tuple[Any, ...]:
        return (
            self.conn_id,
            self.provider,
            self.key_fingerprint,
            self.base_url,
            self.timeout,
            self.organization,
            self.project,
        )

    def __repr__(self) -> str:  # never show the key
        return (
            f"ClientSettings(conn_id={self.conn_id!r}, provider={self.provider!r}, base_url={self.base_url!r}, "
            f"key=sha256:{self.key_fingerprint})"
        )


def client_settings(
    conn_id: str, provider: str, password: str | None, host: str | None, extras: Mapping[str, Any] | None
) -> ClientSettings:
    """
    The settings of a connection's client, or ``LLMConnectionError`` naming the connection.

    No key and no host is an error (the SDK would otherwise read ``OPENAI_API_KEY`` from the
    environment); a host without a key gets :data:`PLACEHOLDER_API_KEY`.
    """
    extras = extras or {}
    if not password and not host:
        raise LLMConnectionError(
            f"connection {conn_id!r} has no API key (password) and no host: set the key as the "
            f"connection's password, or its host to an endpoint that needs none. Environment variables "
            f"such as {provider.upper()}_API_KEY are never used."
        )
    timeout = extras.get("timeout")
    try:
        timeout_s = None if timeout in (None, "") else float(timeout)
    except (TypeError, ValueError):
        raise LLMConnectionError(
            f"connection {conn_id!r}: extra 'timeout' must be seconds, got {timeout!r}"
        ) from None
    return ClientSettings(
        conn_id=conn_id,
        provider=provider,
        api_key=password or PLACEHOLDER_API_KEY,
        base_url=host or VENDOR_BASE_URLS[provider],
        timeout=timeout_s,
        organization=(str(extras.get("organization")) if extras.get("organization") else None)
        if provider == "openai"
        else None,
        project=(str(extras.get("project")) if extras.get("project") else None)
        if provider == "openai"
        else None,
    )


__all__ = [
    "CONN_TYPE_PROVIDERS",
    "PLACEHOLDER_API_KEY",
    "VENDOR_BASE_URLS",
    "ClientSettings",
    "client_settings",
    "resolve_provider",
]
