"""
Hooks that talk to LLM providers with their official SDK clients.

The hook owns only what is Airflow-specific: reading the Connection (API key, base URL, extras)
and building SDK clients from it. Request building and response parsing live in the Airflow-free
adapters (``airflow_agent_provider.llm``), shared by the sync path (worker) and the async path
(triggerer), so both paths produce identical ``LLMResponse`` objects.

SDK clients are created with ``max_retries=0``: a hidden retry inside the SDK would bypass the
shared rate limiter and budget and double-charge silently. Retries belong to the provider's
resilience layer and to Airflow.

Trust rules kept here (issue 13):

* **No ambient credentials.** Every client gets its key, base URL, organization and project from
  the Connection and nowhere else: the SDKs' environment fallbacks (``OPENAI_API_KEY``,
  ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``, ``OPENAI_ADMIN_KEY``,
  ``OPENAI_CUSTOM_HEADERS``, ``ANTHROPIC_API_KEY``, ``ANTHROPIC_AUTH_TOKEN``,
  ``ANTHROPIC_BASE_URL``, ``ANTHROPIC_CUSTOM_HEADERS``, profiles) are never used. A connection
  without a key and without a host is an error that names it; a connection with a host and no key
  (a local OpenAI-compatible server) sends the placeholder key :data:`PLACEHOLDER_API_KEY`.
* **Secrets never leave in text.** The key is registered with Airflow's secrets masker (logs) and
  with :mod:`airflow_agent_provider.security.redact` (everything else); every exception that leaves
  ``complete``/``acomplete`` is a scrubbed copy of the SDK error (same type, status code and
  retry headers), and ``test_connection`` returns scrubbed text.

The triggerer (hundreds of triggers on one event loop) gets non-blocking calls: the connection is
read with the Task SDK's async lookup, the SDK is imported off the loop once per process
(:func:`awarm`), and async clients are cached per event loop and (connection id, key fingerprint,
base URL, options), so all triggers of one connection share one client and its connection pool.

The hooks live here; their parts in private modules, re-exported from this one (the public API):
``_client_settings`` (what a client is built from, Airflow-free), ``_sdk_clients`` (building and
pinning an SDK client) and ``_client_cache`` (SDK imports off the loop, shared clients).
"""

from __future__ import annotations

import inspect
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_agent_provider._connections import (
    ANTHROPIC_DEFAULT_CONN_ID,
    DEFAULT_CONN_IDS,
    OPENAI_DEFAULT_CONN_ID,
)
from airflow_agent_provider.exceptions import LLMConnectionError
from airflow_agent_provider.hooks._client_cache import (
    SDK_MODULES,
    aclose_clients,
    aimport_sdk,
    async_client,
    awarm,
    shared_connection,
    sync_client,
)
from airflow_agent_provider.hooks._client_settings import (
    CONN_TYPE_PROVIDERS,
    PLACEHOLDER_API_KEY,
    VENDOR_BASE_URLS,
    ClientSettings,
    client_settings,
    resolve_provider,
)
from airflow_agent_provider.hooks._sdk_clients import build_client
from airflow_agent_provider.llm.adapters import DEFAULT_MODELS, get_adapter
from airflow_agent_provider.llm.types import LLMRequest, LLMResponse, Message
from airflow_agent_provider.security.redact import register_secret, scrub, scrub_exception

if TYPE_CHECKING:
    from airflow.sdk import Connection


def _register(secret: str | None) -> None:
    if not secret:
        return
    register_secret(secret)
    try:
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
    except ImportError:  # pragma: no cover - older task SDK
        pass


async def _aregister(secret: str | None) -> None:
    if not secret:
        return
    register_secret(secret)
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:  # pragma: no cover - older task SDK
        return
    await amask_secret(secret)


class LLMHook(BaseHook):
    """
    Call an LLM (OpenAI, Anthropic or an OpenAI-compatible endpoint) through an Airflow Connection.

    The connection's password is the API key and its host the base URL (empty for the vendor's
    default). A connection needs at least one of the two; with a host and no key the placeholder
    key ``no-key-configured`` is sent. Extras: ``organization``, ``project`` (OpenAI),
    ``default_model``, ``timeout``. Nothing is taken from the process environment.

    :param llm_conn_id: Airflow Connection id.
    :param provider: ``openai`` or ``anthropic``; needed only when the connection type does not say.
    """

    conn_name_attr = "llm_conn_id"
    default_conn_name = OPENAI_DEFAULT_CONN_ID
    conn_type = "agent_openai"
    hook_name = "LLM agent connection"

    def __init__(self, llm_conn_id: str | None = None, provider: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.llm_conn_id = llm_conn_id or (
            DEFAULT_CONN_IDS[provider] if provider in DEFAULT_CONN_IDS else self.default_conn_name
        )
        self._provider_arg = provider
        self._connection: Connection | None = None
        self._extras: dict[str, Any] | None = None

    # -- connection -------------------------------------------------------------------------------

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            conn = self.get_connection(self.llm_conn_id)
            _register(conn.password)
            self._connection = conn
        return self._connection

    async def aconnection(self) -> Connection:
        """
        The connection, fetched without blocking the triggerer's event loop (key registered for masking).

        Shared with the other triggers of this connection on the loop for ``CONNECTION_TTL_S``
        (:func:`~airflow_agent_provider.hooks._client_cache.shared_connection`).
        """
        if self._connection is not None:
            return self._connection
        conn, extras = await shared_connection(self.llm_conn_id, self._aread)
        self._connection = conn
        if self._extras is None:
            self._extras = dict(extras)
        return conn

    async def _aread(self) -> tuple[Connection, dict[str, Any]]:
        conn = await self.aget_connection(self.llm_conn_id)
        await _aregister(conn.password)
        # The async reader: ``extra_dejson`` masks synchronously, which must not run on a loop.
        reader = getattr(conn, "aextra_dejson", None)
        extras = await reader() if reader is not None else conn.extra_dejson
        return conn, dict(extras or {})

    async def aextras(self) -> dict[str, Any]:
        """The connection's extras, read the async way with the connection."""
        if self._extras is None:
            await self.aconnection()
        return dict(self._extras or {})

    @cached_property
    def provider(self) -> str:
        return resolve_provider(self.connection.conn_type, self._provider_arg)

    @property
    def extras(self) -> dict[str, Any]:
        if self._extras is None:
            self._extras = dict(self.connection.extra_dejson or {})
        return self._extras

    @property
    def default_model(self) -> str:
        """The connection's ``default_model`` extra, else the provider's default."""
        return str(self.extras.get("default_model") or DEFAULT_MODELS[self.provider])

    def settings(self) -> ClientSettings:
        """The client settings of this hook's connection (``LLMConnectionError`` when unusable)."""
        conn = self.connection
        return client_settings(self.llm_conn_id, self.provider, conn.password, conn.host, self.extras)

    async def asettings(self) -> ClientSettings:
        """:meth:`settings` for the event loop."""
        conn = await self.aconnection()
        provider = resolve_provider(conn.conn_type, self._provider_arg)
        return client_settings(self.llm_conn_id, provider, conn.password, conn.host, await self.aextras())

    def get_conn(self) -> Any:
        """The official sync client (``openai.OpenAI`` or ``anthropic.Anthropic``), SDK retries off."""
        return sync_client(self.settings())

    async def get_async_conn(self) -> Any:
        """The shared async client of this connection on the running loop (do not close it)."""
        return await async_client(await self.asettings())

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

    def _secrets(self) -> tuple[str, ...]:
        conn = self._connection
        return (conn.password,) if conn is not None and conn.password else ()

    def complete(self, request: LLMRequest) -> LLMResponse:
        """
        Make one model call and return the normalised response (usage, request id, latency, headers).

        Errors are the SDK's, scrubbed of the key and of credential headers (see the module docstring).
        """
        try:
            return self._complete(request)
        except Exception as exc:
            clean = scrub_exception(exc, self._secrets())
            if clean is exc:
                raise
        raise clean from clean.__cause__

    def _complete(self, request: LLMRequest) -> LLMResponse:
        self._check_provider(request, self.provider)
        adapter = get_adapter(self.provider)
        kwargs = adapter.build_kwargs(request)
        client = self.get_conn()
        start = time.monotonic()
        raw = self._raw_create(client, self.provider)(**kwargs)
        body = raw.parse()
        response: LLMResponse = adapter.parse(body, raw.headers, time.monotonic() - start)
        return response

    async def acomplete(self, request: LLMRequest) -> LLMResponse:
        """
        The async twin of :meth:`complete`, for triggers; same request building, parsing and scrubbing.

        Nothing blocks the loop: the connection is read asynchronously, the SDK imported and the
        client built off the loop on first use, then the client is reused by every call on the loop.
        """
        try:
            return await self._acomplete(request)
        except Exception as exc:
            clean = scrub_exception(exc, self._secrets())
            if clean is exc:
                raise
        raise clean from clean.__cause__

    async def _acomplete(self, request: LLMRequest) -> LLMResponse:
        settings = await self.asettings()
        self._check_provider(request, settings.provider)
        client = await async_client(settings)
        adapter = get_adapter(settings.provider)
        kwargs = adapter.build_kwargs(request)
        start = time.monotonic()
        raw = await self._raw_create(client, settings.provider)(**kwargs)
        body = raw.parse()
        if inspect.isawaitable(body):
            body = await body
        response: LLMResponse = adapter.parse(body, raw.headers, time.monotonic() - start)
        return response

    def test_connection(self) -> tuple[bool, str]:
        """
        Check key and base URL: list models, or, where the endpoint has no model list, a 1-token call.

        The message is scrubbed: no key, no credential header, even when the endpoint echoes them.
        """
        try:
            ok, message = self._test_connection()
        except Exception as exc:
            ok, message = False, f"{type(exc).__name__}: {str(exc)[:500]}"
        return ok, scrub(message, self._secrets())

    def _test_connection(self) -> tuple[bool, str]:
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
        return (
            True,
            f"Connection to {self.provider} works (model {response.model or request.model} answered).",
        )


class OpenAIAgentHook(LLMHook):
    """LLM hook for ``agent_openai`` connections (OpenAI and OpenAI-compatible endpoints)."""

    default_conn_name = OPENAI_DEFAULT_CONN_ID
    conn_type = "agent_openai"
    hook_name = "OpenAI / OpenAI-compatible (agents)"

    def __init__(
        self, llm_conn_id: str = default_conn_name, provider: str | None = "openai", **kwargs: Any
    ) -> None:
        super().__init__(llm_conn_id=llm_conn_id, provider=provider, **kwargs)


class AnthropicAgentHook(LLMHook):
    """LLM hook for ``agent_anthropic`` connections."""

    default_conn_name = ANTHROPIC_DEFAULT_CONN_ID
    conn_type = "agent_anthropic"
    hook_name = "Anthropic (agents)"

    def __init__(
        self, llm_conn_id: str = default_conn_name, provider: str | None = "anthropic", **kwargs: Any
    ) -> None:
        super().__init__(llm_conn_id=llm_conn_id, provider=provider, **kwargs)


__all__ = [
    "ANTHROPIC_DEFAULT_CONN_ID",
    "CONN_TYPE_PROVIDERS",
    "DEFAULT_CONN_IDS",
    "OPENAI_DEFAULT_CONN_ID",
    "PLACEHOLDER_API_KEY",
    "SDK_MODULES",
    "VENDOR_BASE_URLS",
    "AnthropicAgentHook",
    "ClientSettings",
    "LLMConnectionError",
    "LLMHook",
    "OpenAIAgentHook",
    "aclose_clients",
    "aimport_sdk",
    "async_client",
    "awarm",
    "build_client",
    "client_settings",
    "resolve_provider",
    "sync_client",
]
