"""
Provider-neutral request and response types.

Every part of the provider (hook, trigger, operator, limits, cost) speaks these types, so that the
OpenAI and Anthropic specifics stay inside the two adapters. They are plain dataclasses that turn
into JSON-safe dicts, because a request crosses the worker -> triggerer boundary inside a trigger's
kwargs and a response comes back inside a ``TriggerEvent``. None of them ever holds credentials.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Provider = Literal["openai", "anthropic"]
PROVIDERS: tuple[str, ...] = ("openai", "anthropic")


@dataclass
class ToolCall:
    """One tool call requested by the model."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class ToolSpec:
    """A tool offered to the model: its name, description and JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class Usage:
    """Token usage of one call; ``cached_input_tokens`` is the part of ``input_tokens`` read from cache."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
        )


@dataclass
class Message:
    """
    A conversation message in the neutral format.

    ``role`` is ``user``, ``assistant`` or ``tool``. The system prompt is not a message: it is
    ``LLMRequest.system``, because the two APIs place it differently.
    An assistant message may carry ``tool_calls``; a ``tool`` message answers one call by ``tool_call_id``.
    """

    role: Literal["user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        calls = [ToolCall(**c) for c in data.get("tool_calls") or []]
        return cls(
            role=data["role"],
            content=data.get("content") or "",
            tool_calls=calls,
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
        )


@dataclass
class LLMRequest:
    """Everything needed for one model call, independent of the provider."""

    provider: str
    model: str
    messages: list[Message]
    system: str | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int = 1024
    #: JSON schema the reply must follow (structured output), or None for free text.
    output_schema: dict[str, Any] | None = None
    #: Per-call timeout in seconds; None means the connection's or the SDK's default.
    timeout: float | None = None
    #: Extra HTTP headers sent with the call (the local test server reads fault-injection headers).
    extra_headers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMRequest:
        data = dict(data)
        data["messages"] = [Message.from_dict(m) for m in data.get("messages") or []]
        data["tools"] = [ToolSpec(**t) for t in data.get("tools") or []]
        return cls(**data)


@dataclass
class LLMResponse:
    """The normalised result of one model call."""

    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    model: str
    provider: str
    latency_s: float
    request_id: str | None = None
    finish_reason: str | None = None
    #: Response headers that matter to the shared limiter (x-ratelimit-*, anthropic-ratelimit-*,
    #: retry-after), lower-cased. Never contains credentials.
    rate_limit_headers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMResponse:
        data = dict(data)
        data["tool_calls"] = [ToolCall(**c) for c in data.get("tool_calls") or []]
        data["usage"] = Usage(**(data.get("usage") or {}))
        return cls(**data)

    def as_assistant_message(self) -> Message:
        return Message(role="assistant", content=self.text, tool_calls=list(self.tool_calls))
