"""
Building the official SDK clients from :class:`~airflow_agent_provider.hooks._client_settings.ClientSettings`.

The SDK is imported inside :func:`build_client` (never at module level: DAG parsing imports the
hooks). Clients are created with ``max_retries=0`` (retries belong to the provider's resilience layer)
and pinned to the connection's key and URL, which is checked before a client is handed out.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.exceptions import LLMConnectionError

if TYPE_CHECKING:
    from airflow_agent_provider.hooks._client_settings import ClientSettings

#: The SDKs' own copy of httpx (``httpx2``) logs every request at INFO ("HTTP Request: POST ...").
#: Airflow sets its ``httpx`` logger to WARN for that reason but does not know this one, and
#: ``[logging] namespace_levels`` does not reach stdlib loggers. In a triggerer a fleet's hundreds of
#: such lines went through the trigger runner's pipe to its supervisor, where one run of 500
#: triggerer-only agents deadlocked the two (README: Benchmarks, *The triggerer deadlock*).
SDK_HTTP_LOGGERS = ("httpx2",)


def quiet_sdk_http_logs() -> None:
    """The SDKs' per-request INFO lines off (WARNING), unless the deployment set a level for them."""
    for name in SDK_HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def build_client(settings: ClientSettings, *, asynchronous: bool) -> Any:
    """
    The official client for ``settings`` (``OpenAI``/``AsyncOpenAI``, ``Anthropic``/``AsyncAnthropic``).

    Every value is passed explicitly, and what the constructors still read from the environment
    whatever they are given (organization, project, admin key, custom headers, webhook secrets) is
    put back to the connection's values afterwards, then checked.
    """
    quiet_sdk_http_logs()
    kwargs: dict[str, Any] = {"api_key": settings.api_key, "base_url": settings.base_url, "max_retries": 0}
    if settings.timeout is not None:
        kwargs["timeout"] = settings.timeout
    if settings.provider == "openai":
        import openai

        client: Any = (openai.AsyncOpenAI if asynchronous else openai.OpenAI)(
            organization=settings.organization, project=settings.project, **kwargs
        )
        client.organization = settings.organization
        client.project = settings.project
        for name in ("admin_api_key", "webhook_secret"):
            if hasattr(client, name):
                setattr(client, name, None)
        if hasattr(client, "_ambient_authorizations"):
            client._ambient_authorizations = frozenset()
    else:
        import anthropic

        client = (anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic)(**kwargs)
        if hasattr(client, "webhook_key"):
            client.webhook_key = None
    # *_CUSTOM_HEADERS from the environment would be sent with every request; we pass none.
    client._custom_headers = {}
    _check_pinned(client, settings)
    return client


def _check_pinned(client: Any, settings: ClientSettings) -> None:
    """Refuse a client that would send anything but the connection's key to the connection's URL."""
    problems = []
    if getattr(client, "api_key", None) != settings.api_key:
        problems.append("API key")
    if getattr(client, "auth_token", None):
        problems.append("auth token")
    if str(client.base_url).rstrip("/") != settings.base_url.rstrip("/"):
        problems.append("base URL")
    if problems:
        raise LLMConnectionError(
            f"connection {settings.conn_id!r}: the {settings.provider} SDK took its {', '.join(problems)} from "
            "somewhere other than the connection; refusing to call it"
        )


__all__ = ["build_client"]
