"""
How many tokens a request will use, before it is sent: what limits and budgets reserve.

Two estimates for two purposes: the rate limiter reserves the *typical* count (settlement corrects
it seconds later), the budget reserves an *upper bound* (an estimate that is too low could let a
budget be overshot).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from airflow_agent_provider.cost.estimate import estimate_input_tokens

if TYPE_CHECKING:
    from airflow_agent_provider.llm.types import LLMRequest

#: Tokens a provider adds per message (role markers, separators) beyond its text.
PER_MESSAGE_OVERHEAD_TOKENS = 8


def _input_texts(request: LLMRequest) -> list[str]:
    """What the provider counts as input: system prompt, messages, tool calls, tool schemas."""
    texts = [request.system or ""]
    for message in request.messages:
        texts.append(message.content or "")
        texts.extend(call.name + json.dumps(call.arguments) for call in message.tool_calls)
    texts.extend(tool.name + tool.description + json.dumps(tool.parameters) for tool in request.tools)
    if request.output_schema:
        texts.append(json.dumps(request.output_schema))
    return texts


def _overhead(request: LLMRequest) -> int:
    return PER_MESSAGE_OVERHEAD_TOKENS * (len(request.messages) + 1)


def request_chars(request: LLMRequest) -> int:
    return sum(len(text) for text in _input_texts(request))


def typical_input_tokens(request: LLMRequest) -> int:
    """
    The usual characters/4 estimate: what the shared tokens-per-minute limiter reserves.

    Settlement corrects it to the real usage seconds later, so a typical estimate is right there:
    reserving an upper bound would hold back other callers' tokens for nothing.
    """
    return estimate_input_tokens(request_chars(request)) + _overhead(request)


def max_input_tokens(request: LLMRequest) -> int:
    """
    An upper bound of the input tokens: the UTF-8 bytes of the input, plus per-message overhead.

    Budget reservations use it because an estimate that is too low could let a budget be overshot
    (characters/4 holds for English, but one CJK character can be a whole token). Byte-level BPE
    tokenizers (OpenAI's, Anthropic's) never produce more tokens than bytes, so this bound holds
    whatever the language; settlement refunds the difference, so it costs only headroom.
    """
    return sum(len(text.encode("utf-8")) for text in _input_texts(request)) + _overhead(request)


__all__ = ["PER_MESSAGE_OVERHEAD_TOKENS", "max_input_tokens", "request_chars", "typical_input_tokens"]
