"""
A local, deterministic OpenAI- and Anthropic-compatible LLM server for tests, the demo and benchmarks.

It speaks the real wire formats, so the real ``openai`` and ``anthropic`` SDK clients (sync and
async) talk to it over HTTP exactly as they would to the vendors; nothing in the provider needs a
test double. Endpoints: ``POST /v1/chat/completions`` (OpenAI, base URL ``<root>/v1``),
``POST /v1/messages`` (Anthropic, base URL ``<root>``), ``GET /v1/models``, and the admin routes
``GET /_admin/stats``, ``POST /_admin/reset``, ``POST /_admin/config``.

Reply rules (first match wins; markers are read from the last user message, then the system prompt)
-------------------------------------------------------------------------------------------------
1. A forced tool (Anthropic ``tool_choice={"type": "tool", "name": X}``, OpenAI
   ``tool_choice={"type": "function", ...}``) -> a call of X with a minimal schema instance as
   arguments; ``[[json: {...}]]`` or ``[[tool:X {...}]]`` override them (a ``[[json:]]`` that is not
   a JSON object is answered as plain text, like a misbehaving model).
2. ``[[tool-loop:NAME]]`` -> always a call of NAME (tests round bounds).
3. ``[[tool:NAME {"json": "args"}]]`` (one or more; args optional, default from the schema) -> those
   tool calls, when tools are offered and the last message is not a tool result.
4. No content marker, tools offered, no tool result in the conversation yet -> one call of every
   offered tool, arguments generated from its JSON schema (required properties only, strings
   ``"example"``, integers 1, numbers 1.0, booleans true, first enum value, one array item).
   Answer tools (config ``answer_tools``, default ``["agent_output"]``, the tool the Anthropic
   adapter uses for structured output next to other tools) are left out of this round.
4b. An answer tool is offered (and ``tool_choice`` is not ``none``; in ``auto`` mode also no
   ``[[reply:]]``) -> a call of the answer tool, arguments as in rule 1: the structured final answer.
5. ``[[reply: TEXT]]`` -> exactly TEXT.
6. ``[[json: ...]]`` -> that text verbatim (may be invalid JSON on purpose).
7. Structured output (OpenAI ``response_format`` ``json_schema``, Anthropic ``output_config.format``
   / ``output_format``) -> a minimal JSON instance valid for the schema (``json_object`` mode ->
   ``{"text": <echo>}``).
8. Tool results since the last user text -> ``"[<model>] Tool results: NAME -> <excerpt>; ..."``.
9. Otherwise ``"[<model>] " + first 200 characters of the last user message`` with markers removed
   (so an upstream answer pasted into a downstream prompt does not re-trigger its markers).

``tool_choice`` ``none`` disables tool calls; ``required`` / ``any`` turns a text answer into calls
of every offered tool.

Other markers: ``[[fail:CODE]]`` -> that error on every request; ``[[fail:CODE xN]]`` -> only the
first N requests carrying that exact marker text and the same first user message fail;
``[[latency:1.5]]`` -> wait 1.5 s before answering; ``[[usage: in=100 out=20 cached=10]]`` -> report
that usage (any subset). CODE is one of 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503,
504, 529.

Usage: input tokens = ceil(characters of messages + system + tool schemas / 4), output tokens =
ceil(characters of the reply / 4), both at least 1. OpenAI ``prompt_tokens`` includes
``cached_tokens``; Anthropic reports them the way the real API does: ``input_tokens`` excludes
``cache_read_input_tokens`` (so ``in=100 cached=10`` gives ``input_tokens=90``,
``cache_read_input_tokens=10``).

Failure injection and configuration
-----------------------------------
Headers ``x-llm-fail: CODE`` (or ``CODE xN``, counted per header text and first user message) and
``x-llm-latency: SECONDS`` act like the markers and take precedence over them.
Config (constructor keywords, CLI flags, ``POST /_admin/config``): ``latency`` (added to every
request), ``fail_rate`` with ``fail_mix`` (codes and ``"slow"``, which waits ``slow_seconds``) drawn
from a ``seed``-ed generator, ``retry_after`` (the ``retry-after`` of 429s), and the rate-limit
headers (``ratelimit_*``; remaining values default to limit minus use in the last 60 s). Latency
uses ``asyncio.sleep`` so concurrent requests overlap. Error bodies use each API's real format.

Authentication: any non-empty key (``Authorization: Bearer`` or ``x-api-key``) is accepted, a
missing key or the key ``invalid-key`` gives 401. Keys are never logged or recorded.

Run it in-process with :class:`LLMServer`, as a subprocess with :meth:`LLMServer.spawn`, or from
the command line::

    python -m airflow_agent_provider.testing.llm_server --port 8765 --fail-rate 0.1 --seed 1
"""

from __future__ import annotations

import argparse
import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import uvicorn

from airflow_agent_provider.testing.batch_routes import BatchAdminClient
from airflow_agent_provider.testing.connections import connection_env
from airflow_agent_provider.testing.llm_app import create_app
from airflow_agent_provider.testing.server_state import ServerConfig, ServerState

if TYPE_CHECKING:
    from fastapi import FastAPI

# --------------------------------------------------------------------------------------------------
# Handles: in-process thread and subprocess
# --------------------------------------------------------------------------------------------------


class _AdminClient(BatchAdminClient):
    """Admin calls over HTTP, so they work the same against an in-process or a spawned server."""

    url: str

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def connection_env(self, api_key: str = "test-key") -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables for the default connections, pointing at this server."""
        return connection_env(self.openai_base_url, self.anthropic_base_url, api_key)

    def _admin(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        """Server-side counters: requests, by_path, by_model, by_status, in_flight, max_in_flight, log."""
        stats: dict[str, Any] = self._admin("GET", "/_admin/stats")
        return stats

    def reset(self) -> None:
        """Clear stats and ``xN`` counters and restore the start configuration."""
        self._admin("POST", "/_admin/reset", {})

    def configure(self, **fields: Any) -> dict[str, Any]:
        """Update configuration fields (see :class:`ServerConfig`); returns the new configuration."""
        config: dict[str, Any] = self._admin("POST", "/_admin/config", fields)["config"]
        return config


class LLMServer(_AdminClient):
    """
    The server running in a background thread of this process.

    ``port=0`` picks a free port. Keyword arguments are :class:`ServerConfig` fields and are
    validated immediately, so a bad configuration fails at construction rather than at start.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        self.host = host
        self.port = port
        self.config = ServerConfig(**config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app: FastAPI | None = None

    @property
    def url(self) -> str:  # type: ignore[override]  # a computed property where _AdminClient has a plain attribute
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> ServerState:
        """Direct access to the state (same process only); prefer :meth:`stats` in tests."""
        if self.app is None:
            raise RuntimeError("server not started")
        state: ServerState = self.app.state.llm
        return state

    def start(self, timeout: float = 10.0) -> LLMServer:
        """Bind the socket, start uvicorn in a daemon thread and wait until it accepts requests."""
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.app = create_app(self.config)
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", loop="asyncio", backlog=2048
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"llm-server-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"LLM server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @classmethod
    def spawn(
        cls, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 30.0, **config: Any
    ) -> SpawnedLLMServer:
        """Start the server as a subprocess (``python -m ...llm_server``) and wait until it is ready."""
        return spawn_llm_server(host, port, timeout=timeout, **config)


class SpawnedLLMServer(_AdminClient):
    """Handle of a server running in a subprocess."""

    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url

    def terminate(self, timeout: float = 10.0) -> None:
        """SIGTERM the subprocess and wait for it (kill if it does not exit in time)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    stop = terminate

    def __enter__(self) -> SpawnedLLMServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()


READY_PREFIX = "LLM_SERVER_URL="


def spawn_llm_server(
    host: str = "127.0.0.1", port: int = 0, *, timeout: float = 30.0, **config: Any
) -> SpawnedLLMServer:
    """
    Start ``python -m airflow_agent_provider.testing.llm_server`` and return its handle.

    The child prints ``LLM_SERVER_URL=<url>`` on stdout once it listens, which is how ``port=0``
    reports the port it got without racing another process for a pre-picked one.
    """
    ServerConfig(**config)  # validate here, where the error is readable
    cmd = [
        sys.executable,
        "-m",
        "airflow_agent_provider.testing.llm_server",
        "--host",
        host,
        "--port",
        str(port),
        "--config-json",
        json.dumps(config),
    ]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if process.stdout is None:  # stdout=PIPE always gives one; this narrows the type
        raise RuntimeError("spawned LLM server has no stdout pipe")
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            if line.decode().startswith(READY_PREFIX) or not line:
                break
    text = line.decode().strip()
    if not text.startswith(READY_PREFIX):
        handle = SpawnedLLMServer(process, "")
        handle.terminate()
        raise RuntimeError(f"LLM server subprocess did not start (exit code {process.returncode})")
    return SpawnedLLMServer(process, text[len(READY_PREFIX) :])


def _parse_mix(value: str) -> list[int | str]:
    return [int(p) if p.strip().isdigit() else p.strip() for p in value.split(",") if p.strip()]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; runs until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description="Local OpenAI/Anthropic-compatible LLM server for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float)
    parser.add_argument("--fail-rate", type=float)
    parser.add_argument("--fail-mix", type=_parse_mix, help="comma list of codes and 'slow'")
    parser.add_argument("--slow-seconds", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--retry-after")
    parser.add_argument("--config-json", default="{}", help="any ServerConfig fields as a JSON object")
    args = parser.parse_args(argv)
    config: dict[str, Any] = json.loads(args.config_json)
    for name in ("latency", "fail_rate", "fail_mix", "slow_seconds", "seed", "retry_after"):
        value = getattr(args, name)
        if value is not None:
            config[name] = value
    server = LLMServer(args.host, args.port, **config).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(READY_PREFIX + server.url, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


__all__ = ["LLMServer", "ServerConfig", "SpawnedLLMServer", "create_app", "main", "spawn_llm_server"]


if __name__ == "__main__":
    sys.exit(main())
