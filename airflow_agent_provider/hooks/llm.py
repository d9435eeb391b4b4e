"""Hooks that talk to LLM providers with their official SDK clients.

The hook owns only what is Airflow-specific: reading the Connection (API key, base URL, extras)
and building SDK clients from it. Request building and response parsing live in the Airflow-free
adapters (``airflow_agent_provider.llm``), shared by the sync path (worker) and the async path
(triggerer), so both paths produce identical ``LLMResponse`` objects.

SDK clients are created with ``max_retries=0``: a hidden retry inside the SDK would bypass the
shared rate limiter and budget and double-charge silently. Retries belong to the provider's
resilience layer and to Airflow.
"""

from __future__ import annotations

import inspect
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_agent_provider.llm.adapters import DEFAULT_MODELS, get_adapter
from airflow_agent_provider.llm.types import PROVIDERS, LLMRequest, LLMResponse, Message

if TYPE_CHECKING:
    from airflow.sdk import Connection

#: Connection types that name their provider; any other type needs the ``provider`` argument.
CONN_TYPE_PROVIDERS: dict[str, str] = {
    "agent_openai": "openai",
    "agent_anthropic": "anthropic",
    "openai": "openai",
    "anthropic": "anthropic",
}
DEFAULT_CONN_IDS: dict[str, str] = {"openai": "agent_openai_default", "anthropic": "agent_anthropic_default"}


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


class LLMHook(BaseHook):
    """
    Call an LLM (OpenAI, Anthropic or an OpenAI-compatible endpoint) through an Airflow Connection.

    The connection's password is the API key and its host the base URL (empty for the vendor's
    default). Extras: ``organization``, ``project`` (OpenAI), ``default_model``, ``timeout``.

    :param llm_conn_id: Airflow Connection id.
    :param provider: ``openai`` or ``anthropic``; needed only when the connection type does not say.
    """

    conn_name_attr = "llm_conn_id"
    default_conn_name = "agent_openai_default"
    conn_type = "agent_openai"
    hook_name = "LLM agent connection"

    def __init__(self, llm_conn_id: str | None = None, provider: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.llm_conn_id = llm_conn_id or (DEFAULT_CONN_IDS[provider] if provider in DEFAULT_CONN_IDS else self.default_conn_name)
        self._provider_arg = provider
        self._connection: Connection | None = None

    # -- connection -------------------------------------------------------------------------------

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = self.get_connection(self.llm_conn_id)
        return self._connection

    async def aconnection(self) -> Connection:
        """The connection, fetched without blocking the triggerer's event loop."""
        if self._connection is None:
            self._connection = await self.aget_connection(self.llm_conn_id)
        return self._connection

    @cached_property
    def provider(self) -> str:
        return resolve_provider(self.connection.conn_type, self._provider_arg)

    @property
    def extras(self) -> dict[str, Any]:
        return self.connection.extra_dejson or {}

    @property
    def default_model(self) -> str:
        """The connection's ``default_model`` extra, else the provider's default."""
        return str(self.extras.get("default_model") or DEFAULT_MODELS[self.provider])

    @staticmethod
    def _client_kwargs(conn: Connection, provider: str) -> dict[str, Any]:
        extras = conn.extra_dejson or {}
        kwargs: dict[str, Any] = {"base_url": conn.host or None, "max_retries": 0}
        # OpenAI-compatible local servers often need no key, but the SDK insists on one.
        kwargs["api_key"] = conn.password or ("unused" if conn.host else None)
        if extras.get("timeout") not in (None, ""):
            kwargs["timeout"] = float(extras["timeout"])
        if provider == "openai":
            kwargs["organization"] = extras.get("organization") or None
            kwargs["project"] = extras.get("project") or None
        return kwargs

    def _make_client(self, conn: Connection, provider: str, *, asynchronous: bool) -> Any:
        kwargs = self._client_kwargs(conn, provider)
        if provider == "openai":
            import openai

            return (openai.AsyncOpenAI if asynchronous else openai.OpenAI)(**kwargs)
        import anthropic

        return (anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic)(**kwargs)

    def get_conn(self) -> Any:
        """The official sync client (``openai.OpenAI`` or ``anthropic.Anthropic``), SDK retries off."""
        return self._sync_client

    @cached_property
    def _sync_client(self) -> Any:
        return self._make_client(self.connection, self.provider, asynchronous=False)

    async def get_async_conn(self) -> Any:
        """A new official async client (``AsyncOpenAI`` / ``AsyncAnthropic``); the caller closes it."""
        conn = await self.aconnection()
        provider = resolve_provider(conn.conn_type, self._provider_arg)
        return self._make_client(conn, provider, asynchronous=True)

    # -- calls ------------------------------------------------------------------------------------

    @staticmethod
    def _raw_create(client: Any, provider: str) -> Any:
        """The SDK method that returns the raw HTTP response (headers) alongside the parsed body."""
        if provider == "openai":
            return client.chat.completions.with_raw_response.create
        return client.messages.with_raw_response.create

    def _check_provider(self, request: LLMRequest, provider: str) -> None:
        if request.provider != provider:
            raise ValueError(
                f"request is for provider {request.provider!r} but connection {self.llm_conn_id!r} is {provider!r}"
            )

    def complete(self, request: LLMRequest) -> LLMResponse:
        """Make one model call and return the normalised response (usage, request id, latency, headers)."""
        self._check_provider(request, self.provider)
        adapter = get_adapter(self.provider)
        kwargs = adapter.build_kwargs(request)
        start = time.monotonic()
        raw = self._raw_create(self.get_conn(), self.provider)(**kwargs)
        body = raw.parse()
        return adapter.parse(body, raw.headers, time.monotonic() - start)

    async def acomplete(self, request: LLMRequest) -> LLMResponse:
        """The async twin of :meth:`complete`, for triggers; same request building and parsing."""
        conn = await self.aconnection()
        provider = resolve_provider(conn.conn_type, self._provider_arg)
        self._check_provider(request, provider)
        adapter = get_adapter(provider)
        kwargs = adapter.build_kwargs(request)
        client = self._make_client(conn, provider, asynchronous=True)
        try:
            start = time.monotonic()
            raw = await self._raw_create(client, provider)(**kwargs)
            body = raw.parse()
            if inspect.isawaitable(body):
                body = await body
            return adapter.parse(body, raw.headers, time.monotonic() - start)
        finally:
            await client.close()

    def test_connection(self) -> tuple[bool, str]:
        """
        Check key and base URL: list models, or, where the endpoint has no model list, a 1-token call.

        The message never contains the key (SDK error messages do not include it).
        """
        try:
            client = self.get_conn()
            try:
                page = client.models.list()
                count = len(list(getattr(page, "data", []) or []))
                return True, f"Connection to {self.provider} works ({count} models listed)."
            except Exception as exc:
                if getattr(exc, "status_code", None) not in (404, 405):
                    raise
            request = LLMRequest(
                provider=self.provider,
                model=self.default_model,
                messages=[Message(role="user", content="ping")],
                max_tokens=1,
            )
            response = self.complete(request)
            return True, f"Connection to {self.provider} works (model {response.model or request.model} answered)."
        except Exception as exc:
            return False, f"{type(exc).__name__}: {str(exc)[:500]}"


class OpenAIAgentHook(LLMHook):
    """LLM hook for ``agent_openai`` connections (OpenAI and OpenAI-compatible endpoints)."""

    default_conn_name = "agent_openai_default"
    conn_type = "agent_openai"
    hook_name = "OpenAI / OpenAI-compatible (agents)"

    def __init__(self, llm_conn_id: str = default_conn_name, provider: str | None = "openai", **kwargs: Any) -> None:
        super().__init__(llm_conn_id=llm_conn_id, provider=provider, **kwargs)


class AnthropicAgentHook(LLMHook):
    """LLM hook for ``agent_anthropic`` connections."""

    default_conn_name = "agent_anthropic_default"
    conn_type = "agent_anthropic"
    hook_name = "Anthropic (agents)"

    def __init__(
        self, llm_conn_id: str = default_conn_name, provider: str | None = "anthropic", **kwargs: Any
    ) -> None:
        super().__init__(llm_conn_id=llm_conn_id, provider=provider, **kwargs)
