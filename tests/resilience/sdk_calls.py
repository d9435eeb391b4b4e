"""Real SDK calls against the local LLM server, for the resilience tests.

Clients are built with ``max_retries=0``: the SDKs' own retries are off in the provider too, so every
HTTP request the server counts is one attempt of ours.
"""

from __future__ import annotations

import socket
from typing import Any

import anthropic
import openai

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"


def openai_client(base_url: str, *, api_key: str = "test-key", **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, **kwargs)


def anthropic_client(base_url: str, *, api_key: str = "test-key", **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=0, **kwargs)


def call_openai(client: openai.OpenAI, text: str, *, model: str = OPENAI_MODEL, **kwargs: Any) -> str:
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )
    return reply.choices[0].message.content or ""


def call_anthropic(
    client: anthropic.Anthropic, text: str, *, model: str = ANTHROPIC_MODEL, **kwargs: Any
) -> str:
    reply = client.messages.create(
        model=model, max_tokens=32, messages=[{"role": "user", "content": text}], **kwargs
    )
    return "".join(block.text for block in reply.content if block.type == "text")


def raised_by(fn: Any, *args: Any, **kwargs: Any) -> BaseException:
    """Call ``fn`` and return the exception it raised (fail the test if it did not raise)."""
    try:
        fn(*args, **kwargs)
    except Exception as exc:
        return exc
    raise AssertionError(f"{getattr(fn, '__name__', fn)} did not raise")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
