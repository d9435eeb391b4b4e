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
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_agent_provider._connections import ANTHROPIC_DEFAULT_CONN_ID, DEFAULT_CONN_IDS, OPENAI_DEFAULT_CONN_ID
from airflow_agent_provider.exceptions import LLMConnectionError as LLMConnectionError
from airflow_agent_provider.llm.adapters import DEFAULT_MODELS, get_adapter
from airflow_agent_provider.llm.types import PROVIDERS, LLMRequest, LLMResponse, Message
from airflow_agent_provider.security.redact import register_secret, scrub, scrub_exception

if TYPE_CHECKING:
    from airflow.sdk import Connection

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

#: The module of each provider's SDK (imported off the loop on the async path).
SDK_MODULES: dict[str, str] = {"openai": "openai", "anthropic": "anthropic"}


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


# -- client settings: everything a client is built from, taken from the connection only -------------


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


def build_client(settings: ClientSettings, *, asynchronous: bool) -> Any:
    """
    The official client for ``settings`` (``OpenAI``/``AsyncOpenAI``, ``Anthropic``/``AsyncAnthropic``).

    Every value is passed explicitly, and what the constructors still read from the environment
    whatever they are given (organization, project, admin key, custom headers, webhook secrets) is
    put back to the connection's values afterwards, then checked.
    """
    kwargs: dict[str, Any] = {"api_key": settings.api_key, "base_url": settings.base_url, "max_retries": 0}
    if settings.timeout is not None:
        kwargs["timeout"] = settings.timeout
    if settings.provider == "openai":
        import openai

        client = (openai.AsyncOpenAI if asynchronous else openai.OpenAI)(
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


# -- process-wide caches: SDK imports, clients -------------------------------------------------------

_import_lock = threading.Lock()
_imports: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future]] = (
    weakref.WeakKeyDictionary()
)


def _warm_sdk(provider: str) -> None:
    """Import the SDK and compute what its adapter caches about it (blocking; run off the loop)."""
    importlib.import_module(SDK_MODULES[provider])
    if provider == "anthropic":
        from airflow_agent_provider.llm.anthropic_adapter import _sdk_accepts

        _sdk_accepts("temperature")


async def aimport_sdk(provider: str) -> None:
    """Import ``provider``'s SDK off the event loop, once: concurrent callers await the same import."""
    name = SDK_MODULES[provider]
    if name in sys.modules and name in _warmed_sdks:
        return
    loop = asyncio.get_running_loop()
    with _import_lock:
        per_loop = _imports.setdefault(loop, {})
        future = per_loop.get(name)
        if future is None:
            future = per_loop[name] = asyncio.ensure_future(asyncio.to_thread(_warm_sdk, provider))
    try:
        await asyncio.shield(future)
    except BaseException:
        with _import_lock:
            if per_loop.get(name) is future and future.done():
                per_loop.pop(name, None)  # a failed import is tried again by the next caller
        raise
    _warmed_sdks.add(name)


_warmed_sdks: set[str] = set()


async def awarm(provider: str | None = None, models: Iterable[tuple[str, str]] = ()) -> None:
    """
    Load off the event loop what the first model call on it would otherwise load on it.

    Imports the SDK of ``provider`` (both when None) and genai-prices with its price data (and the
    lookups of ``models``, ``(provider, model)`` pairs). Once per process: a trigger can await it at
    the start of ``run()`` at no cost after the first. ``acomplete`` imports the SDK the same way by
    itself; awaiting this first also keeps the price lookup of the guard off the loop.
    """
    from airflow_agent_provider.cost.pricing import awarm_prices

    providers = [provider] if provider else list(SDK_MODULES)
    for name in providers:
        await aimport_sdk(name)
    await awarm_prices(list(models))


_sync_lock = threading.Lock()
_sync_clients: dict[tuple[Any, ...], Any] = {}
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)
_MAX_CLIENTS = 256


def sync_client(settings: ClientSettings) -> Any:
    """The process's sync client for ``settings`` (sync clients are thread-safe)."""
    key = settings.cache_key
    client = _sync_clients.get(key)
    if client is None:
        client = build_client(settings, asynchronous=False)
        with _sync_lock:
            if len(_sync_clients) >= _MAX_CLIENTS:
                _sync_clients.clear()
            client = _sync_clients.setdefault(key, client)
    return client


async def async_client(settings: ClientSettings) -> Any:
    """
    The async client for ``settings`` on the running event loop: built (off the loop: importing the
    SDK and creating its TLS context block) on first use, then shared by every caller on that loop.
    """
    loop = asyncio.get_running_loop()
    clients = _async_clients.setdefault(loop, {})
    key = settings.cache_key
    client = clients.get(key)
    if client is None:
        await aimport_sdk(settings.provider)
        built = await asyncio.to_thread(build_client, settings, asynchronous=True)
        client = clients.get(key)
        if client is None:
            if len(clients) >= _MAX_CLIENTS:
                for old in list(clients.values()):
                    await old.close()
                clients.clear()
            client = clients[key] = built
        else:
            await built.close()
    return client


async def aclose_clients() -> None:
    """Close the running loop's cached async clients (tests; a triggerer keeps them for its life)."""
    clients = _async_clients.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.close()


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
        """The connection, fetched without blocking the triggerer's event loop (key registered for masking)."""
        if self._connection is None:
            conn = await self.aget_connection(self.llm_conn_id)
            await _aregister(conn.password)
            self._connection = conn
        return self._connection

    async def aextras(self) -> dict[str, Any]:
        """The connection's extras, read the async way (``extra_dejson`` masks synchronously: not on a loop)."""
        if self._extras is None:
            conn = await self.aconnection()
            reader = getattr(conn, "aextra_dejson", None)
            extras = await reader() if reader is not None else conn.extra_dejson
            self._extras = dict(extras or {})
        return self._extras

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
        return adapter.parse(body, raw.headers, time.monotonic() - start)

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
        return adapter.parse(body, raw.headers, time.monotonic() - start)

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
