"""
Health probes and small HTTP helpers of the native launcher (no Airflow, no Redis client).

Each probe answers one question about a component that the launcher started: does Redis answer
``PING`` (after ``AUTH``), does an HTTP endpoint answer 2xx, is a Celery worker consuming. They are
written against the wire (sockets, ``urllib``) so that the launcher needs nothing it starts itself.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.deploy.processes import port_open

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_agent_provider.deploy.processes import Proc


class LLMAdmin:
    """Admin client of the local LLM server (stats, reset, configure) by URL."""

    def __init__(self, url: str) -> None:
        from airflow_agent_provider.testing.llm_server import _AdminClient

        client = _AdminClient()
        client.url = url
        self._client = client
        self.url = url

    def stats(self) -> dict[str, Any]:
        return self._client.stats()

    def reset(self) -> None:
        self._client.reset()

    def configure(self, **fields: Any) -> dict[str, Any]:
        return self._client.configure(**fields)


def http_json(
    url: str, *, method: str = "GET", body: Any = None, token: str | None = None, timeout: float = 10.0
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def log_server_open(proc: Proc) -> bool:
    """The health check of a component without one of its own: its log server answers."""
    return port_open(proc.ports["log_server"])


def url_password(url: str) -> str | None:
    try:
        return urllib.parse.urlsplit(url).password
    except ValueError:
        return None


def _resp(*words: str) -> bytes:
    """A Redis command in the protocol's array form (safe for any password)."""
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def redis_ping(port: int, password: str | None = None) -> bool:
    """PING (after AUTH when the server has a password) answered with PONG."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall((_resp("AUTH", password) if password else b"") + _resp("PING"))
        buf = b""
        while buf.count(b"\r\n") < (2 if password else 1):
            chunk = sock.recv(256)
            if not chunk:
                break
            buf += chunk
        return buf.splitlines()[-1:] == [b"+PONG"] if buf else False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return bool(200 <= resp.status < 300)
    except (OSError, urllib.error.URLError):
        return False


def worker_ready(log: Path) -> bool:
    """Celery prints ``ready.`` once the node consumes from the broker."""
    try:
        return " ready." in log.read_text(errors="replace")
    except OSError:
        return False


def health_checks(
    ports: dict[str, int], redis_password: str | None, llm_url: str, monitor: dict[str, Any]
) -> dict[str, Callable[[], bool]]:
    """Per component of a local deployment, the check that says it is healthy (its own endpoint)."""
    from airflow_agent_provider.deploy import postgres

    return {
        "postgres": lambda: postgres.ready(ports["postgres"]),
        "redis": lambda: redis_ping(ports["redis"], redis_password),
        "llm-server": lambda: http_ok(llm_url + "/_admin/stats"),
        "airflow-apiserver": lambda: monitor.get("metadatabase", {}).get("status") == "healthy",
        "airflow-scheduler": lambda: http_ok(f"http://127.0.0.1:{ports['scheduler_health']}/health"),
        "airflow-dag-processor": lambda: monitor.get("dag_processor", {}).get("status") == "healthy",
        "airflow-triggerer": lambda: monitor.get("triggerer", {}).get("status") == "healthy",
    }


__all__ = [
    "health_checks",
    "LLMAdmin",
    "http_json",
    "http_ok",
    "log_server_open",
    "redis_ping",
    "url_password",
    "worker_ready",
]
