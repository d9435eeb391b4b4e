"""Small loopback HTTP servers for the trust-boundary tests (stdlib only, bounded, one thread each).

``EchoGateway`` plays a gateway that puts the request's headers (Authorization, x-api-key...) into a
401 (or 429) error body, as some proxies do. ``RecordingServer`` answers like OpenAI / Anthropic
with a minimal valid reply and records every request's headers: as a "trap" it shows that nothing
reached it, as an endpoint it shows what the SDK really sent.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                status, headers, payload = owner.answer(self)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class EchoGateway(_Server):
    """Answers every request with ``status`` and the request's own headers in the error body (and
    in a response header), plus ``retry-after`` for a 429."""

    def __init__(self, status: int = 401) -> None:
        super().__init__()
        self.status = status

    def answer(self, handler):
        echoed = {k: v for k, v in handler.headers.items()}
        headers = {"x-echo-authorization": handler.headers.get("authorization", "")}
        if self.status == 429:
            headers["retry-after"] = "7"
        message = f"gateway refused the request; it carried {json.dumps(echoed)}"
        body = {
            "error": {
                "message": message,
                "type": "authentication_error" if self.status == 401 else "rate_limit",
                "code": None,
                "headers": echoed,
            }
        }
        return self.status, headers, body


class RecordingServer(_Server):
    """A minimal OpenAI/Anthropic-compatible endpoint that records what it was sent."""

    def answer(self, handler):
        if handler.command == "GET":
            return (
                200,
                {},
                {"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "t"}]},
            )
        if handler.path.endswith("/messages"):
            return (
                200,
                {"request-id": "req_1"},
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-6",
                    "content": [{"type": "text", "text": "recorded"}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 3, "output_tokens": 1},
                },
            )
        return (
            200,
            {"x-request-id": "req_1"},
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-5-mini",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "recorded"},
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            },
        )
